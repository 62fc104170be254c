"""What per-player views cost: the arena with and without fog, in rooms of 10
and in one big room, without sockets.

A real Room running the arena, ticked by trio's MockClock (only CPU time
counts), with room_tick.py's in-memory bots (one input and one ack per tick,
a wandering stick, fire in 10% of inputs). For each case it reports the
room's tick duration per player, its phases, the downstream bytes per
player, the encodes per tick (room statistics ``deltas_encoded``) and the
distinct views at the last tick (``distinct_views``).

    python benchmarks/views.py                     # the table of docs/benchmarks.md
    python benchmarks/views.py --big 200 --big-ticks 60 --small-ticks 200   # shorter
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from room_tick import BotLink  # noqa: E402

from tickroom.percentiles import percentiles  # noqa: E402
from tickroom.protocol import messages as m  # noqa: E402
from tickroom.server.rooms.room import Room, RoomConfig  # noqa: E402
from tickroom.simulation.game import GameConfig  # noqa: E402
from tickroom.simulation.games.arena import Arena  # noqa: E402

WARMUP_TICKS = 40  # fills the projectile pool and the snapshot ring before measuring


async def measure(players: int, size: float, fog: float, ticks: int, rate: int) -> dict[str, float]:
    options = {"size": size, "fog": fog}
    config = RoomConfig(tick_rate=rate, max_players=players)
    room = Room("bench", Arena(seed=1, config=GameConfig(tick_rate=rate, max_players=players, options=options)), config)
    links = []
    async with trio.open_nursery() as nursery:
        await nursery.start(room.run)
        for i in range(players):
            link = BotLink(room, seed=i)
            link.accepted = await room.join(m.Join(version=m.PROTOCOL_VERSION, name=f"bot{i}"), link)
            links.append(link)
        await trio.sleep(WARMUP_TICKS / rate)
        room.tick_durations.clear()
        seconds0, player_ticks0 = list(room.profile.seconds), room.profile.player_ticks
        bytes0 = sum(link.bytes for link in links)
        encoded0, tick0 = room.statistics().deltas_encoded, room.game.tick
        await trio.sleep(ticks / rate)
        stats = room.statistics()
        durations = list(room.tick_durations)
        sent = sum(link.bytes for link in links) - bytes0
        player_ticks = room.profile.player_ticks - player_ticks0
        phases = [(a - b) / player_ticks * 1e6 for a, b in zip(room.profile.seconds, seconds0, strict=True)]
        view = room.game.view()
        room.request_close()
    measured = stats.tick - tick0
    return {
        "players": players,
        "entities": int(view.ids.shape[0]),
        "tick_ms_p50": statistics.median(durations) * 1e3,
        "tick_ms_p99": percentiles(durations, (99,))[0] * 1e3,
        "us_per_player_tick": statistics.median(durations) * 1e6 / players,
        **{f"{name}_us": v for name, v in zip(("read", "simulate", "snapshot", "send"), phases, strict=True)},
        "bytes_per_player_tick": sent / (players * measured),
        "bytes_per_player_s": sent / (players * measured) * rate,
        "encodes_per_tick": (stats.deltas_encoded - encoded0) / measured,
        "distinct_views": stats.distinct_views,
    }


CASES = (  # name, players, arena side (units), fog radius (units)
    ("10 players, no fog", 10, 100.0, 0.0),
    ("10 players, fog 25", 10, 100.0, 25.0),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-ticks", type=int, default=1000, help="ticks measured in the rooms of 10")
    parser.add_argument("--big", type=int, default=500, help="players in the big room")
    parser.add_argument("--big-size", type=float, default=1000.0, help="the big room's arena side, units")
    parser.add_argument("--big-fog", type=float, default=60.0, help="the big room's view radius, units")
    parser.add_argument("--big-ticks", type=int, default=200, help="ticks measured in the big room")
    parser.add_argument("--rate", type=int, default=20)
    args = parser.parse_args()
    cases = [(*case, args.small_ticks) for case in CASES] + [
        (f"{args.big} players, no fog", args.big, args.big_size, 0.0, args.big_ticks),
        (f"{args.big} players, fog {args.big_fog:g}", args.big, args.big_size, args.big_fog, args.big_ticks),
    ]
    keys = None
    for name, players, size, fog, ticks in cases:
        result = trio.run(
            measure, players, size, fog, ticks, args.rate, clock=trio.testing.MockClock(autojump_threshold=0)
        )
        if keys is None:
            keys = list(result)
            print("| case | " + " | ".join(keys) + " |")
            print("| --- |" + " ---: |" * len(keys))
        print(f"| {name} | " + " | ".join(f"{result[k]:,.1f}" for k in keys) + " |", flush=True)


if __name__ == "__main__":
    main()
