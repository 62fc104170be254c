"""The arena's fog (arena_world.fog_visibility) finds its neighbours with a
grid; it must give exactly the all-pairs answer."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickroom.simulation.game import View
from tickroom.simulation.games.arena_world import POS_SCALE, fog_visibility, wire_positions

TICK = 100  # the tick the views are seen at


def all_pairs(view: View, radius: float) -> np.ndarray:
    """The reference: one players x entities float32 distance matrix, on
    the positions a client computes (projectiles extrapolated)."""
    comps = view.components
    players = comps["kind"] == 0
    pos = wire_positions(view, TICK).astype(np.float32)
    r = np.float32(radius * POS_SCALE)
    dx = pos[players][:, 0, None] - pos[None, :, 0]
    dy = pos[players][:, 1, None] - pos[None, :, 1]
    mask = dx * dx + dy * dy <= r * r
    mask |= comps["owner"][None, :] == view.ids[players][:, None]
    return mask


def random_view(rng: np.random.Generator, players: int, projectiles: int, spread: int) -> View:
    """Players and projectiles in random order (ids unsorted), positions in
    a square of ``spread`` wire units, sometimes clustered on cell edges;
    projectiles fired up to 3 ticks before TICK, so they are seen away from
    their origin."""
    n = players + projectiles
    ids = rng.permutation(np.arange(1, 4 * n + 2, dtype="<u4"))[:n]
    kind = np.zeros(n, dtype="|u1")
    kind[players:] = 1
    pos = rng.integers(-spread, spread + 1, (n, 2))
    if rng.random() < 0.3:  # on a lattice: many exact-radius and cell-edge distances
        pos = pos // 64 * 64
    pos = np.clip(pos, -32500, 32500).astype("<i2")  # room for 3 ticks of flight
    vel = np.zeros((n, 2), dtype="<i2")
    vel[players:] = rng.integers(-1024, 1025, (projectiles, 2))
    t0 = np.full(n, TICK, dtype="<u4")
    t0[players:] -= rng.integers(0, 4, projectiles).astype("<u4")
    owner = np.empty(n, dtype="<u4")
    owner[:players] = ids[:players]
    if players:
        owner[players:] = ids[rng.integers(0, players, projectiles)]
    else:
        owner[players:] = 0
    order = rng.permutation(n)
    comps = {"kind": kind[order], "pos": pos[order], "owner": owner[order], "vel": vel[order], "t0": t0[order]}
    return View(ids=ids[order], components=comps)


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 40),
    st.integers(0, 60),
    st.sampled_from([100, 2000, 32767]),
    st.sampled_from([0.5, 2.0, 6.0, 60.0, 5000.0]),
)
@settings(max_examples=200, deadline=None)
def test_the_grid_gives_the_all_pairs_masks(seed, players, projectiles, spread, radius):
    view = random_view(np.random.default_rng(seed), players, projectiles, spread)
    got = fog_visibility(view, radius, TICK)
    assert got.players.tolist() == view.ids[view.components["kind"] == 0].tolist()
    assert got.mask.dtype == np.bool_
    assert np.array_equal(got.mask, all_pairs(view, radius))


def test_a_big_room_sees_neighbourhoods_not_everything():
    rng = np.random.default_rng(3)
    view = random_view(rng, 500, 900, 500 * POS_SCALE)
    mask = fog_visibility(view, 60.0, TICK).mask
    assert np.array_equal(mask, all_pairs(view, 60.0))
    assert 1 <= np.count_nonzero(mask, axis=1).min() and np.count_nonzero(mask) < mask.size // 10
