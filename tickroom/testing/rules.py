"""``check_game``: hold a game class to the rules of tickroom.simulation.game.

Each rule runs on its own and gives a RuleResult; one failing rule never
hides another. The inputs are random but valid (drawn from the game's own
input fields) and seeded, so a report is reproducible.

    report = check_game(MyGame, options={"size": 80})
    print(report)
    assert report.ok, report
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import numpy as np

from tickroom.protocol.schema import Schema
from tickroom.protocol.validate import InputFields
from tickroom.server.cluster.checkpoint import pack, unpack
from tickroom.server.rooms.game_catalog import check_game_class
from tickroom.simulation.game import GameConfig, GameFull, InputBatch, View
from tickroom.simulation.options import resolve_options
from tickroom.testing.hidden_rule import check_hidden_components
from tickroom.testing.history_rule import history_rule
from tickroom.testing.together_rule import together_rule

FEW_PLAYERS, MANY_PLAYERS = 8, 32  # the step's Python lines must not grow between these
LOOP_TICKS = 20  # ticks traced per player count


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    detail: str


@dataclass(repr=False)
class GameReport:
    """What ``check_game`` found, rule by rule; ``str()`` prints a table."""

    game: str
    options: Mapping[str, Any]
    results: list[RuleResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every rule passed."""
        return all(result.passed for result in self.results)

    @property
    def failed(self) -> list[RuleResult]:
        return [result for result in self.results if not result.passed]

    def __str__(self) -> str:
        width = max((len(result.rule) for result in self.results), default=4)
        lines = [f"check_game({self.game}, options={dict(self.options)}):"]
        for result in self.results:
            lines.append(f"  {'PASS' if result.passed else 'FAIL'}  {result.rule:<{width}}  {result.detail}")
        lines.append(f"  {len(self.results) - len(self.failed)}/{len(self.results)} rules passed")
        return "\n".join(lines)

    __repr__ = __str__  # ``assert report.ok, report`` prints the table


class _Checker:
    def __init__(
        self, game_cls: type[Any], options: Mapping[str, Any] | None, tick_rate: int, seed: int, ticks: int
    ) -> None:
        self.game_cls = game_cls
        self.options = resolve_options(game_cls, options)
        self.tick_rate = tick_rate
        self.seed = seed
        self.ticks = ticks
        self.inputs = InputFields(getattr(game_cls, "input_fields", {}))
        self.schema = Schema.from_description(getattr(game_cls, "components", {}))

    def config(self, max_players: int = MANY_PLAYERS) -> GameConfig:
        return GameConfig(tick_rate=self.tick_rate, max_players=max_players, options=self.options)

    def new(self, players: int, seed: int | None = None, max_players: int = MANY_PLAYERS) -> tuple[Any, list[int]]:
        game = self.game_cls(seed=self.seed if seed is None else seed, config=self.config(max_players))
        return game, [game.join(f"player-{i}") for i in range(players)]

    def batch(self, rng: np.random.Generator, ids: list[int]) -> InputBatch:
        """A valid random tick of inputs: some players send 1-3 rows, grouped by player."""
        players = np.array(ids, dtype=np.int64)
        players = players[rng.random(players.shape[0]) < 0.8]
        players = np.repeat(players, rng.integers(1, 4, size=players.shape[0]))
        n = players.shape[0]
        columns: dict[str, np.ndarray] = {}
        for name, spec in self.inputs.fields.items():
            if spec[0] == "bool":
                columns[name] = np.asarray(rng.random(n) < 0.5)
            elif spec[0] == "int":
                columns[name] = np.asarray(
                    rng.integers(int(spec[1]), int(spec[2]), size=n, endpoint=True, dtype=np.int64)
                )
            else:
                columns[name] = np.asarray(rng.uniform(float(spec[1]), float(spec[2]), size=n))
        return InputBatch(players=players, fields=columns)

    def play(self, game: Any, ids: list[int], ticks: int, input_seed: int) -> None:
        rng = np.random.default_rng(input_seed)
        for _ in range(ticks):
            game.apply_inputs(self.batch(rng, ids))
            game.step()


def _fingerprint(game: Any) -> bytes:
    """The state as the checkpoint codec writes it: equal bytes, equal state."""
    return pack(game.state())


def _rule(report: GameReport, name: str, check: Callable[[], str]) -> None:
    try:
        detail = check()
        report.results.append(RuleResult(name, True, detail))
    except Exception as exc:  # noqa: BLE001 - a rule that raises is a failed rule, reported with its error
        report.results.append(RuleResult(name, False, f"{type(exc).__name__}: {exc}"))


def check_game(
    game_cls: type[Any],
    *,
    options: Mapping[str, Any] | None = None,
    tick_rate: int = 20,
    seed: int = 1,
    ticks: int = 60,
) -> GameReport:
    """Run every rule of tickroom.simulation.game against ``game_cls`` with
    the room ``options`` (checked and completed as the server does) and
    return the report; it never raises for a rule that fails."""
    report = GameReport(getattr(game_cls, "name", repr(game_cls)), dict(options or {}))
    try:
        check_game_class(game_cls)
        checker = _Checker(game_cls, options, tick_rate, seed, ticks)
    except Exception as exc:  # noqa: BLE001 - nothing else can run without the declarations
        report.results.append(RuleResult("declarations", False, f"{type(exc).__name__}: {exc}"))
        return report
    report.options = dict(checker.options)
    report.results.append(
        RuleResult(
            "declarations", True,
            f"name {game_cls.name!r}, inputs {sorted(checker.inputs.fields)}, "
            f"components {[c.name for c in checker.schema.components]}, options {sorted(checker.options)}",
        )
    )  # fmt: skip
    for name, rule in RULES:
        _rule(report, name, lambda rule=rule: rule(checker))  # type: ignore[misc]
    return report


# -- the rules -----------------------------------------------------------------------


def _determinism(c: _Checker) -> str:
    runs = []
    for _ in range(2):
        game, ids = c.new(4)
        c.play(game, ids, c.ticks, input_seed=99)
        runs.append(_fingerprint(game))
    if runs[0] != runs[1]:
        raise AssertionError(f"the same seed and inputs gave two different states after {c.ticks} ticks")
    other, ids = c.new(4, seed=c.seed + 1)
    c.play(other, ids, c.ticks, input_seed=99)
    differs = "differs" if _fingerprint(other) != runs[0] else "is the same (allowed)"
    return f"same seed and inputs: bit-identical after {c.ticks} ticks; another seed {differs}"


def _restore(c: _Checker) -> str:
    game, ids = c.new(4)
    c.play(game, ids, c.ticks // 2, input_seed=5)
    copy = c.game_cls.restore(unpack(pack(game.state())), c.config())
    if _fingerprint(copy) != _fingerprint(game):
        raise AssertionError("restore(state()) through the checkpoint codec gives another state")
    for each in (game, copy):
        c.play(each, ids, c.ticks // 2, input_seed=6)
    if _fingerprint(copy) != _fingerprint(game):
        raise AssertionError(f"the restored game drifted from the original within {c.ticks // 2} ticks")
    if not _same_view(copy.view(), game.view()):
        raise AssertionError("the restored game's view differs from the original's")
    return f"restored at tick {c.ticks // 2} through the checkpoint codec, bit-identical {c.ticks // 2} ticks on"


def _same_view(a: View, b: View) -> bool:
    return np.array_equal(a.ids, b.ids) and all(np.array_equal(a.components[k], b.components[k]) for k in a.components)


def _view_fits(c: _Checker, view: View) -> None:
    ids = np.asarray(view.ids)
    if ids.dtype != np.uint32 or ids.ndim != 1:
        raise AssertionError(f"view ids must be a 1-D uint32 array, got {ids.dtype} {ids.shape}")
    if ids.shape[0] > 1 and not bool(np.all(np.diff(ids.astype(np.int64)) > 0)):
        raise AssertionError("view ids must be unique and ascending")
    if set(view.components) != {spec.name for spec in c.schema.components}:
        raise AssertionError(f"view components {sorted(view.components)} are not the schema's")
    for spec in c.schema.components:
        array = view.components[spec.name]
        want = (ids.shape[0], *spec.shape)
        if array.dtype != spec.dtype or array.shape != want:
            raise AssertionError(
                f"component {spec.name!r} is {array.dtype} {array.shape}, the schema says {spec.dtype} {want}"
            )


def _view(c: _Checker) -> str:
    game, ids = c.new(4)
    c.play(game, ids, 3, input_seed=7)
    first = game.view()
    _view_fits(c, first)
    second = game.view()
    saved = {name: array.copy() for name, array in first.components.items()}
    for name, array in first.components.items():
        if np.shares_memory(array, second.components[name]):
            raise AssertionError(f"view() hands out a live array for {name!r}: every delta would come out empty")
    c.play(game, ids, c.ticks, input_seed=8)
    for name, array in first.components.items():
        if not np.array_equal(array, saved[name]):
            raise AssertionError(
                f"an earlier view's {name!r} changed when the game stepped: view() must return fresh arrays"
            )
    _view_fits(c, game.view())
    return f"{len(ids)} entities fit the schema; arrays are fresh"


def _empty_and_unknown(c: _Checker) -> str:
    game, _ = c.new(0)
    c.play(game, [], 5, input_seed=9)
    _view_fits(c, game.view())
    game.leave(987_654)  # unknown ids are ignored
    restored = c.game_cls.restore(unpack(pack(game.state())), c.config())
    restored.step()
    game, ids = c.new(3)
    c.play(game, ids + [987_654], 5, input_seed=10)  # inputs of an unknown player id
    for pid in ids:
        game.leave(pid)
    game.leave(ids[0])  # twice
    c.play(game, [], 5, input_seed=11)
    _view_fits(c, game.view())
    if any(int(pid) in game.view().ids.tolist() for pid in ids):
        raise AssertionError("players who left are still in the view")
    return "an empty room steps, views and restores; unknown ids (leave, inputs) are ignored"


def _visibility(c: _Checker) -> str:
    """The optional visibility(view) (tickroom.simulation.game): each tick's
    mask fits that tick's view, its rows are players of the game, and it is
    a pure function of the game (asked twice, the same answer; the view is
    left as it was)."""
    if getattr(c.game_cls, "visibility", None) is None:
        return "no visibility(): every player sees the whole view"
    game, ids = c.new(FEW_PLAYERS)
    rng = np.random.default_rng(14)
    joined = set(ids)
    masks = distinct = 0
    for _ in range(c.ticks):
        game.apply_inputs(c.batch(rng, ids))
        game.step()
        view = game.view()
        before = {name: array.copy() for name, array in view.components.items()}
        first = game.visibility(view)
        again = game.visibility(view)
        if first is None or again is None:
            if (first is None) != (again is None):
                raise AssertionError("visibility(view) answered None once and a mask once for the same view")
            continue
        players, mask = np.asarray(first.players), np.asarray(first.mask)
        if players.ndim != 1 or (players.size and players.dtype.kind not in "iu"):
            raise AssertionError(f"visibility players must be a 1-D integer array, got {players.dtype} {players.shape}")
        if np.unique(players).shape[0] != players.shape[0]:
            raise AssertionError("visibility players must be unique")
        strangers = sorted(set(players.tolist()) - joined)
        if strangers:
            raise AssertionError(f"visibility has rows for ids that are not players: {strangers[:5]}")
        want = (players.shape[0], np.asarray(view.ids).shape[0])
        if mask.dtype != np.bool_ or mask.shape != want:
            raise AssertionError(f"visibility mask is {mask.dtype} {mask.shape}, the view needs bool {want}")
        if not (np.array_equal(players, np.asarray(again.players)) and np.array_equal(mask, np.asarray(again.mask))):
            raise AssertionError("visibility(view) gave two different masks for the same view: it must be pure")
        if any(not np.array_equal(before[name], view.components[name]) for name in before):
            raise AssertionError("visibility(view) changed the view it was given")
        masks += 1
        distinct += np.unique(mask, axis=0).shape[0] if mask.size else 1
    if not masks:
        return f"visibility() answered None for {c.ticks} ticks: every player sees the whole view"
    return (
        f"{masks} masks at {FEW_PLAYERS} players fit their views (players x entities, bool), pure; "
        f"{distinct / masks:.1f} distinct views per tick"
    )


def _full(c: _Checker) -> str:
    game, _ = c.new(2, max_players=2)
    try:
        game.join("one-too-many")
    except GameFull:
        return "join() raises GameFull at config.max_players"
    raise AssertionError("a third join with max_players=2 did not raise GameFull")


def _line_counts(c: _Checker, players: int) -> collections.Counter[tuple[str, int]]:
    """How often each Python line ran in apply_inputs + step over LOOP_TICKS ticks."""
    game, ids = c.new(players, max_players=MANY_PLAYERS)
    c.play(game, ids, 3, input_seed=12)  # warm up: first-tick paths
    rng = np.random.default_rng(13)
    batches = [c.batch(rng, ids) for _ in range(LOOP_TICKS)]
    counts: collections.Counter[tuple[str, int]] = collections.Counter()

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            counts[(frame.f_code.co_filename, frame.f_lineno)] += 1
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        for batch in batches:
            game.apply_inputs(batch)
            game.step()
    finally:
        sys.settrace(previous)
    return counts


def _no_per_entity_loop(c: _Checker) -> str:
    # Per line, not in total: events (a hit, a tag) and empty batches move a
    # tick's lines by dozens either way whatever the number of players, but
    # a loop over the entities runs its body once per entity on every tick.
    # A line that runs at least MANY_PLAYERS / 2 times a tick at
    # MANY_PLAYERS, and twice as often as at FEW_PLAYERS, is one.
    few, many = _line_counts(c, FEW_PLAYERS), _line_counts(c, MANY_PLAYERS)
    looping = sorted(
        (line for line, n in many.items() if n >= LOOP_TICKS * MANY_PLAYERS / 2 and n >= 2 * few.get(line, 0)),
        key=lambda line: -many[line],
    )
    figures = (
        f"{sum(few.values()) // LOOP_TICKS} Python lines per tick at {FEW_PLAYERS} players, "
        f"{sum(many.values()) // LOOP_TICKS} at {MANY_PLAYERS}; no line runs once per player"
    )
    if looping:
        where = ", ".join(
            f"{path}:{lineno} ({many[(path, lineno)] // LOOP_TICKS}/tick)" for path, lineno in looping[:3]
        )
        raise AssertionError(f"a Python loop over players in apply_inputs/step: {where}")
    return figures


RULES: tuple[tuple[str, Callable[[_Checker], str]], ...] = (
    ("determinism", _determinism),
    ("restore", _restore),
    ("view", _view),
    ("empty and unknown", _empty_and_unknown),
    ("full", _full),
    ("visibility", _visibility),
    ("history", lambda c: history_rule(c, FEW_PLAYERS)),
    ("hidden components", check_hidden_components),
    ("stepped together", together_rule),
    ("no per-entity loop", _no_per_entity_loop),
)
