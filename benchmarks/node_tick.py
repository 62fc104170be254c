"""What a node's rooms cost, without sockets: the stepper on and off.

A real RoomRegistry runs ``--rooms`` arena rooms of ``--players`` in-memory
bots each (benchmarks/room_tick.py's BotLink: one input and one ack per
player per tick, playing like the load tester's bots), under trio's
MockClock, so only CPU counts and the machine's neighbours move nothing but
the CPU itself. Each run times ``--ticks`` ticks of process CPU after a
warm-up; runs alternate between ``step_together`` on (the node's stepper:
inputs applied, steps, views recorded and deltas encoded for all rooms at
once, tickroom.server.rooms.step_batch) and off (each room alone), and the
table shows the best run of each, in microseconds of CPU per player per
tick, with the rooms' own phase profile (TickProfile).

    python benchmarks/node_tick.py                       # 50 rooms x 10, 400 ticks, 3 runs each
    python benchmarks/node_tick.py --rooms 100 --runs 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from room_tick import BotLink  # noqa: E402

from tickroom.protocol import messages as m  # noqa: E402
from tickroom.server.rooms.registry import RegistryConfig, RoomRegistry  # noqa: E402
from tickroom.server.rooms.room import RoomConfig  # noqa: E402

WARMUP_TICKS = 100
PHASES = ("read", "simulate", "snapshot", "send")


async def run(rooms: int, players: int, ticks: int, rate: int, together: bool) -> dict[str, float]:
    registry = RoomRegistry(
        RegistryConfig(room=RoomConfig(tick_rate=rate, max_players=players), step_together=together)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(registry.run)
        for r in range(rooms):
            room = registry.create(f"r{r}", "arena", seed=r)
            for p in range(players):
                link = BotLink(room, seed=r * 1000 + p)
                msg = m.Join(version=m.PROTOCOL_VERSION, name=f"bot{p}", room=room.room_id)
                link.accepted = await registry.join(msg, link)
        await trio.sleep(WARMUP_TICKS / rate)
        live = registry.rooms()
        before = [(list(room.profile.seconds), room.profile.player_ticks) for room in live]
        cpu = time.process_time()
        await trio.sleep(ticks / rate)
        cpu = time.process_time() - cpu
        phases = [0.0] * 4
        player_ticks = 0
        for room, (seconds, counted) in zip(live, before, strict=True):
            for i in range(4):
                phases[i] += room.profile.seconds[i] - seconds[i]
            player_ticks += room.profile.player_ticks - counted
        nursery.cancel_scope.cancel()
    out = {"cpu_us_per_player_tick": cpu / player_ticks * 1e6}
    out.update({f"{name}_us": seconds / player_ticks * 1e6 for name, seconds in zip(PHASES, phases, strict=True)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--players", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=400)
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3, help="runs of each mode, interleaved")
    args = parser.parse_args()
    best: dict[bool, dict[str, float]] = {}
    for _ in range(args.runs):
        for together in (False, True):
            clock = trio.testing.MockClock(autojump_threshold=0)
            result = trio.run(run, args.rooms, args.players, args.ticks, args.rate, together, clock=clock)
            if together not in best or result["cpu_us_per_player_tick"] < best[together]["cpu_us_per_player_tick"]:
                best[together] = result
    print(f"{args.rooms} rooms x {args.players} players, {args.ticks} ticks, best of {args.runs} runs each")
    print(f"{'us per player-tick':<26}{'room by room':>14}{'stepper':>10}")
    for key in best[False]:
        print(f"{key:<26}{best[False][key]:>14.1f}{best[True][key]:>10.1f}")


if __name__ == "__main__":
    main()
