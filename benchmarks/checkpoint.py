"""What checkpoints and the input log cost per room, and (with a Redis URL)
what writing them costs.

A real Room running the arena with bots (benchmarks/room_tick.py's BotLink:
one input per player per tick) under trio's MockClock. An observer measures,
on every tick, what failover's keeper does on the tick path (capture every
``--interval`` ticks, build the log entry) and what its writer does off it
(msgpack encoding), in microseconds and bytes. With ``--redis-url`` it then
times the fenced writes on a real Redis through tickroom.server.cluster.store.redis (thread
hop included).

    python benchmarks/checkpoint.py                         # 8 players
    python benchmarks/checkpoint.py --players 8 --redis-url redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.room_tick import BotLink  # noqa: E402
from tickroom.protocol import messages as m  # noqa: E402
from tickroom.server import checkpoint  # noqa: E402
from tickroom.server.rooms.room import Room, RoomConfig  # noqa: E402
from tickroom.simulation.game import GameConfig  # noqa: E402
from tickroom.simulation.games.arena import Arena  # noqa: E402


class Meter:
    def __init__(self) -> None:
        self.capture_us: list[float] = []
        self.pack_us: list[float] = []
        self.ckpt_bytes: list[int] = []
        self.entry_us: list[float] = []
        self.entry_pack_us: list[float] = []
        self.entry_bytes: list[int] = []
        self.last_ckpt = b""
        self.entries: list[tuple[int, bytes]] = []

    def ticked(self, room, batch, events) -> None:
        t0 = time.perf_counter()
        snap = checkpoint.capture(room)
        t1 = time.perf_counter()
        data = checkpoint.pack(snap)
        t2 = time.perf_counter()
        entry = checkpoint.log_entry(room, batch, events)
        t3 = time.perf_counter()
        blob = checkpoint.pack(entry)
        t4 = time.perf_counter()
        self.capture_us.append((t1 - t0) * 1e6)
        self.pack_us.append((t2 - t1) * 1e6)
        self.ckpt_bytes.append(len(data))
        self.entry_us.append((t3 - t2) * 1e6)
        self.entry_pack_us.append((t4 - t3) * 1e6)
        self.entry_bytes.append(len(blob))
        self.last_ckpt = data
        self.entries.append((room.game.tick, blob))


async def measure_room(players: int, ticks: int, rate: int) -> Meter:
    config = RoomConfig(tick_rate=rate, max_players=players)
    room = Room("bench", Arena(seed=1, config=GameConfig(tick_rate=rate, max_players=players)), config)
    async with trio.open_nursery() as nursery:
        await nursery.start(room.run)
        for i in range(players):
            link = BotLink(room, seed=i)
            link.accepted = await room.join(m.Join(version=m.PROTOCOL_VERSION, name=f"bot{i}"), link)
        await trio.sleep(100 / rate)
        meter = Meter()
        room.observer = meter
        await trio.sleep(ticks / rate)
        room.request_close()
    return meter


async def measure_redis(url: str, meter: Meter, rounds: int) -> dict[str, float]:
    from tickroom.server.cluster.store.redis import RedisStore

    store = RedisStore(url)
    room_id = "bench-checkpoint"
    epoch = await store.claim(room_id, "bench", 30) or await store.current_epoch(room_id)
    write, append, renew = [], [], []
    for k in range(rounds):
        t0 = time.perf_counter()
        assert await store.write_checkpoint(room_id, epoch, 1000 + k * 100, meter.last_ckpt)
        t1 = time.perf_counter()
        assert await store.append_log(room_id, epoch, [(1001 + k * 100, meter.entries[k % len(meter.entries)][1])])
        t2 = time.perf_counter()
        assert await store.renew(room_id, "bench", epoch, 30)
        t3 = time.perf_counter()
        write.append((t1 - t0) * 1e6)
        append.append((t2 - t1) * 1e6)
        renew.append((t3 - t2) * 1e6)
    await store.forget(room_id, epoch)
    # What the node's writer sends per tick with 100 rooms: one batch holding
    # each room's log entry (and, every 20th tick, its checkpoint too).
    from tickroom.server.cluster.store.base import Write

    rooms = [f"bench-room-{i}" for i in range(100)]
    epochs = [await store.claim(r, "bench", 30) or await store.current_epoch(r) for r in rooms]
    entry = meter.entries[0][1]
    batch_us, batch_ckpt_us = [], []
    for k in range(50):
        tick = 10_000 + k * 2
        t0 = time.perf_counter()
        await store.write_many([Write(r, e, None, [(tick, entry)]) for r, e in zip(rooms, epochs, strict=True)])
        t1 = time.perf_counter()
        await store.write_many(
            [Write(r, e, (tick + 1, meter.last_ckpt), []) for r, e in zip(rooms, epochs, strict=True)]
        )
        t2 = time.perf_counter()
        batch_us.append((t1 - t0) * 1e6)
        batch_ckpt_us.append((t2 - t1) * 1e6)
    for r, e in zip(rooms, epochs, strict=True):
        await store.forget(r, e)
    await store.aclose()
    return {
        "redis_batch_100_log_entries_us_p50": statistics.median(batch_us),
        "redis_batch_100_checkpoints_us_p50": statistics.median(batch_ckpt_us),
        "redis_checkpoint_write_us_p50": statistics.median(write),
        "redis_log_append_us_p50": statistics.median(append),
        "redis_renew_us_p50": statistics.median(renew),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=8)
    parser.add_argument("--ticks", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()
    meter = trio.run(
        measure_room, args.players, args.ticks, args.rate, clock=trio.testing.MockClock(autojump_threshold=0)
    )
    p50 = statistics.median
    result = {
        "checkpoint_bytes": p50(meter.ckpt_bytes),
        "checkpoint_capture_us_p50 (tick path)": p50(meter.capture_us),
        "checkpoint_pack_us_p50 (writer)": p50(meter.pack_us),
        "log_entry_bytes": p50(meter.entry_bytes),
        "log_entry_build_us_p50 (tick path)": p50(meter.entry_us),
        "log_entry_pack_us_p50 (writer)": p50(meter.entry_pack_us),
    }
    if args.redis_url:
        result.update(trio.run(measure_redis, args.redis_url, meter, args.rounds))
    for key, value in result.items():
        print(f"{key:>40}: {value:,.1f}")


if __name__ == "__main__":
    main()
