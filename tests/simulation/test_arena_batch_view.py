"""Arena.view_together (arena_batch_view) gives every room exactly its
view(): rooms of different sizes, empty rooms, rooms with projectiles in
flight, and a room whose newest player joined after one of its live
projectiles was fired (build_view sorts it: it takes build_view alone)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickroom.simulation.game import GameConfig, View
from tickroom.simulation.games.arena import Arena
from tickroom.simulation.random_batches import RandomBatches


def same(a: View, b: View) -> None:
    assert a.ids.dtype == b.ids.dtype and np.array_equal(a.ids, b.ids)
    assert a.components.keys() == b.components.keys()
    for name in a.components:
        x, y = a.components[name], b.components[name]
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), name


def rooms(seed: int, players: list[int], ticks: int, late_joiner: bool) -> list[Arena]:
    games = []
    for k, count in enumerate(players):
        game = Arena(seed + k, GameConfig(options={"size": 30.0}))
        ids = np.array([game.join(f"p{i}") for i in range(count)], dtype=np.int64)
        if count:
            inputs = RandomBatches(Arena.input_fields, ids, np.random.default_rng(seed + k))
            for _ in range(ticks):
                game.apply_inputs(inputs.next())
                game.step()
        games.append(game)
    if late_joiner and games:
        games[0].join("late")  # after the projectiles in flight: its id is the largest
    return games


@given(
    st.integers(0, 2**31),
    st.lists(st.integers(0, 12), min_size=0, max_size=7),
    st.integers(0, 40),
    st.booleans(),
)
@settings(max_examples=60)
def test_views_together_are_each_room_s_view(seed, players, ticks, late_joiner):
    games = rooms(seed, players, ticks, late_joiner)
    together = Arena.view_together(games)
    assert len(together) == len(games)
    for game, view in zip(games, together, strict=True):
        same(view, game.view())


def test_the_views_are_fresh_and_the_common_case_is_batched():
    games = rooms(5, [10, 10, 10], 30, late_joiner=False)
    assert sum(g._q.n for g in games) > 0  # projectiles in flight: both halves of the layout
    views = Arena.view_together(games)
    assert views[0].ids.base is not None and views[0].ids.base is views[1].ids.base  # one shared pass
    kept = [{k: np.array(a) for k, a in v.components.items()} for v in views]
    for game in games:
        game.step()
    for view, comps in zip(views, kept, strict=True):
        for name, arr in comps.items():
            assert np.array_equal(view.components[name], arr), name
