"""What one room tick costs on the server, without sockets.

A real Room running the arena, ticked by trio's MockClock (so only CPU time
counts), with in-memory clients that send one input and ack every snapshot
per tick, as the reference workload does, playing like the load tester's
bots: a wandering stick and aim, fire in 10% of inputs. Reports the room's own
tick duration (collect inputs, step, snapshot, encode deltas, hand each
client its message), per tick and per player, its phases (tickroom.server.rooms.room's
TickProfile), and where the downstream bytes go.

    python benchmarks/room_tick.py                 # 10 players, 2000 ticks
    python benchmarks/room_tick.py --players 16 --ticks 5000
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from pathlib import Path

import msgpack
import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tickroom.percentiles import percentiles  # noqa: E402
from tickroom.protocol import envelope  # noqa: E402
from tickroom.protocol import messages as m  # noqa: E402
from tickroom.server.rooms.room import Room, RoomConfig  # noqa: E402
from tickroom.simulation.game import GameConfig  # noqa: E402
from tickroom.simulation.games.arena import Arena  # noqa: E402


class BotLink:
    """Acks each snapshot and sends one input, without decoding (the client's
    cost is not the server's)."""

    def __init__(self, room: Room, seed: int) -> None:
        self.room = room
        self.closed = self.left = False
        self.accepted = None
        self.inputs: list = []  # sent, not yet read by the room's tick
        self.seq = 0
        self.bytes = 0
        self.payloads: list[bytes] = []  # kept for the byte breakdown
        self.rng = random.Random(seed)
        self.heading = self.rng.uniform(-math.pi, math.pi)

    def offer(self, payload: bytes) -> None:
        self.bytes += len(payload)
        if len(self.payloads) < 4000:
            self.payloads.append(payload)
        if self.accepted is not None:
            self.seq += 1
            # As loadtest/rawbots.py plays: wander, fire in 10% of inputs.
            rng = self.rng
            self.heading = (self.heading + rng.uniform(-0.3, 0.3) + math.pi) % (2 * math.pi) - math.pi
            h = self.heading
            data = {"mx": math.cos(h), "my": math.sin(h), "aim": h, "fire": rng.random() < 0.1}
            # A version 2 input row, as the raw bots send (the room's own
            # encoder: the bots' cost is not the server's).
            row = self.room._batcher.rows.encode_input(
                m.Input(seq=self.seq, tick=0, ack=self.room.game.tick, data=data)
            )
            self.inputs.append(row)

    def take_inputs(self) -> list:
        inputs, self.inputs = self.inputs, []
        return inputs

    def send(self, payload: bytes) -> None:
        pass

    def kick(self, code, reason) -> None:
        self.closed = True


async def run(players: int, ticks: int, rate: int) -> dict:
    config = RoomConfig(tick_rate=rate, max_players=players)
    room = Room("bench", Arena(seed=1, config=GameConfig(tick_rate=rate, max_players=players)), config)
    links = []
    async with trio.open_nursery() as nursery:
        await nursery.start(room.run)
        for i in range(players):
            link = BotLink(room, seed=i)
            link.accepted = await room.join(m.Join(version=m.PROTOCOL_VERSION, name=f"bot{i}"), link)
            links.append(link)
        await trio.sleep(200 / rate)  # warm up
        room.tick_durations.clear()
        before = (list(room.profile.seconds), room.profile.player_ticks)
        for link in links:
            link.payloads.clear()
        start_bytes = sum(link.bytes for link in links)
        await trio.sleep(ticks / rate)
        durations = list(room.tick_durations)
        sent = sum(link.bytes for link in links) - start_bytes
        phases = [
            (a - b) / (room.profile.player_ticks - before[1]) * 1e6
            for a, b in zip(room.profile.seconds, before[0], strict=True)
        ]
        room.request_close()
    seconds = len(durations) / rate
    per_player_s = players * seconds
    return {
        "ticks": len(durations),
        "tick_us_p50": statistics.median(durations) * 1e6,
        "tick_us_p99": percentiles(durations, (99,))[0] * 1e6,
        "per_player_tick_us": statistics.median(durations) * 1e6 / players,
        **{
            f"{name}_us_per_player_tick": v
            for name, v in zip(("read", "simulate", "snapshot", "send"), phases, strict=True)
        },
        "bytes_per_player_s": sent / per_player_s,
        **{
            f"bytes_per_player_s_{k}": v / per_player_s
            for k, v in byte_breakdown(
                [p for link in links for p in link.payloads], len(links[0].payloads) * players, sent
            ).items()
        },
    }


def byte_breakdown(payloads: list[bytes], kept: int, sent: int) -> dict[str, float]:
    """Where the snapshot bytes go: entity ids, each component's values and
    masks, events, and the rest (msgpack framing of the message); scaled
    from the payloads kept to everything sent."""
    totals: dict[str, float] = {}
    for payload in payloads:
        msg = msgpack.unpackb(payload, raw=False)
        if isinstance(msg, list):  # version 2's positional snapshot
            msg = envelope.decode(msg)
        parts = {"ids": len(msg["ids"]) + len(msg["rm"])}
        for name, (mask, values) in msg["c"].items():
            parts[name] = len(mask) + len(values)
        parts["events"] = len(msgpack.packb(msg["ev"]))
        parts["message framing"] = len(payload) - sum(parts.values())
        for k, v in parts.items():
            totals[k] = totals.get(k, 0) + v
    scale = sent / max(1, sum(len(p) for p in payloads))
    return {k: v * scale for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=20)
    args = parser.parse_args()
    result = trio.run(run, args.players, args.ticks, args.rate, clock=trio.testing.MockClock(autojump_threshold=0))
    for key, value in result.items():
        print(f"{key:>22}: {value:,.1f}")


if __name__ == "__main__":
    main()
