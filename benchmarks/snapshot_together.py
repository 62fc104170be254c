"""The snapshot side of a node's rooms: one by one against together.

50 arena rooms of 10 players (``--rooms``, ``--players``) play the
reference workload (random sticks and aims, fire in 30% of inputs) for a
warm-up; then, over the recorded ticks, each room's view and its delta
against the previous tick are made one room at a time (``game.view()``,
``encode_delta``, each world's rows packed on its own) and for all rooms
at once (``Arena.view_together``, tickroom.protocol.delta_rooms's
``encode_room_deltas``, rows packed together), alternately, best of
``--runs``. Microseconds per room per tick.

    python benchmarks/snapshot_together.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tickroom.protocol.delta import WorldState, encode_delta  # noqa: E402
from tickroom.protocol.delta_rooms import encode_room_deltas  # noqa: E402
from tickroom.protocol.schema import Schema  # noqa: E402
from tickroom.simulation.game import GameConfig  # noqa: E402
from tickroom.simulation.games.arena import Arena  # noqa: E402
from tickroom.simulation.random_batches import RandomBatches  # noqa: E402


def fresh(world: WorldState) -> WorldState:
    """The same world, its rows not packed yet (as a new tick's is)."""
    return WorldState(world.tick, world.ids, world.components)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--players", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=40)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    schema = Schema.from_description(Arena.components)
    games = [Arena(seed, GameConfig()) for seed in range(args.rooms)]
    inputs = [
        RandomBatches(
            Arena.input_fields, np.array([g.join(f"p{i}") for i in range(args.players)]), np.random.default_rng(s)
        )
        for s, g in enumerate(games)
    ]
    pairs_by_tick = []
    previous = [None] * len(games)
    for tick in range(100 + args.ticks):
        pairs = []
        for k, game in enumerate(games):
            game.apply_inputs(inputs[k].next())
            game.step()
            view = game.view()
            world = WorldState.from_view(game.tick, view.ids, view.components, schema)
            if previous[k] is not None:
                pairs.append((world, previous[k]))
            previous[k] = world
        if tick >= 100:
            pairs_by_tick.append(pairs)
    for pairs in pairs_by_tick:
        for _, baseline in pairs:
            baseline._rows(schema)  # a baseline was packed when it was the newest tick

    def one_by_one(pairs):
        return [encode_delta(fresh(c), b, schema) for c, b in pairs]

    def together(pairs):
        return encode_room_deltas([(fresh(c), b) for c, b in pairs], schema)

    def best(f) -> float:
        out = float("inf")
        for _ in range(args.runs):
            began = time.perf_counter()
            for pairs in pairs_by_tick:
                f(pairs)
            out = min(out, (time.perf_counter() - began) / len(pairs_by_tick) / args.rooms)
        return out * 1e6

    views = {"one by one": lambda: [g.view() for g in games], "together": lambda: Arena.view_together(games)}
    view_best = {}
    for name, f in views.items():
        out = float("inf")
        for _ in range(args.runs):
            began = time.perf_counter()
            for _ in range(args.ticks):
                f()
            out = min(out, (time.perf_counter() - began) / args.ticks / args.rooms)
        view_best[name] = out * 1e6
    a, b = best(one_by_one), best(together)
    print(f"{args.rooms} rooms x {args.players} players, us per room per tick, best of {args.runs}")
    print(f"{'':24}{'one by one':>12}{'together':>10}")
    print(f"{'view':24}{view_best['one by one']:>12.1f}{view_best['together']:>10.1f}")
    print(f"{'delta (rows packed)':24}{a:>12.1f}{b:>10.1f}")


if __name__ == "__main__":
    main()
