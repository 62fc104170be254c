"""tickroom.testing.check_game: tickroom's own games pass it, and each rule
catches the game that breaks it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from tag_game.tag import Tag

from tests.games.cards import Cards
from tickroom.simulation.game import View, Visibility
from tickroom.simulation.games.arena import Arena
from tickroom.testing import check_game


@pytest.mark.parametrize(
    ("game", "options"),
    [
        (Arena, None),
        (Arena, {"size": 60}),
        (Arena, {"fog": 15}),
        (Arena, {"rewind": 0.4}),
        (Tag, {"size": 80, "cooldown": 0.5}),
    ],
)
def test_tickroom_s_own_games_keep_every_rule(game, options) -> None:
    report = check_game(game, options=options)
    assert report.ok, report
    assert {r.rule for r in report.results} == {
        "declarations", "determinism", "restore", "view", "empty and unknown", "full", "visibility",
        "history", "hidden components", "stepped together", "no per-entity loop",
    }  # fmt: skip
    assert "PASS  no per-entity loop" in str(report)
    rewinds = bool(options and options.get("rewind"))  # the arena's lag compensation is opt-in
    assert ("ticks of history" in str(report)) == rewinds, report
    fogged = bool(options and options.get("fog"))
    assert ("distinct views per tick" in str(report)) == fogged, report


class LiveMemory(Arena):
    """Hands the room its live player positions as history: every rewind
    would see the present."""

    name = "live-memory"

    def remember(self) -> dict[str, np.ndarray]:
        return {"id": self._p["id"], "pos": self._p["pos"], "hp": self._p["hp"]}


def test_a_game_that_remembers_live_arrays_fails_the_history_rule() -> None:
    report = check_game(LiveMemory, options={"rewind": 0.4})  # the arena rewinds only when a room asks
    (failed,) = report.failed
    assert failed.rule == "history" and "fresh arrays" in failed.detail, report


class LiveView(Tag):
    """Hands out its position array itself: every delta would come out empty."""

    name = "live-view"

    def view(self) -> View:
        view = super().view()
        self._wire = getattr(self, "_wire", None)
        if self._wire is None or self._wire.shape != view.components["pos"].shape:
            self._wire = view.components["pos"]
        self._wire[...] = view.components["pos"]
        return View(view.ids, {**view.components, "pos": self._wire})


class ClockDriven(Tag):
    """Not deterministic: reads a source of randomness outside its state."""

    name = "clock-driven"

    def step(self) -> list[list[Any]]:
        self._pos += np.random.default_rng().normal(0, 0.01, self._pos.shape)
        return super().step()


class Forgetful(Tag):
    """state() leaves the scores out: a restored game drifts."""

    name = "forgetful"

    @classmethod
    def restore(cls, state, config):
        game = super().restore(state, config)
        game._score = np.zeros_like(game._score)
        return game


class Loopy(Tag):
    """Steps each player in a Python loop."""

    name = "loopy"

    def step(self) -> list[list[Any]]:
        for i in range(self._pos.shape[0]):
            self._pos[i] += 0.0
        return super().step()


class Bottomless(Tag):
    """Never full."""

    name = "bottomless"

    def join(self, name: str) -> int:
        self.config = type(self.config)(self.config.tick_rate, 10_000, self.config.options)
        return super().join(name)


class WrongDtype(Tag):
    name = "wrong-dtype"

    def view(self) -> View:
        view = super().view()
        return View(view.ids, {**view.components, "score": view.components["score"].astype(np.int64)})


class MaskTooNarrow(Tag):
    """A mask one column short of the view."""

    name = "mask-too-narrow"

    def visibility(self, view: View) -> Visibility:
        return Visibility(self._ids.astype(np.int64), np.ones((self._ids.shape[0], view.ids.shape[0] - 1), bool))


class MaskOfStrangers(Tag):
    """Rows for ids that are no players."""

    name = "mask-of-strangers"

    def visibility(self, view: View) -> Visibility:
        return Visibility(self._ids.astype(np.int64) + 1000, np.ones((self._ids.shape[0], view.ids.shape[0]), bool))


class MaskByDice(Tag):
    """A mask drawn from outside the game's state: not a function of it."""

    name = "mask-by-dice"

    def visibility(self, view: View) -> Visibility:
        mask = np.random.default_rng().random((self._ids.shape[0], view.ids.shape[0])) < 0.5
        return Visibility(self._ids.astype(np.int64), mask)


class HandMaskForgotten(Cards):
    """Hides the hands but forgets to say who sees them."""

    name = "hand-mask-forgotten"

    def visibility(self, view: View) -> Visibility:
        full = super().visibility(view)
        return Visibility(full.players, full.mask)


class HalfBatch(Arena):
    """Its batched step forgets the last game of the batch."""

    name = "half-batch"

    @classmethod
    def step_together(cls, games: Sequence[Arena]) -> list[list[list[Any]]]:  # type: ignore[override]
        return [game.step() for game in games[:-1]] + [[]]


class ViewsShuffled(Arena):
    """Its batched view hands each game another game's view."""

    name = "views-shuffled"

    @classmethod
    def view_together(cls, games: Sequence[Arena]) -> list[View]:
        return [game.view() for game in reversed(games)]


class HandMaskTooNarrow(Cards):
    """A hand mask one column short of the view."""

    name = "hand-mask-too-narrow"

    def visibility(self, view: View) -> Visibility:
        full = super().visibility(view)
        return Visibility(full.players, full.mask, {"hand": full.mask[:, 1:]})


def test_the_card_game_keeps_every_rule_and_its_hands_hidden() -> None:
    report = check_game(Cards)
    assert report.ok, report
    detail = {r.rule: r.detail for r in report.results}["hidden components"]
    assert "hidden cells read as zeros" in detail and not detail.startswith("0 client frames"), report


@pytest.mark.parametrize(
    ("game", "rule", "says"),
    [
        (HandMaskForgotten, "hidden components", "mask is none"),
        (HandMaskTooNarrow, "hidden components", "the view needs bool"),
        (HalfBatch, "stepped together", "differs from itself stepped alone"),
        (ViewsShuffled, "stepped together", "differs from its view()"),
        (MaskTooNarrow, "visibility", "the view needs bool"),
        (MaskOfStrangers, "visibility", "not players"),
        (MaskByDice, "visibility", "must be pure"),
        (LiveView, "view", "live array"),
        (ClockDriven, "determinism", "two different states"),
        (Forgetful, "restore", "another state"),
        (Loopy, "no per-entity loop", "a Python loop over players"),
        (Bottomless, "full", "GameFull"),
        (WrongDtype, "view", "'score'"),
    ],
)
def test_each_rule_catches_the_game_that_breaks_it(game, rule, says) -> None:
    report = check_game(game)
    failed = {r.rule: r.detail for r in report.failed}
    assert rule in failed and says in failed[rule], report
    assert "declarations" not in failed


def test_bad_declarations_stop_the_check_with_a_clear_failure() -> None:
    class NoInputs(Tag):
        name = "no-inputs"
        input_fields = {"mx": ("float", 1.0, -1.0)}

    report = check_game(NoInputs)
    assert not report.ok and report.results[0].rule == "declarations" and "lo <= hi" in report.results[0].detail
