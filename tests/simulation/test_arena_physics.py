"""The two collision strategies agree; damage resolution; batch reduction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.simulation.helpers import new_game, random_batch, states_equal
from tickroom.simulation.games import arena_physics as ph
from tickroom.simulation.games.arena import HIT_RADIUS
from tickroom.simulation.inputs import rows_by_player


def random_layout(rng: np.random.Generator, p: int, n: int, extent: float, grid: float | None):
    """Players and projectiles scattered over [0, extent]^2; on a coarse grid
    when ``grid`` is set, so that exact-radius contacts and distance ties
    (the cases where the strategies could disagree) are common."""

    def points(k):
        if grid:
            return rng.integers(0, int(extent / grid) + 1, size=(k, 2)) * grid
        return rng.uniform(0, extent, size=(k, 2))

    p_id = np.arange(1, p + 1, dtype=np.uint32)
    return dict(
        q_pos=points(n),
        q_owner=rng.integers(0, p + 2, size=n).astype(np.uint32),
        q_live=rng.random(n) < 0.9,
        p_pos=points(p),
        p_id=p_id,
        p_alive=rng.random(p) < 0.8,
        radius=HIT_RADIUS,
    )


def assert_same_hits(layout):
    a = ph.find_hits_all_pairs(**layout)
    b = ph.find_hits_sweep(**layout)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    return a


def test_sweep_matches_all_pairs_on_seeded_random_layouts():
    rng = np.random.default_rng(2024)
    total_hits = 0
    for i in range(300):
        p, n = int(rng.integers(0, 80)), int(rng.integers(0, 500))
        grid = [None, 0.6, 0.3][i % 3]
        layout = random_layout(rng, p, n, extent=float(rng.choice([10.0, 30.0, 100.0])), grid=grid)
        q_rows, p_rows = assert_same_hits(layout)
        total_hits += len(q_rows)
        if len(q_rows):  # the contract both satisfy, not just each other
            assert (np.diff(q_rows) > 0).all()
            assert (layout["q_owner"][q_rows] != layout["p_id"][p_rows]).all()
            assert layout["p_alive"][p_rows].all() and layout["q_live"][q_rows].all()
    assert total_hits > 1000


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), p=st.integers(0, 30), n=st.integers(0, 60))
def test_sweep_matches_all_pairs_hypothesis(seed, p, n):
    rng = np.random.default_rng(seed)
    assert_same_hits(random_layout(rng, p, n, extent=6.0, grid=0.2))


def test_nearest_player_wins_ties_to_lowest_row():
    layout = dict(
        q_pos=np.array([[5.0, 5.0], [5.0, 5.0]]),
        q_owner=np.array([9, 2], dtype=np.uint32),
        q_live=np.array([True, True]),
        p_pos=np.array([[6.0, 5.0], [4.0, 5.0], [5.5, 5.0]]),
        p_id=np.array([1, 2, 3], dtype=np.uint32),
        p_alive=np.array([True, True, True]),
        radius=HIT_RADIUS,
    )
    q_rows, p_rows = assert_same_hits(layout)
    assert q_rows.tolist() == [0, 1] and p_rows.tolist() == [2, 2]
    layout["p_alive"][2] = False  # rows 0 and 1 tie at distance 1
    q_rows, p_rows = assert_same_hits(layout)
    assert p_rows.tolist() == [0, 0]  # projectile 1's owner is row 1 anyway


def test_auto_switches_to_sweep_only_for_large_rooms(monkeypatch):
    calls = []
    monkeypatch.setattr(ph, "find_hits_sweep", lambda *a: calls.append("sweep") or (ph._EMPTY, ph._EMPTY))
    monkeypatch.setattr(ph, "find_hits_all_pairs", lambda *a: calls.append("all") or (ph._EMPTY, ph._EMPTY))
    for p, n in ((10, 20), (100, 900)):
        layout = random_layout(np.random.default_rng(0), p, n, 100.0, None)
        ph.find_hits(**layout)
    assert calls == ["all", "sweep"]


def test_whole_games_agree_across_collision_methods():
    finals = []
    for method in ("all_pairs", "sweep"):
        game, ids = new_game(40, seed=11, size=60.0, collision=method)
        rng = np.random.default_rng(3)
        events = []
        for _ in range(300):
            game.apply_inputs(random_batch(rng, ids))
            events.extend(game.step())
        finals.append((game.state(), events))
    assert finals[0][1] == finals[1][1]
    assert sum(e[0] == "hit" for e in finals[0][1]) > 20
    assert states_equal(finals[0][0], finals[1][0])


def test_resolve_hits_orders_by_projectile_id_and_absorbs_overkill():
    q_ids = np.array([50, 30, 90, 70], dtype=np.uint32)
    q_rows = np.array([0, 1, 2, 3])
    p_rows = np.array([0, 0, 0, 1])
    hp = np.array([30, 100])
    q_rows, p_rows, landed, dealt, killed = ph.resolve_hits(q_ids, q_rows, p_rows, hp, 25)
    assert q_ids[q_rows].tolist() == [30, 50, 70, 90]
    assert landed.tolist() == [True, True, True, False]
    assert dealt[landed].tolist() == [25, 5, 25]
    assert killed.tolist() == [False, True, False, False]


@pytest.mark.parametrize(
    "players, fire, ids, last, pressed",
    [
        # one row each, ascending: the no-grouping path
        ([3, 7, 9], [0, 1, 0], [3, 7, 9], [0, 1, 2], [0, 1, 0]),
        # grouped, ascending
        ([3, 7, 7, 9, 9, 9], [0, 1, 0, 0, 0, 1], [3, 7, 9], [0, 2, 5], [0, 1, 1]),
        # grouped in any player order: the np.unique path
        ([7, 7, 3, 9, 9, 9], [1, 0, 0, 0, 0, 1], [3, 7, 9], [2, 1, 5], [0, 1, 1]),
        # not even grouped (outside the contract): still last row wins
        ([9, 3, 9, 3], [1, 0, 0, 0], [3, 9], [3, 2], [0, 1]),
    ],
)
def test_rows_by_player_last_row_and_any(players, fire, ids, last, pressed):
    rows = rows_by_player(np.array(players, dtype=np.int64))
    assert rows.ids.tolist() == ids
    assert np.arange(len(players))[rows.last].tolist() == last
    assert rows.any(np.array(fire, dtype=bool)).tolist() == [bool(x) for x in pressed]
