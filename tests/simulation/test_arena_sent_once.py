"""Arena projectiles are sent once: their networked components never change
after spawn, and the extrapolation formula of docs/protocol.md 7.3 gives
exactly the server's position at every tick, with and without fog."""

from __future__ import annotations

import numpy as np
import pytest

from tests.simulation.helpers import batch, edit_players, new_game, random_batch
from tickroom.protocol.delta import WorldState, encode_delta
from tickroom.protocol.schema import Schema
from tickroom.simulation.game import GameConfig
from tickroom.simulation.games.arena import Arena
from tickroom.simulation.games.arena_world import POS_SCALE, VEL_SCALE, wire_positions


def client_position(row: dict, tick: int) -> tuple[float, float]:
    """What a client computes from the wire alone (protocol.md 7.3), in
    float64 as JavaScript does: pos / 32 + (tick - t0) * vel / 512."""
    age = tick - int(row["t0"])
    return tuple(int(row["pos"][k]) / 32 + age * int(row["vel"][k]) / 512 for k in range(2))


def server_projectiles(game: Arena) -> dict[int, tuple[float, float]]:
    state = game.state()
    return {int(i): (float(x), float(y)) for i, (x, y) in zip(state["q_id"], state["q_pos"], strict=True)}


def rows_of(view, kind: int) -> dict[int, dict]:
    comps = view.components
    return {
        int(i): {k: comps[k][j].tolist() for k in comps}
        for j, i in enumerate(view.ids.tolist())
        if comps["kind"][j] == kind
    }


@pytest.mark.parametrize(("rate", "size"), [(20, 100.0), (1, 1023.0), (7, 300.0), (60, 1023.0), (240, 50.0)])
def test_extrapolation_is_exact_and_projectile_rows_never_change(rate, size):
    game = Arena(seed=rate, config=GameConfig(tick_rate=rate, max_players=8, options={"size": size}))
    ids = [game.join(f"p{i}") for i in range(8)]
    rng = np.random.default_rng(rate)
    first_rows: dict[int, dict] = {}
    checked = 0
    for _ in range(200):
        game.apply_inputs(random_batch(rng, ids))
        game.step()
        view = game.view()
        truth = server_projectiles(game)
        shown = rows_of(view, 1)
        assert shown.keys() == truth.keys()
        for pid, row in shown.items():
            assert first_rows.setdefault(pid, row) == row  # never changes after spawn
            assert client_position(row, game.tick) == truth[pid]  # bit for bit
            checked += 1
    assert checked > 200


def test_the_delta_carries_a_projectile_once():
    game, ids = new_game(6, size=300.0)
    schema = Schema.from_description(Arena.components)
    rng = np.random.default_rng(5)
    previous = None
    carried: dict[int, int] = {}
    for _ in range(120):
        game.apply_inputs(random_batch(rng, ids))
        game.step()
        view = game.view()
        world = WorldState.from_view(game.tick, view.ids, view.components, schema)
        delta = encode_delta(world, previous, schema)
        sent = np.frombuffer(delta["ids"], dtype="<u4").tolist()
        kinds = dict(zip(view.ids.tolist(), view.components["kind"].tolist(), strict=True))
        for i in sent:
            if kinds[i] == 1:
                carried[i] = carried.get(i, 0) + 1
        previous = world
    assert len(carried) > 20 and set(carried.values()) == {1}


def test_with_fog_a_projectile_entering_a_view_arrives_whole_and_exact():
    """A shot from outside a player's radius flies into it: the tick it
    becomes visible, the player's rows are the spawn data, and the position a
    client extrapolates from them is the server's, within the radius."""
    game, (shooter, watcher) = new_game(2, size=200.0, fog=10.0)
    game = edit_players(game, pos=[[20.0, 50.0], [60.0, 50.0]])
    game.apply_inputs(batch([(shooter, 0.0, 0.0, 0.0, True)]))
    game.step()
    game.apply_inputs(batch([(shooter, 0.0, 0.0, 0.0, False)]))
    seen_at = None
    for _ in range(30):
        view = game.view()
        vis = game.visibility(view)
        row = list(vis.players).index(watcher)
        shown = {int(i) for i in view.ids[vis.mask[row]]}
        shots = rows_of(view, 1)
        (shot_id,) = shots
        if shot_id in shown:
            seen_at = game.tick
            x, y = client_position(shots[shot_id], game.tick)
            assert (x, y) == server_projectiles(game)[shot_id]
            assert np.hypot(x - 60.0, y - 50.0) <= 10.0
            assert shots[shot_id]["pos"] == [20 * POS_SCALE, 50 * POS_SCALE]
            break
        game.step()
    assert seen_at is not None and seen_at > 10  # it flew ~30 units out of sight first


def test_wire_positions_extrapolate_projectiles_only():
    game, (a,) = new_game(1)
    game = edit_players(game, pos=[[10.0, 10.0]])
    game.apply_inputs(batch([(a, 0.0, 0.0, 0.0, True)]))
    game.step()
    for _ in range(3):
        game.step()
    view = game.view()
    pos = wire_positions(view, game.tick)
    assert pos[0].tolist() == [10.0 * POS_SCALE, 10.0 * POS_SCALE]
    vel = view.components["vel"][1].tolist()
    assert vel == [round(2.0 * VEL_SCALE), 0]
    assert pos[1].tolist() == [(10.0 + 4 * 2.0) * POS_SCALE, 10.0 * POS_SCALE]


def test_a_version_1_checkpoint_restores_with_its_projectiles_on_the_wire_grids():
    """A checkpoint of the previous release (no origin, t0, lag, aim_tick;
    positions off the grids) restores; its projectiles fly on from where they
    were, and clients can extrapolate them exactly from then on."""
    game, (a, b) = new_game(2, size=300.0)
    game = edit_players(game, pos=[[20.0, 20.0], [200.0, 200.0]])
    game.apply_inputs(batch([(a, 0.0, 0.0, 0.3, True), (b, 0.0, 0.0, 2.0, True)]))
    for _ in range(7):
        game.step()
    old = game.state()
    old["version"] = 1
    for k in ("p_aim_tick", "q_origin", "q_t0", "q_lag"):
        del old[k]
    old["q_pos"] = old["q_pos"] + 1e-3  # the old release's positions were anywhere
    restored = Arena.restore(old, game.config)
    assert restored.state()["q_id"].tolist() == game.state()["q_id"].tolist()
    assert np.abs(restored.state()["q_pos"] - old["q_pos"]).max() <= 1 / 64
    for _ in range(5):
        restored.step()
        truth = server_projectiles(restored)
        for pid, row in rows_of(restored.view(), 1).items():
            assert client_position(row, restored.tick) == truth[pid]
