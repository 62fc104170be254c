"""Step-time benchmark for the arena: ``python -m tickroom.simulation.bench``.

Prints median and p99 wall time, in microseconds, of apply_inputs(), step()
and view() for three workloads:

(a) 16 players + 500 projectiles on the default 100-unit arena (8,000 pairs,
    a little over the sweep threshold, so near the crossover);
(b) 1,000 entities: 100 players + 900 projectiles on a 300-unit arena (so
    that hits stay as rare as in (a));
    each also forced to all-pairs collisions, for contrast;
(c) the reference workload: a room of 10 players at 20 Hz, each sending one
    input per tick (random stick and aim, fire pressed 30% of ticks), run
    continuously after a 200-tick warm-up.

(a) and (b) need a set population, which a free-running game does not keep
(projectiles leave, players die), so they run short episodes: restore one
prepared checkpoint, run one untimed tick (the first step after a restore
pays for cold arrays), then time EPISODE ticks, every player's trigger held.
Spawns, flight, expiry and hits all happen in the timed steps and the
population stays within a few percent of the target (the "entities" column
is the mean seen).

This is the only place in simulation/ that reads a clock (time.perf_counter);
it measures, it never feeds the simulation. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass

import numpy as np

from tickroom.simulation.game import GameConfig, InputBatch
from tickroom.simulation.games.arena import PROJECTILE_SPEED, Arena

US = 1e6  # microseconds per second
EPISODE = 5  # timed ticks per restore of a crowded checkpoint


@dataclass
class Timings:
    apply: list[float]
    step: list[float]
    view: list[float]
    entities: list[int]


def _inputs(rng: np.random.Generator, ids: np.ndarray, fire_p: float) -> InputBatch:
    """One row per player: a random stick and aim, fire with probability fire_p."""
    n = int(ids.shape[0])
    return InputBatch(
        players=ids.astype(np.int64),
        fields={
            "mx": rng.uniform(-1, 1, n),
            "my": rng.uniform(-1, 1, n),
            "aim": rng.uniform(-np.pi, np.pi, n),
            "fire": rng.random(n) < fire_p,
        },
    )


def _tick(game: Arena, batch: InputBatch, t: Timings) -> None:
    c0 = time.perf_counter()
    game.apply_inputs(batch)
    c1 = time.perf_counter()
    game.step()
    c2 = time.perf_counter()
    view = game.view()
    c3 = time.perf_counter()
    t.apply.append(c1 - c0)
    t.step.append(c2 - c1)
    t.view.append(c3 - c2)
    t.entities.append(view.ids.shape[0])


def crowded(players: int, projectiles: int, size: float, samples: int, collision: str = "auto") -> Timings:
    """Fixed population: every sample restores one prepared checkpoint."""
    config = GameConfig(max_players=players, options={"size": size, "collision": collision})
    game = Arena(seed=1, config=config)
    for i in range(players):
        game.join(f"bot{i}")
    rng = np.random.default_rng(2)
    state = game.state()
    # Aimed roughly at the centre, so that few leave during an episode.
    pos = rng.uniform(0, size, (projectiles, 2))
    to_centre = size / 2 - pos
    angle = np.arctan2(to_centre[:, 1], to_centre[:, 0]) + rng.uniform(-0.5, 0.5, projectiles)
    first = state["next_id"]
    state.update(
        q_id=np.arange(first, first + projectiles, dtype=np.uint32),
        q_pos=pos,
        q_vel=np.stack((np.cos(angle), np.sin(angle)), axis=1) * PROJECTILE_SPEED * config.dt,
        q_aim=angle,
        q_owner=rng.choice(state["p_id"], projectiles),
        q_expire_at=np.full(projectiles, 10**9, dtype=np.int64),
        next_id=first + projectiles,
    )
    ids = state["p_id"]
    t = Timings([], [], [], [])
    untimed = Timings([], [], [], [])
    for _ in range(0, samples, EPISODE):
        g = Arena.restore(state, config)
        _tick(g, _inputs(rng, ids, fire_p=1.0), untimed)
        for _ in range(EPISODE):
            _tick(g, _inputs(rng, ids, fire_p=1.0), t)
    return t


def room(players: int, samples: int, warmup: int = 200) -> Timings:
    """The reference room, free-running: one input per player per tick."""
    config = GameConfig(max_players=players)
    game = Arena(seed=1, config=config)
    ids = np.array([game.join(f"bot{i}") for i in range(players)])
    rng = np.random.default_rng(2)
    t = Timings([], [], [], [])
    for _ in range(warmup):
        _tick(game, _inputs(rng, ids, fire_p=0.3), t)
    t = Timings([], [], [], [])
    for _ in range(samples):
        _tick(game, _inputs(rng, ids, fire_p=0.3), t)
    return t


def _fmt(xs: list[float]) -> str:
    a = np.array(xs) * US
    return f"{np.median(a):7.1f} {np.percentile(a, 99):7.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000, help="timed ticks per workload run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per workload; the best is shown")
    args = parser.parse_args(argv)
    n = args.samples
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"{n} timed ticks per run, best of {args.repeat} runs (lowest step median); times in us: median p99\n")
    print(f"{'workload':44} {'entities':>8}  {'step':>15}  {'view':>15}  {'apply_inputs':>15}")
    runs = [
        ("(a) 16 players + 500 projectiles (sweep)", lambda: crowded(16, 500, 100.0, n)),
        ("(a') same, forced all-pairs", lambda: crowded(16, 500, 100.0, n, "all_pairs")),
        ("(b) 100 players + 900 projectiles (sweep)", lambda: crowded(100, 900, 300.0, n)),
        ("(b') same, forced all-pairs", lambda: crowded(100, 900, 300.0, n // 4, "all_pairs")),
        ("(c) room of 10 (all-pairs)", lambda: room(10, n)),
    ]
    for label, run in runs:
        # Best of several runs: other processes on a small machine only ever
        # add time, so the quietest run is the closest to the code's cost.
        t = min((run() for _ in range(args.repeat)), key=lambda r: float(np.median(r.step)))
        ents = f"{np.mean(t.entities):.0f}"
        print(f"{label:44} {ents:>8}  {_fmt(t.step)}  {_fmt(t.view)}  {_fmt(t.apply)}")


if __name__ == "__main__":
    main()
