"""check_game's rule for the batched forms (tickroom.simulation.game,
``step_together`` / ``apply_inputs_together``): games stepped together end
bit-identical to the same games stepped one by one, and a batched call that
raises changed nothing. Apart from the other rules so that each module stays
small."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from tickroom.server.cluster.checkpoint import pack
from tickroom.simulation.game import InputBatch, View

GAMES = 4  # games in the batch, each with its own seed, players and inputs


class Checker(Protocol):
    game_cls: type[Any]
    seed: int
    ticks: int

    def new(self, players: int, seed: int | None = None) -> tuple[Any, list[int]]: ...

    def batch(self, rng: np.random.Generator, ids: list[int]) -> InputBatch: ...


def _same_view(a: View, b: View) -> bool:
    return (
        a.ids.dtype == b.ids.dtype
        and np.array_equal(a.ids, b.ids)
        and a.components.keys() == b.components.keys()
        and all(
            a.components[k].dtype == b.components[k].dtype and np.array_equal(a.components[k], b.components[k])
            for k in a.components
        )
    )


def _fresh(view_together: Any, games: list[Any]) -> None:
    """No array view_together returns is a game's own: steps must not change them."""
    views = view_together(games)
    kept = [(np.array(v.ids), {k: np.array(a) for k, a in v.components.items()}) for v in views]
    for _ in range(3):
        for game in games:
            game.step()
    for view, (ids, comps) in zip(views, kept, strict=True):
        if not np.array_equal(ids, view.ids) or any(not np.array_equal(comps[k], view.components[k]) for k in comps):
            raise AssertionError("view_together handed out a live array: a later step changed a view it returned")


def together_rule(c: Checker) -> str:
    step_together = getattr(c.game_cls, "step_together", None)
    apply_together = getattr(c.game_cls, "apply_inputs_together", None)
    view_together = getattr(c.game_cls, "view_together", None)
    if step_together is None and apply_together is None and view_together is None:
        return "no batched forms declared: the server steps each room alone"
    worlds = []
    for _ in range(2):  # one copy stepped alone, one together; games start at different ticks
        started = [c.new(1 + i, seed=c.seed + i) for i in range(GAMES)]
        for i, (game, ids) in enumerate(started):
            rng = np.random.default_rng(1000 + i)
            for _ in range(i):
                game.apply_inputs(c.batch(rng, ids))
                game.step()
        worlds.append(started)
    alone, together = worlds
    rngs_alone = [np.random.default_rng(i) for i in range(GAMES)]
    rngs_together = [np.random.default_rng(i) for i in range(GAMES)]
    for tick in range(c.ticks):
        events_alone = []
        for (game, ids), rng in zip(alone, rngs_alone, strict=True):
            game.apply_inputs(c.batch(rng, ids))
            events_alone.append(game.step())
        games = [game for game, _ in together]
        batches = [c.batch(rng, ids) for (_, ids), rng in zip(together, rngs_together, strict=True)]
        if apply_together is not None:
            apply_together(games, batches)
        else:
            for game, batch in zip(games, batches, strict=True):
                game.apply_inputs(batch)
        events = step_together(games) if step_together is not None else [game.step() for game in games]
        if events != events_alone:
            raise AssertionError(f"step_together's events differ from step()'s at step {tick + 1}")
        for i, ((a, _), (b, _)) in enumerate(zip(alone, together, strict=True)):
            if pack(a.state()) != pack(b.state()):
                raise AssertionError(f"game {i} stepped together differs from itself stepped alone at step {tick + 1}")
        if view_together is not None:
            before = [pack(game.state()) for game in games]
            views = view_together(games)
            if [pack(game.state()) for game in games] != before:
                raise AssertionError("view_together changed a game")
            for i, (game, view) in enumerate(zip(games, views, strict=True)):
                if not _same_view(view, game.view()):
                    raise AssertionError(f"view_together's view of game {i} differs from its view() at step {tick + 1}")
    if view_together is not None:  # after the comparison: these steps change the games
        _fresh(view_together, [game for game, _ in together])
    forms = ", ".join(
        name
        for name, form in (
            ("apply_inputs_together", apply_together),
            ("step_together", step_together),
            ("view_together", view_together),
        )
        if form
    )
    return f"{forms}: {GAMES} games bit-identical to the same games alone for {c.ticks} ticks"
