"""Arena rules: movement, inputs, projectiles, damage, checkpoints, view."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.simulation.helpers import batch, edit_players, new_game, random_batch, states_equal
from tickroom.simulation import GameConfig, GameFull, get_game
from tickroom.simulation.games import GAMES
from tickroom.simulation.games.arena import (
    DAMAGE,
    MAX_HP,
    PLAYER_RADIUS,
    PLAYER_SPEED,
    PROJECTILE_SPEED,
    Arena,
)

DT = 1 / 20  # s, GameConfig's default tick
STEP = PLAYER_SPEED * DT  # units a full stick moves per tick
SHOT_STEP = PROJECTILE_SPEED * DT  # units a projectile flies per tick


def projectiles(game: Arena) -> dict[str, np.ndarray]:
    """The view's projectile rows (kind 1), component by component."""
    v = game.view()
    sel = v.components["kind"] == 1
    return {"ids": v.ids[sel], **{k: a[sel] for k, a in v.components.items()}}


def player_pos(game: Arena) -> np.ndarray:
    return game.state()["p_pos"]


# -- registry ---------------------------------------------------------------


def test_registry_finds_arena_and_names_known_games_on_miss():
    assert get_game("arena") is Arena
    assert GAMES == {"arena": Arena}
    with pytest.raises(KeyError, match="known games: arena"):
        get_game("chess")


def test_options_out_of_range_are_refused():
    with pytest.raises(ValueError, match="size"):
        Arena(seed=0, config=GameConfig(options={"size": 2000.0}))
    with pytest.raises(ValueError, match="collision"):
        Arena(seed=0, config=GameConfig(options={"collision": "grid"}))


# -- movement ---------------------------------------------------------------


def test_full_stick_moves_player_speed_and_inputs_persist():
    game, (a,) = new_game(1)
    game = edit_players(game, pos=[[50.0, 50.0]])
    game.apply_inputs(batch([(a, 1.0, 0.0, 0.0, False)]))
    game.step()
    np.testing.assert_allclose(player_pos(game)[0], [50.0 + STEP, 50.0])
    for _ in range(9):  # no new input: keeps moving with the last stick
        game.step()
    np.testing.assert_allclose(player_pos(game)[0], [50.0 + 10 * STEP, 50.0])
    game.apply_inputs(batch([(a, 0.0, 0.0, 0.0, False)]))
    game.step()
    np.testing.assert_allclose(player_pos(game)[0], [50.0 + 10 * STEP, 50.0])


def test_diagonal_stick_is_clamped_to_unit_length():
    game, (a,) = new_game(1)
    game = edit_players(game, pos=[[50.0, 50.0]])
    game.apply_inputs(batch([(a, 1.0, 1.0, 0.0, False)]))
    game.step()
    moved = player_pos(game)[0] - 50.0
    assert math.hypot(*moved) == pytest.approx(STEP)
    assert moved[0] == pytest.approx(STEP / math.sqrt(2))


def test_players_are_clamped_inside_the_walls():
    game, (a, b) = new_game(2, size=40.0)
    game.apply_inputs(batch([(a, 1.0, 1.0, 0.0, False), (b, -1.0, -1.0, 0.0, False)]))
    for _ in range(200):
        game.step()
    pos = player_pos(game)
    np.testing.assert_array_equal(pos[0], [40.0 - PLAYER_RADIUS] * 2)
    np.testing.assert_array_equal(pos[1], [PLAYER_RADIUS] * 2)


# -- inputs -----------------------------------------------------------------


def test_last_row_wins_for_stick_and_any_row_fires():
    game, (a, b) = new_game(2)
    game = edit_players(game, pos=[[50.0, 50.0], [20.0, 20.0]])
    game.apply_inputs(
        batch(
            [
                (b, 0.0, 1.0, 1.0, False),
                (a, 1.0, 0.0, 0.5, True),  # a taps fire...
                (a, -1.0, 0.0, 2.0, False),  # ...and releases within the tick
                (999, 1.0, 1.0, 0.0, True),  # not a player: ignored
            ]
        )
    )
    game.step()
    pos = player_pos(game)
    np.testing.assert_allclose(pos[0], [50.0 - STEP, 50.0])
    np.testing.assert_allclose(pos[1], [20.0, 20.0 + STEP])
    shots = projectiles(game)
    assert shots["owner"].tolist() == [a]
    assert shots["aim"].tolist() == [round(2.0 * 40)]  # the newest row's aim
    for _ in range(10):  # trigger released: no more shots
        game.step()
    assert projectiles(game)["owner"].tolist() == [a]


def test_held_trigger_fires_every_cooldown():
    game, (a,) = new_game(1, size=1000.0)
    game.apply_inputs(batch([(a, 0.0, 0.0, 0.0, True)]))
    for _ in range(20):
        game.step()
    # 0.25 s at 20 Hz = 5 ticks: shots on ticks 1, 6, 11, 16.
    assert len(projectiles(game)["ids"]) == 4


# -- projectiles ------------------------------------------------------------


def test_projectile_spawns_at_shooter_flies_and_expires_by_ttl():
    game, (a,) = new_game(1, size=1000.0)
    game = edit_players(game, pos=[[50.0, 50.0]])
    game.apply_inputs(batch([(a, 0.0, 0.0, math.pi / 2, True)]))
    game.step()
    game.apply_inputs(batch([(a, 0.0, 0.0, math.pi / 2, False)]))
    shot = projectiles(game)
    assert shot["owner"].tolist() == [a]
    assert shot["ids"][0] > a  # ids come from the one counter
    assert shot["hp"].tolist() == [0] and shot["score"].tolist() == [0]
    # Sent once: the origin (the shooter's centre), the step per tick at
    # 1/512 unit, and t0, the tick before its fire tick 1.
    assert shot["pos"].tolist() == [[50 * 32, 50 * 32]]
    assert shot["vel"].tolist() == [[0, round(SHOT_STEP * 512)]] and shot["t0"].tolist() == [0]
    assert game.state()["q_pos"].tolist() == [[50.0, 50.0 + SHOT_STEP]]
    for _ in range(29):  # 1.5 s at 20 Hz = 30 ticks of life
        game.step()
    assert projectiles(game)["pos"].tolist() == [[50 * 32, 50 * 32]]  # unchanged on the wire
    assert game.state()["q_pos"].tolist() == [[50.0, 50.0 + 30 * SHOT_STEP]]
    game.step()
    assert len(projectiles(game)["ids"]) == 0


def test_projectile_expires_when_leaving_the_arena():
    game, (a,) = new_game(1)
    game = edit_players(game, pos=[[95.0, 50.0]])
    game.apply_inputs(batch([(a, 0.0, 0.0, 0.0, True)]))
    game.step()
    game.apply_inputs(batch([(a, 0.0, 0.0, 0.0, False)]))
    game.step()  # x = 99
    assert len(projectiles(game)["ids"]) == 1
    game.step()  # x = 101: gone
    assert len(projectiles(game)["ids"]) == 0


def test_full_projectile_pool_drops_new_shots():
    game, ids = new_game(3, max_projectiles=2, size=1000.0)
    game.apply_inputs(batch([(p, 0.0, 0.0, 0.0, True) for p in ids]))
    game.step()
    assert sorted(projectiles(game)["owner"].tolist()) == ids[:2]


# -- damage -----------------------------------------------------------------


def duel() -> tuple[Arena, int, int]:
    """Shooter at (40, 50) aiming +x at a target at (50, 50), trigger held."""
    game, (s, t) = new_game(2)
    game = edit_players(game, pos=[[40.0, 50.0], [50.0, 50.0]])
    game.apply_inputs(batch([(s, 0.0, 0.0, 0.0, True)]))
    return game, s, t


def test_hits_hurt_kills_score_and_dead_respawn_after_two_seconds():
    game, s, t = duel()
    log = {tick: game.step() for tick in range(1, 21)}
    # Shots leave on ticks 1, 6, 11, 16 and reach x = 50 four ticks later.
    assert log[5] == [["hit", s, t, DAMAGE]]
    assert [e for e in log.values() if e] == [[["hit", s, t, DAMAGE]]] * 3 + [[["hit", s, t, DAMAGE], ["kill", s, t]]]
    v = game.view()
    assert v.components["hp"].tolist()[:2] == [MAX_HP, 0]
    assert v.components["score"].tolist()[:2] == [1, 0]
    dead_at = player_pos(game)[1].copy()
    game.apply_inputs(batch([(s, 0.0, 0.0, 0.0, True), (t, 1.0, 0.0, math.pi, True)]))
    for _ in range(21, 60):  # the shooter keeps firing through the body
        assert game.step() == []
    np.testing.assert_array_equal(player_pos(game)[1], dead_at)  # the dead don't move
    assert len(projectiles(game)["ids"]) > 0 and set(projectiles(game)["owner"].tolist()) == {s}
    assert game.step() == [["respawn", t]]  # tick 60 = death tick 20 + 40
    assert game.view().components["hp"].tolist()[1] == MAX_HP


def test_simultaneous_hits_on_a_weak_target_give_one_kill_to_the_older_shot():
    game, (s1, s2, t) = new_game(3)
    game = edit_players(game, pos=[[40.0, 50.0], [60.0, 50.0], [50.0, 50.0]], hp=[100, 100, 25])
    game.apply_inputs(batch([(s2, 0.0, 0.0, math.pi, True), (s1, 0.0, 0.0, 0.0, True)]))
    events = [e for _ in range(5) for e in game.step()]
    assert events == [["hit", s1, t, 25], ["kill", s1, t]]
    assert game.view().components["score"].tolist()[:3] == [1, 0, 0]


def test_kill_by_a_player_who_left_scores_for_nobody():
    game, s, t = duel()
    game = edit_players(game, hp=[100, 25])
    game.step()
    game.leave(s)
    events = [e for _ in range(4) for e in game.step()]
    assert events == [["hit", s, t, 25], ["kill", s, t]]
    assert game.view().components["score"].tolist() == [0]


# -- players ----------------------------------------------------------------


def test_join_raises_game_full_and_ids_are_never_reused():
    game = Arena(seed=1, config=GameConfig(max_players=2))
    a, b = game.join("a"), game.join("b")
    with pytest.raises(GameFull):
        game.join("c")
    game.leave(a)
    c = game.join("c")
    assert c > b > a
    assert game.state()["names"] == ["b", "c"]


def test_leave_removes_the_player_but_not_its_shots():
    game, (a, b) = new_game(2)
    game.apply_inputs(batch([(a, 0.0, 0.0, 0.0, True)]))
    game.step()
    game.leave(a)
    game.leave(12345)  # unknown: ignored
    game.step()
    v = game.view()
    assert a not in v.ids.tolist()
    assert v.ids[v.components["kind"] == 0].tolist() == [b]
    assert v.components["owner"][v.components["kind"] == 1].tolist() == [a]


# -- view -------------------------------------------------------------------


def test_view_matches_components_schema():
    game, ids = new_game(6, seed=3)
    rng = np.random.default_rng(0)
    for _ in range(40):
        game.apply_inputs(random_batch(rng, ids))
        game.step()
    v = game.view()
    n = len(v.ids)
    assert n > 6  # players and some projectiles
    assert v.ids.dtype == np.dtype("<u4")
    assert (np.diff(v.ids.astype(np.int64)) > 0).all()
    assert set(v.components) == set(Arena.components)
    for name, spec in Arena.components.items():
        a = v.components[name]
        assert a.dtype == np.dtype(spec["dtype"]), name
        assert a.shape == (n,) + tuple(spec["shape"]), name
    state = game.state()
    players = v.components["kind"] == 0
    assert v.ids[players].tolist() == state["p_id"].tolist()
    np.testing.assert_array_equal(v.components["pos"][players], np.rint(state["p_pos"] * 32))
    np.testing.assert_array_equal(v.components["aim"][players], np.rint(state["p_aim"] * 40))
    np.testing.assert_array_equal(v.components["owner"][players], state["p_id"])


def test_view_stays_in_id_order_when_a_player_joins_after_shots():
    game, (a, b) = new_game(2, size=1000.0)
    game.apply_inputs(batch([(a, 0.0, 0.0, 0.0, True), (b, 0.0, 0.0, 1.0, True)]))
    game.step()
    late = game.join("late")
    game.step()  # a and b are cooling down: no new shots
    v = game.view()
    assert late > v.ids[v.components["kind"] == 1].max()
    assert (np.diff(v.ids.astype(np.int64)) > 0).all()
    row = v.ids.tolist().index(late)
    assert v.components["kind"][row] == 0 and v.components["owner"][row] == late
    assert v.components["hp"][row] == MAX_HP
    shots = projectiles(game)
    assert sorted(shots["owner"].tolist()) == [a, b] and (shots["hp"] == 0).all()


def test_non_finite_inputs_cannot_poison_the_world():
    game, (a,) = new_game(1)
    nan, inf = float("nan"), float("inf")
    game.apply_inputs(batch([(a, nan, inf, nan, True)]))
    for _ in range(30):
        game.step()
    state = game.state()
    assert np.isfinite(state["p_pos"]).all() and np.isfinite(state["q_pos"]).all()
    assert ((state["p_pos"] >= PLAYER_RADIUS) & (state["p_pos"] <= 100 - PLAYER_RADIUS)).all()


# -- determinism and checkpoints -------------------------------------------


def scripted_run(game: Arena, ids: list[int], rng: np.random.Generator, ticks: int) -> list:
    """Drive a game with random inputs, plus a leave and a join on the way."""
    events = []
    ids = list(ids)
    for i in range(ticks):
        if i == ticks // 3:
            game.leave(ids[0])  # its later inputs must be ignored
        if i == ticks // 2:
            ids.append(game.join("late"))
        game.apply_inputs(random_batch(rng, ids))
        events.append(game.step())
    return events


def test_same_seed_same_inputs_give_identical_states():
    runs = []
    for _ in range(2):
        game, ids = new_game(10, seed=42, size=40.0)
        events = scripted_run(game, ids, np.random.default_rng(5), 500)
        runs.append((game.state(), events))
    (s1, e1), (s2, e2) = runs
    assert states_equal(s1, s2)
    assert e1 == e2
    flat = [e[0] for tick in e1 for e in tick]
    assert flat.count("kill") > 0 and flat.count("respawn") > 0  # the run did something
    other, ids = new_game(10, seed=43, size=40.0)
    scripted_run(other, ids, np.random.default_rng(5), 500)
    assert not states_equal(s1, other.state())


def test_restore_continues_bit_identically():
    game, ids = new_game(10, seed=9, size=40.0)
    scripted_run(game, ids, np.random.default_rng(1), 300)
    state = game.state()
    # As a checkpoint codec would: arrays through raw bytes, flattened.
    wire = {k: np.frombuffer(v.tobytes(), dtype=v.dtype) if isinstance(v, np.ndarray) else v for k, v in state.items()}
    copy = Arena.restore(wire, game.config)
    assert states_equal(copy.state(), state)
    rng_a, rng_b = np.random.default_rng(2), np.random.default_rng(2)
    ids = state["p_id"].tolist()
    for _ in range(200):
        assert game.step() == copy.step()
        game.apply_inputs(random_batch(rng_a, ids))
        copy.apply_inputs(random_batch(rng_b, ids))
    assert states_equal(game.state(), copy.state())
    assert game.view().ids.tolist() == copy.view().ids.tolist()


def test_restore_refuses_a_config_that_disagrees_with_the_state():
    game, _ = new_game(2)
    with pytest.raises(ValueError, match="tick_rate"):
        Arena.restore(game.state(), GameConfig(tick_rate=30))
    with pytest.raises(ValueError):
        Arena.restore({"game": "chess"}, GameConfig())


def test_state_is_a_copy():
    game, (a,) = new_game(1)
    state = game.state()
    game.apply_inputs(batch([(a, 1.0, 0.0, 0.0, False)]))
    game.step()
    assert not np.array_equal(state["p_pos"], game.state()["p_pos"])
