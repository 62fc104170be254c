"""Arena rooms one by one against together (inputs and step), us per room tick.

``--rooms`` rooms of ``--players`` at 20 Hz with the reference workload
(tickroom.simulation.bench's room: every player sends one input per tick,
random stick and aim, fire pressed in 30% of them), in two copies built
from the same seeds and fed the same inputs. Each tick one copy gets
``for g, b in zip(games, batches): g.apply_inputs(b)`` then
``for g in games: g.step()``, the other ``Arena.apply_inputs_together``
then ``Arena.step_together``, the copies in alternating order, each phase
timed; the two copies are checked to stay bit-identical (a benchmark of a
wrong result is worthless). After ``--warmup`` untimed ticks (projectiles
in flight, deaths and respawns under way), ``--ticks`` ticks are timed per
run; each run's median is taken, and the best of ``--runs`` runs is shown
(a busy neighbour only ever adds time), divided by the number of rooms.
The share of rooms the batch stepped itself (not alone: respawn due) is
shown too.

    python benchmarks/arena_batch.py                 # 50 rooms x 10 players
    python benchmarks/arena_batch.py --rooms 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tickroom.simulation.game import GameConfig, InputBatch  # noqa: E402
from tickroom.simulation.games.arena import BATCH_RULES, Arena  # noqa: E402
from tickroom.simulation.games.arena_batch import batchable  # noqa: E402

FIRE_P = 0.3  # share of inputs that press fire (the reference workload)


def rooms(n_rooms: int, players: int) -> list[Arena]:
    config = GameConfig(tick_rate=20, max_players=players)
    games = [Arena(seed=r, config=config) for r in range(n_rooms)]
    for g in games:
        for k in range(players):
            g.join(f"bot{k}")
    return games


def inputs(rng: np.random.Generator, ids: np.ndarray) -> InputBatch:
    n = ids.shape[0]
    return InputBatch(
        players=ids,
        fields={
            "mx": rng.uniform(-1, 1, n),
            "my": rng.uniform(-1, 1, n),
            "aim": rng.uniform(-np.pi, np.pi, n),
            "fire": rng.random(n) < FIRE_P,
        },
    )


def one_run(n_rooms: int, players: int, ticks: int, warmup: int, seed: int) -> dict[str, float]:
    """Medians in us per room: apply_inputs and step, one by one and
    together; and the share of rooms the batch stepped itself."""
    alone, together = rooms(n_rooms, players), rooms(n_rooms, players)
    ids = [np.array(g.state()["p_id"], dtype=np.int64) for g in alone]
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {"apply alone": [], "apply together": [], "step alone": [], "step together": []}
    batched = 0
    clock = time.perf_counter

    def timed(name: str, run: Callable[[], object], keep: bool) -> object:
        c0 = clock()
        out = run()
        c1 = clock()
        if keep:
            samples[name].append(c1 - c0)
        return out

    for k in range(warmup + ticks):
        keep = k >= warmup
        batches = [inputs(rng, pid) for pid in ids]
        if keep:
            batched += sum(batchable(g, BATCH_RULES) for g in together)
        # Alternate which copy goes first, so that neither always runs on a warmer cache.
        for alone_first in (True, False) if k % 2 else (False, True):
            if alone_first:
                timed(
                    "apply alone",
                    lambda batches=batches: [g.apply_inputs(b) for g, b in zip(alone, batches, strict=True)],
                    keep,
                )
                ev_a = timed("step alone", lambda: [g.step() for g in alone], keep)
            else:
                timed("apply together", lambda batches=batches: Arena.apply_inputs_together(together, batches), keep)
                ev_b = timed("step together", lambda: Arena.step_together(together), keep)
        if ev_a != ev_b:
            raise AssertionError(f"tick {k}: the events differ")
    for a, b in zip(alone, together, strict=True):
        sa, sb = a.state(), b.state()
        if any(not np.array_equal(sa[f], sb[f]) if isinstance(sa[f], np.ndarray) else sa[f] != sb[f] for f in sa):
            raise AssertionError("the worlds differ")
    out = {name: statistics.median(v) * 1e6 / n_rooms for name, v in samples.items()}
    out["batched"] = batched / (ticks * n_rooms)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--players", type=int, default=10, help="players per room")
    parser.add_argument("--ticks", type=int, default=1000, help="timed ticks per run")
    parser.add_argument("--warmup", type=int, default=200, help="untimed ticks first")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [one_run(args.rooms, args.players, args.ticks, args.warmup, seed) for seed in range(args.runs)]
    best = {name: min(run[name] for run in runs) for name in runs[0] if name != "batched"}
    share = statistics.median(run["batched"] for run in runs)
    print(
        f"{args.rooms} rooms x {args.players} players, {args.ticks} ticks per run, "
        f"us per room per tick (median of a run, best of {args.runs})"
    )
    print(f"{'':16} {'one by one':>10} {'together':>10}")
    for phase in ("apply", "step"):
        one, both = best[f"{phase} alone"], best[f"{phase} together"]
        print(f"{phase:16} {one:10.1f} {both:10.1f}   ({one / both:.1f}x)")
    one = best["apply alone"] + best["step alone"]
    both = best["apply together"] + best["step together"]
    print(f"{'sum':16} {one:10.1f} {both:10.1f}   ({one / both:.1f}x; {share:.0%} of room steps batched)")


if __name__ == "__main__":
    main()
