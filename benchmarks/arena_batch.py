"""Arena rooms stepped one by one against stepped together, us per room tick.

``--rooms`` rooms of ``--players`` at 20 Hz with the reference workload
(tickroom.simulation.bench's room: every player sends one input per tick,
random stick and aim, fire pressed in 30% of them), in two copies built
from the same seeds and fed the same inputs. Each tick, after every room's
apply_inputs(), one copy is stepped with ``for g in games: g.step()`` and
the other with ``Arena.step_together(games)``, in alternating order, each
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


def one_run(n_rooms: int, players: int, ticks: int, warmup: int, seed: int) -> tuple[float, float, float]:
    """(us per room: one by one, together; share of rooms batched)."""
    alone, together = rooms(n_rooms, players), rooms(n_rooms, players)
    ids = [np.array(g.state()["p_id"], dtype=np.int64) for g in alone]
    rng = np.random.default_rng(seed)
    t_alone: list[float] = []
    t_together: list[float] = []
    batched = 0
    clock = time.perf_counter
    for k in range(warmup + ticks):
        for a, b, pid in zip(alone, together, ids, strict=True):
            batch = inputs(rng, pid)
            a.apply_inputs(batch)
            b.apply_inputs(batch)
        timed = k >= warmup
        if timed:
            batched += sum(batchable(g, BATCH_RULES) for g in together)
        for first in (True, False) if k % 2 else (False, True):
            c0 = clock()
            if first:
                ev_a = [g.step() for g in alone]
            else:
                ev_b = Arena.step_together(together)
            c1 = clock()
            if timed:
                (t_alone if first else t_together).append(c1 - c0)
        if ev_a != ev_b:
            raise AssertionError(f"tick {k}: the events differ")
    for a, b in zip(alone, together, strict=True):
        sa, sb = a.state(), b.state()
        if any(not np.array_equal(sa[f], sb[f]) if isinstance(sa[f], np.ndarray) else sa[f] != sb[f] for f in sa):
            raise AssertionError("the worlds differ")
    per_room = 1e6 / n_rooms
    return (
        statistics.median(t_alone) * per_room,
        statistics.median(t_together) * per_room,
        batched / (ticks * n_rooms),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--players", type=int, default=10, help="players per room")
    parser.add_argument("--ticks", type=int, default=1000, help="timed ticks per run")
    parser.add_argument("--warmup", type=int, default=200, help="untimed ticks first")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [one_run(args.rooms, args.players, args.ticks, args.warmup, seed) for seed in range(args.runs)]
    alone = min(r[0] for r in runs)
    together = min(r[1] for r in runs)
    share = statistics.median(r[2] for r in runs)
    print(
        f"{args.rooms} rooms x {args.players} players, {args.ticks} ticks per run, "
        f"us per room per tick (median of a run, best of {args.runs})"
    )
    print(f"  step() one by one   {alone:7.1f}")
    print(f"  step_together()     {together:7.1f}   ({alone / together:.1f}x; {share:.0%} of rooms batched)")


if __name__ == "__main__":
    main()
