"""What hidden components cost the room's encoder: the same worlds and
entity masks with and without a hidden component that only its owner sees
(a hand of cards, a player's own ammo).

Codec level, no Room and no sockets: per tick, the world changes (every
entity's position moves, a third of the "secret" values change), the views
are split (tickroom.server.rooms.views.split_views) and every player's
snapshot payload is encoded against its previous tick
(SnapshotHistory.payload_for: the batch encoder, one encode per distinct
view). Cases: a room of 10 where everybody sees every entity (the card game's
shape: without hidden components one view for all; with, one per player),
and a room of 500 in 1,400 entities where each player sees ~50 around it (a
fogged open world: a view per player either way). A and B run interleaved,
the median tick of each run, best of ``--rounds``, so the machine's
neighbours move both alike.

    python benchmarks/hidden_components.py            # the table of docs/benchmarks.md
    python benchmarks/hidden_components.py --ticks 20 --rounds 3   # shorter
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tickroom.protocol.codec import finish_snapshot  # noqa: E402
from tickroom.protocol.delta import WorldState  # noqa: E402
from tickroom.protocol.schema import Schema  # noqa: E402
from tickroom.server.rooms.snapshots import SnapshotHistory  # noqa: E402
from tickroom.server.rooms.views import split_views  # noqa: E402
from tickroom.simulation.game import Visibility  # noqa: E402
from tickroom.simulation.hidden import owner_only  # noqa: E402

SCHEMA = Schema.from_description({
    "pos": {"dtype": "<i2", "shape": [2]},
    "hp": {"dtype": "<u1", "shape": []},
    "secret": {"dtype": "<u2", "shape": [4]},
})  # fmt: skip


class Case:
    def __init__(self, players: int, entities: int, radius: float | None, size: float, seed: int = 1) -> None:
        self.rng = np.random.default_rng(seed)
        self.players = np.arange(1, players + 1, dtype=np.int64)
        self.ids = np.arange(1, entities + 1, dtype=np.uint32)  # players are entities 1..players
        self.pos = self.rng.uniform(0, size, (entities, 2))
        self.secret = self.rng.integers(1, 2**16, (entities, 4)).astype("<u2")
        self.radius = radius
        self.size = size
        self.tick = 0

    def next_world(self) -> tuple[WorldState, np.ndarray, np.ndarray]:
        """The next tick's world, its entity mask and its owner-only mask."""
        self.tick += 1
        self.pos = np.clip(self.pos + self.rng.normal(0, 0.5, self.pos.shape), 0, self.size)
        change = self.rng.random(self.secret.shape[0]) < 0.33
        self.secret[change] = self.rng.integers(1, 2**16, (int(change.sum()), 4))
        comps = {
            "pos": np.round(self.pos * 8).astype("<i2"),
            "hp": np.full(self.ids.shape[0], 100, dtype="<u1"),
            "secret": self.secret.copy(),
        }
        world = WorldState.from_view(self.tick, self.ids, comps, SCHEMA)
        n = self.players.shape[0]
        if self.radius is None:
            mask = np.ones((n, self.ids.shape[0]), dtype=bool)
        else:
            me = self.pos[:n]
            d2 = ((me[:, None, :] - self.pos[None, :, :]) ** 2).sum(axis=2)
            mask = d2 <= self.radius**2
        return world, mask, owner_only(self.players, self.ids.astype(np.int64))


def run(case: Case, ticks: int, hidden: bool) -> dict[str, float]:
    history = SnapshotHistory(SCHEMA, 8)
    names = ("secret",) if hidden else ()
    acked = -1
    times: list[float] = []
    sent = encodes = views = 0
    for t in range(ticks + 2):
        world, mask, owned = case.next_world()
        components = {"secret": owned} if hidden else {}
        began = time.perf_counter()
        tick_views = split_views(world, Visibility(case.players, mask, components), world.ids, SCHEMA, names)
        history.record(world, [], tick_views)
        encoded = history.deltas_encoded
        base = history.baseline_for(acked)
        total = 0
        for pid in case.players.tolist():
            total += len(finish_snapshot(history.payload_for(pid, base), 0))
        took = time.perf_counter() - began
        acked = world.tick
        if t >= 2:  # the first two: full snapshots and warm-up
            times.append(took)
            sent += total
            encodes += history.deltas_encoded - encoded
            views = tick_views.distinct
    player_ticks = ticks * case.players.shape[0]
    return {
        # The median tick: a neighbour's burst moves a few ticks, not the median.
        "us": statistics.median(times) / case.players.shape[0] * 1e6,
        "bytes": sent / player_ticks,
        "encodes": encodes / ticks,
        "views": views,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=50, help="ticks measured per run (default 50)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved runs, best kept (default 5)")
    args = parser.parse_args()
    cases = [
        ("10 players, 13 entities, all visible", lambda: Case(10, 13, None, 100.0)),
        ("500 players, 1,400 entities, radius 60", lambda: Case(500, 1400, 60.0, 1000.0)),
    ]
    print(
        "| case | hidden component | us per player-tick (median tick, best run) | bytes per player-tick | encodes per tick | views |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for label, make in cases:
        best: dict[bool, dict[str, float]] = {}
        for r in range(args.rounds):
            for hidden in (False, True) if r % 2 == 0 else (True, False):  # interleaved: AB, BA, AB ...
                result = run(make(), args.ticks, hidden)
                if hidden not in best or result["us"] < best[hidden]["us"]:
                    best[hidden] = result
        for hidden in (False, True):
            r = best[hidden]
            print(
                f"| {label} | {'owner only' if hidden else 'none'} | {r['us']:.1f} | {r['bytes']:.0f} | "
                f"{r['encodes']:.1f} | {r['views']:.0f} |"
            )


if __name__ == "__main__":
    main()
