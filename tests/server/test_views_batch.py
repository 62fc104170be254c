"""The room's batched view encode (SnapshotHistory -> protocol.delta_batch)
sends every player exactly the payload the one-encode-per-view path sends:
the view's world against the player's own view at its baseline, events
included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickroom.protocol import envelope
from tickroom.protocol import messages as m
from tickroom.protocol.codec import pack_snapshot_shared
from tickroom.protocol.delta import WorldState, encode_delta
from tickroom.protocol.schema import Schema
from tickroom.server.rooms.snapshots import SnapshotHistory
from tickroom.server.rooms.views import split_views
from tickroom.simulation.game import Visibility

SCHEMA = Schema.from_description({"v": {"dtype": "<u2", "shape": []}, "xy": {"dtype": "<i2", "shape": [2]}})
PLAYERS = np.array([3, 5, 8, 13, 21, 34])


def tick_world(rng: np.random.Generator, tick: int) -> WorldState:
    ids = np.flatnonzero(rng.random(30) < 0.6).astype("<u4") + 1
    n = ids.shape[0]
    comps = {"v": rng.integers(0, 2, n).astype("<u2"), "xy": rng.integers(-1, 1, (n, 2)).astype("<i2")}
    return WorldState.from_view(tick, ids, comps, SCHEMA)


@given(st.integers(0, 2**32 - 1), st.sampled_from([0.1, 0.5, 0.9]), st.integers(1, 3))
@settings(max_examples=60, deadline=None)
def test_every_player_gets_the_per_view_payload(seed, density, ticks_before):
    rng = np.random.default_rng(seed)
    history = SnapshotHistory(SCHEMA, 8)
    # A few players share rows (a team), one has none at some ticks.
    for tick in range(1, ticks_before + 2):
        world = tick_world(rng, tick)
        mask = rng.random((PLAYERS.shape[0], world.ids.shape[0])) < density
        mask[1] = mask[0]
        players = PLAYERS if tick % 2 else PLAYERS[:-1]
        views = split_views(world, Visibility(players, mask[: players.shape[0]]), world.ids, SCHEMA)
        history.record(world, [["ev", tick]], views)
    current = history.latest
    assert current is not None
    for pid in PLAYERS.tolist():
        for base in (current.tick - 1, 1, m.NO_TICK):  # the batched baseline, an older one, none
            base = history.baseline_for(base) if base != m.NO_TICK else base
            baseline = history.world_for(pid, base) if base != m.NO_TICK else None
            fields = encode_delta(history.world_for(pid, current.tick), baseline, SCHEMA)
            first = current.tick if base == m.NO_TICK else base + 1
            events = [["ev", t] for t in range(first, current.tick + 1)]
            assert history.payload_for(pid, base) == envelope.pack_shared(current.tick, base, fields, events)
            assert history.payload_for(pid, base, version=1) == pack_snapshot_shared(current.tick, base, fields, events)
    assert history.deltas_encoded >= history.distinct_views
