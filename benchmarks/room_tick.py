"""What one room tick costs on the server, without sockets.

A real Room running the arena, ticked by trio's MockClock (so only CPU time
counts), with in-memory clients that send one input and ack every snapshot
per tick, as the reference workload does. Reports the room's own tick
duration (collect inputs, step, snapshot, encode deltas, hand each client its
message), per tick and per player.

    python benchmarks/room_tick.py                 # 10 players, 2000 ticks
    python benchmarks/room_tick.py --players 16 --ticks 5000
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol import messages as m  # noqa: E402
from server.room import Room, RoomConfig  # noqa: E402
from simulation.game import GameConfig  # noqa: E402
from simulation.games.arena import Arena  # noqa: E402


class BotLink:
    """Acks each snapshot and sends one input, without decoding (the client's
    cost is not the server's)."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.closed = self.left = False
        self.accepted = None
        self.seq = 0
        self.bytes = 0

    def offer(self, payload: bytes) -> None:
        self.bytes += len(payload)
        if self.accepted is not None:
            self.seq += 1
            data = {"mx": 1.0, "my": 0.5, "aim": 0.3, "fire": self.seq % 7 == 0}
            self.accepted.inputs.send_nowait((self, m.Input(seq=self.seq, tick=0, ack=self.room.game.tick, data=data)))

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
            link = BotLink(room)
            link.accepted = await room.join(m.Join(version=m.PROTOCOL_VERSION, name=f"bot{i}"), link)
            links.append(link)
        await trio.sleep(200 / rate)  # warm up
        room.tick_durations.clear()
        start_bytes = sum(link.bytes for link in links)
        await trio.sleep(ticks / rate)
        durations = sorted(room.tick_durations)
        sent = sum(link.bytes for link in links) - start_bytes
        room.request_close()
    return {
        "ticks": len(durations),
        "tick_us_p50": statistics.median(durations) * 1e6,
        "tick_us_p99": durations[int(len(durations) * 0.99)] * 1e6,
        "per_player_tick_us": statistics.median(durations) * 1e6 / players,
        "bytes_per_player_s": sent / players / (len(durations) / rate),
    }


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
