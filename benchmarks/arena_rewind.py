"""What the arena's lag compensation costs per room tick, in a hot loop.

A room of 10 at 20 Hz as the server runs it, without sockets or trio: each
tick one batch of inputs (one row per player, random stick and aim, fire
in ``--fire`` of them, each saying a tick 1-2 back as a client acting on
its newest snapshot does), apply_inputs(), step(), the room's history
recorded (tickroom.server.rooms.world_history, as Room._tick does) and
view(). Reports each phase's median per room tick, best of ``--runs``.

    python benchmarks/arena_rewind.py --rewind 0.4     # lag compensation on
    python benchmarks/arena_rewind.py --rewind 0       # off: no history kept
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tickroom.server.rooms.world_history import history_for  # noqa: E402
from tickroom.simulation.game import GameConfig, InputBatch  # noqa: E402
from tickroom.simulation.games.arena import Arena  # noqa: E402

PLAYERS = 10


def one_run(rewind: float, fire: float, ticks: int, seed: int) -> dict[str, float]:
    game = Arena(seed=1, config=GameConfig(tick_rate=20, max_players=PLAYERS, options={"rewind": rewind}))
    ids = np.array([game.join(f"p{i}") for i in range(PLAYERS)], dtype=np.int64)
    ring = history_for(game)
    rng = np.random.default_rng(seed)
    phases: dict[str, list[float]] = {"apply": [], "step": [], "record": [], "view": []}
    clock = time.perf_counter
    for k in range(ticks + 500):  # 500 ticks of warm-up fill the arena with projectiles
        batch = InputBatch(
            players=ids,
            fields={
                "mx": rng.uniform(-1, 1, PLAYERS),
                "my": rng.uniform(-1, 1, PLAYERS),
                "aim": rng.uniform(-3, 3, PLAYERS),
                "fire": rng.random(PLAYERS) < fire,
            },
            seqs=np.full(PLAYERS, k + 1, dtype=np.int64),
            ticks=np.maximum(game.tick - rng.integers(1, 3, PLAYERS), 0),
        )
        t0 = clock()
        game.apply_inputs(batch)
        t1 = clock()
        game.step()
        t2 = clock()
        if ring is not None:
            ring.record(game.tick)
        t3 = clock()
        game.view()
        t4 = clock()
        if k >= 500:
            for name, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                phases[name].append(seconds)
    return {name: statistics.median(v) * 1e6 for name, v in phases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rewind", type=float, default=0.4, help="the room option, s (0: off)")
    parser.add_argument("--fire", type=float, default=0.5, help="share of inputs that press fire")
    parser.add_argument("--ticks", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [one_run(args.rewind, args.fire, args.ticks, seed) for seed in range(args.runs)]
    best = {name: min(run[name] for run in runs) for name in runs[0]}
    print(f"rewind {args.rewind} s, fire {args.fire}: us per room tick (median, best of {args.runs})")
    for name, us in best.items():
        print(f"  {name:<7} {us:7.1f}")
    print(f"  {'total':<7} {sum(best.values()):7.1f}")


if __name__ == "__main__":
    main()
