"""Step-time benchmark for any game: ``python -m tickroom.simulation.bench``.

For the game ``--game`` names (a built-in game, an installed entry point
of the group ``tickroom.games``, or ``module.path:Class``), with the room
options ``--options`` (JSON, checked as the control API checks them):
``--players`` players join, then each tick gets a batch of valid random
inputs built from the game's ``input_fields`` (one row per player,
tickroom.simulation.random_batches), and apply_inputs(), step(), view()
and state() are each timed. After ``--warmup`` untimed ticks, ``--ticks``
ticks are timed per run; each phase's median and p99 are taken per run and
the table shows their medians over ``--runs`` runs (each run a fresh game
with the same seed, so runs differ only by the machine's noise).

``--arena-extras`` adds arena's own workloads, which need arena's state
(a set population of projectiles):

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
is the mean seen). Of several runs the best (lowest step median) is shown.

This is the only place in simulation/ that reads a clock (time.perf_counter);
it measures, it never feeds the simulation. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tickroom.simulation.game import DEFAULT_TICK_RATE, GameConfig, GameFull, InputBatch, JoinRejected
from tickroom.simulation.game_loader import GameLoadError, resolve_game
from tickroom.simulation.games.arena import PROJECTILE_SPEED, Arena
from tickroom.simulation.games.arena_world import POS_SCALE, VEL_SCALE
from tickroom.simulation.options import OptionError, resolve_options
from tickroom.simulation.random_batches import RandomBatches

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
    # On the wire's grids (1/32 unit, 1/512 unit per tick), as a fired shot is.
    pos = np.rint(pos * POS_SCALE) / POS_SCALE
    vel = np.stack((np.cos(angle), np.sin(angle)), axis=1) * PROJECTILE_SPEED * config.dt
    state.update(
        q_id=np.arange(first, first + projectiles, dtype=np.uint32),
        q_pos=pos,
        q_origin=pos,
        q_vel=np.rint(vel * VEL_SCALE) / VEL_SCALE,
        q_aim=angle,
        q_owner=rng.choice(state["p_id"], projectiles),
        q_expire_at=np.full(projectiles, 10**9, dtype=np.int64),
        q_t0=np.full(projectiles, state["tick"], dtype=np.int64),
        q_lag=np.zeros(projectiles, dtype=np.int64),
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


# -- any game ----------------------------------------------------------------

PHASES = ("apply_inputs", "step", "view", "state")  # the table's columns, in tick order


@dataclass(frozen=True)
class PhaseStats:
    """One phase's wall time per call, in microseconds: the median over runs
    of each run's median and of each run's p99."""

    median_us: float
    p99_us: float


@dataclass(frozen=True)
class BenchReport:
    """What ``bench_game`` measured; ``table()`` prints it, ``to_json()`` keeps it."""

    game: str
    options: Mapping[str, Any]
    players: int
    tick_rate: int
    ticks: int  # timed ticks per run
    runs: int
    entities: float  # mean number of entities in the timed views
    state_kib: float  # the arrays of state() at the last timed tick
    phases: Mapping[str, PhaseStats]  # by name, PHASES order

    def table(self) -> str:
        """The report as a fixed-width table, one row per phase."""
        lines = [
            f"game {self.game}, options {json.dumps(dict(self.options), sort_keys=True)}",
            f"{self.players} players, {self.tick_rate} Hz, {self.ticks} timed ticks per run, "
            f"medians over {self.runs} runs; {self.entities:.0f} entities, state arrays {self.state_kib:.1f} KiB",
            f"{'phase':14} {'median us':>10} {'p99 us':>10}",
        ]
        for name, stats in self.phases.items():
            lines.append(f"{name:14} {stats.median_us:10.1f} {stats.p99_us:10.1f}")
        total = sum(stats.median_us for stats in self.phases.values())
        lines.append(f"{'tick (sum)':14} {total:10.1f}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-encodable data (``--json``)."""
        out = asdict(self)
        out["options"] = dict(self.options)
        out["phases"] = {name: asdict(stats) for name, stats in self.phases.items()}
        return out


def bench_game(
    game_cls: type,
    *,
    players: int,
    ticks: int,
    runs: int,
    warmup: int = 200,
    options: Mapping[str, Any] | None = None,
    tick_rate: int = DEFAULT_TICK_RATE,
    seed: int = 1,
) -> BenchReport:
    """Time ``game_cls`` per tick: ``players`` join a fresh game, ``warmup``
    untimed ticks, then ``ticks`` timed ticks of random valid inputs, in
    each of ``runs`` runs. ``options`` are resolved as a room's are
    (defaults filled in). Raises OptionError for bad options, ValueError for
    input fields no random input fits, and whatever join() raises when the
    game refuses one of the players."""
    resolved = resolve_options(game_cls, options)
    config = GameConfig(tick_rate=tick_rate, max_players=players, options=resolved)
    per_run: dict[str, list[tuple[float, float]]] = {name: [] for name in PHASES}
    entities: list[int] = []
    state_bytes = 0
    for _ in range(runs):
        game = game_cls(seed=seed, config=config)
        ids = np.array([game.join(f"bot{i}") for i in range(players)], dtype=np.int64)
        batches = RandomBatches(game_cls.input_fields, ids, np.random.default_rng(seed + 1))  # type: ignore[attr-defined]
        samples: dict[str, list[float]] = {name: [] for name in PHASES}
        for tick in range(warmup + ticks):
            batch = batches.next()
            c0 = time.perf_counter()
            game.apply_inputs(batch)
            c1 = time.perf_counter()
            game.step()
            c2 = time.perf_counter()
            view = game.view()
            c3 = time.perf_counter()
            state = game.state()
            c4 = time.perf_counter()
            if tick >= warmup:
                for name, took in zip(PHASES, (c1 - c0, c2 - c1, c3 - c2, c4 - c3), strict=True):
                    samples[name].append(took)
                entities.append(int(view.ids.shape[0]))
        state_bytes = _array_bytes(state) if warmup + ticks else 0
        for name in PHASES:
            a = np.array(samples[name]) * US
            per_run[name].append((float(np.median(a)), float(np.percentile(a, 99))))
    return BenchReport(
        game=getattr(game_cls, "name", game_cls.__name__),
        options=resolved,
        players=players,
        tick_rate=tick_rate,
        ticks=ticks,
        runs=runs,
        entities=float(np.mean(entities)),
        state_kib=state_bytes / 1024,
        phases={
            name: PhaseStats(
                median_us=float(np.median([m for m, _ in per_run[name]])),
                p99_us=float(np.median([p for _, p in per_run[name]])),
            )
            for name in PHASES
        },
    )


def _array_bytes(value: Any) -> int:
    """Bytes held by the numpy arrays in a state (nested dicts and lists too)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, Mapping):
        return sum(_array_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_array_bytes(v) for v in value)
    return 0


# -- the command -------------------------------------------------------------


def _fmt(xs: list[float]) -> str:
    a = np.array(xs) * US
    return f"{np.median(a):7.1f} {np.percentile(a, 99):7.1f}"


def arena_extras(samples: int, repeat: int) -> None:
    """Print arena's own workloads (the module docstring's (a)-(c))."""
    n = samples
    print(f"\narena's workloads: {n} timed ticks per run, best of {repeat} runs (lowest step median)")
    print(f"{'workload':44} {'entities':>8}  {'step':>15}  {'view':>15}  {'apply_inputs':>15}")
    runs = [
        ("(a) 16 players + 500 projectiles (sweep)", lambda: crowded(16, 500, 100.0, n)),
        ("(a') same, forced all-pairs", lambda: crowded(16, 500, 100.0, n, "all_pairs")),
        ("(b) 100 players + 900 projectiles (sweep)", lambda: crowded(100, 900, 300.0, n)),
        ("(b') same, forced all-pairs", lambda: crowded(100, 900, 300.0, max(EPISODE, n // 4), "all_pairs")),
        ("(c) room of 10 (all-pairs)", lambda: room(10, n)),
    ]
    for label, run in runs:
        # Best of several runs: other processes on a small machine only ever
        # add time, so the quietest run is the closest to the code's cost.
        t = min((run() for _ in range(repeat)), key=lambda r: float(np.median(r.step)))
        ents = f"{np.mean(t.entities):.0f}"
        print(f"{label:44} {ents:>8}  {_fmt(t.step)}  {_fmt(t.view)}  {_fmt(t.apply)}")


def main(argv: list[str] | None = None) -> None:
    """The command line; exits 2 with a message for an unknown game, bad
    options or a game that refuses the players."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--game", default="arena", help="a game's name or module.path:Class (default arena)")
    parser.add_argument("--options", default="{}", help="room options as a JSON object (default: the game's)")
    parser.add_argument("--players", type=int, default=10, help="players joined (default 10)")
    parser.add_argument("--tick-rate", type=int, default=DEFAULT_TICK_RATE, help="ticks per second (config.dt)")
    parser.add_argument("--ticks", type=int, default=3000, help="timed ticks per run (default 3000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed ticks before them (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the table shows medians over them")
    parser.add_argument("--seed", type=int, default=1, help="the game's seed (inputs use seed + 1)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH ('-': stdout)")
    parser.add_argument("--arena-extras", action="store_true", help="add arena's projectile workloads (arena only)")
    args = parser.parse_args(argv)
    for flag in ("players", "ticks", "runs", "tick_rate"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    try:
        game_cls = resolve_game(args.game)
    except GameLoadError as exc:
        parser.error(str(exc))
    if args.arena_extras and game_cls is not Arena:
        parser.error("--arena-extras needs --game arena")
    try:
        options = json.loads(args.options)
    except json.JSONDecodeError as exc:
        parser.error(f"--options is not JSON: {exc}")
    if not isinstance(options, dict):
        parser.error("--options must be a JSON object")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    try:
        report = bench_game(
            game_cls,
            players=args.players,
            ticks=args.ticks,
            runs=args.runs,
            warmup=args.warmup,
            options=options,
            tick_rate=args.tick_rate,
            seed=args.seed,
        )
    except OptionError as exc:
        parser.error(exc.message)
    except (GameFull, JoinRejected) as exc:
        parser.error(f"game {args.game!r} refused a player of {args.players}: {type(exc).__name__}: {exc}")
    print(report.table())
    if args.json == "-":
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    elif args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report.to_json(), out, indent=2)
    if args.arena_extras:
        arena_extras(args.ticks, args.runs)


if __name__ == "__main__":
    main()
