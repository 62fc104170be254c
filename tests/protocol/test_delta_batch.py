"""encode_deltas (many views at once) gives exactly encode_delta's fields,
view by view, for random worlds and random masks."""

from __future__ import annotations

import msgpack
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickroom.protocol.delta import WorldState, encode_delta
from tickroom.protocol.delta_batch import encode_deltas
from tickroom.protocol.schema import Schema

SCHEMA = Schema.from_description({
    "v": {"dtype": "<u2", "shape": []},
    "xy": {"dtype": "<i2", "shape": [2]},
    "f": {"dtype": "<f4", "shape": []},
    "flag": {"dtype": "|b1", "shape": []},
})  # fmt: skip


def random_world(rng: np.random.Generator, tick: int, universe: int, p: float) -> WorldState:
    ids = np.flatnonzero(rng.random(universe) < p).astype("<u4") + 1
    n = ids.shape[0]
    components = {
        "v": rng.integers(0, 3, n).astype("<u2"),
        "xy": rng.integers(-2, 2, (n, 2)).astype("<i2"),
        "f": rng.choice(np.array([0.0, -0.0, 1.5, np.nan], dtype="<f4"), n),
        "flag": rng.random(n) < 0.5,
    }
    return WorldState.from_view(tick, ids, components, SCHEMA)


def evolve(rng: np.random.Generator, world: WorldState, universe: int) -> WorldState:
    """The next tick: most entities stay, a third of them with new values
    (some bitwise equal again), some go, some come."""
    fresh = random_world(rng, world.tick + 1, universe + 5, 0.5)
    stay = world.ids[rng.random(world.ids.shape[0]) < 0.8]
    ids = np.union1d(stay, fresh.ids).astype("<u4")
    old = np.isin(ids, stay) & (rng.random(ids.shape[0]) < 0.7)  # keeps its baseline values
    comps = {}
    values = random_world(rng, 0, ids.shape[0], 1.0)  # ids.shape[0] entities, all drawn anew
    for name, arr in world.components.items():
        out = np.array(values.components[name])
        out[old] = arr[np.searchsorted(world.ids, ids[old])]
        comps[name] = out
    return WorldState.from_view(world.tick + 1, ids, comps, SCHEMA)


@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.integers(1, 9), st.sampled_from([0.0, 0.2, 0.6, 1.0]))
@settings(max_examples=200, deadline=None)
def test_batch_encode_equals_one_encode_per_view(seed, universe, views, density):
    rng = np.random.default_rng(seed)
    baseline = random_world(rng, 1, universe, 0.6)
    current = evolve(rng, baseline, universe)
    now = rng.random((views, current.ids.shape[0])) < density
    then = rng.random((views, baseline.ids.shape[0])) < density
    if views > 1:  # a view unchanged between the ticks, the common case
        then[1] = np.isin(baseline.ids, current.ids[now[1]])
    batch = encode_deltas(current, baseline, SCHEMA, now, then)
    assert len(batch) == views
    for k in range(views):
        expected = encode_delta(
            current.subset(np.flatnonzero(now[k]), SCHEMA), baseline.subset(np.flatnonzero(then[k]), SCHEMA), SCHEMA
        )
        # Equal as packed bytes: same keys, same order, same values.
        assert msgpack.packb(batch[k]) == msgpack.packb(expected), k


def test_no_views_gives_no_deltas():
    rng = np.random.default_rng(1)
    world = random_world(rng, 1, 10, 0.5)
    assert (
        encode_deltas(
            world, world, SCHEMA, np.zeros((0, world.ids.shape[0]), bool), np.zeros((0, world.ids.shape[0]), bool)
        )
        == []
    )
