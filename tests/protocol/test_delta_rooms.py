"""encode_room_deltas (many rooms' worlds, each against its own baseline)
gives exactly encode_delta's fields, pair by pair, for random worlds: rooms
with the same ids (the usual tick), entities born and gone, empty worlds,
worlds equal to their baseline, and the same ids in several rooms."""

from __future__ import annotations

import msgpack
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.protocol.test_delta_batch import SCHEMA, evolve, random_world
from tickroom.protocol.delta import WorldState, encode_delta
from tickroom.protocol.delta_rooms import encode_room_deltas, pack_rows
from tickroom.protocol.schema import Schema
from tickroom.simulation.game import GameConfig
from tickroom.simulation.games.arena import Arena
from tickroom.simulation.random_batches import RandomBatches


def pair_of(rng: np.random.Generator, kind: int, universe: int) -> tuple[WorldState, WorldState]:
    baseline = random_world(rng, 1, universe, 0.6)
    if kind == 0:
        return evolve(rng, baseline, universe), baseline  # born, gone, changed
    if kind == 1:  # the same entities, some changed
        comps = {name: np.array(arr) for name, arr in baseline.components.items()}
        n = baseline.ids.shape[0]
        if n:
            comps["v"][rng.random(n) < 0.3] += 1
        return WorldState.from_view(2, baseline.ids, comps, SCHEMA), baseline
    if kind == 2:  # unchanged
        return WorldState.from_view(2, baseline.ids, dict(baseline.components), SCHEMA), baseline
    return random_world(rng, 2, universe, 0.0), baseline  # everything gone


def same_bytes(got: list[dict], pairs: list[tuple[WorldState, WorldState]], schema: Schema) -> None:
    assert len(got) == len(pairs)
    for k, (current, baseline) in enumerate(pairs):
        # Equal as packed bytes: same keys, same order, same values.
        assert msgpack.packb(got[k]) == msgpack.packb(encode_delta(current, baseline, schema)), k


@given(st.integers(0, 2**32 - 1), st.lists(st.tuples(st.integers(0, 3), st.integers(0, 30)), min_size=0, max_size=8))
@settings(max_examples=200)
def test_rooms_encoded_together_equal_one_encode_per_room(seed, rooms):
    rng = np.random.default_rng(seed)
    pairs = [pair_of(rng, kind, universe) for kind, universe in rooms]
    same_bytes(encode_room_deltas(pairs, SCHEMA), pairs, SCHEMA)


def test_arena_rooms_at_play():
    schema = Schema.from_description(Arena.components)
    games = [Arena(seed, GameConfig(options={"size": 20.0})) for seed in range(5)]
    batches = []
    for i, game in enumerate(games):
        ids = np.array([game.join(f"p{p}") for p in range(2 + 2 * i)], dtype=np.int64)
        batches.append(RandomBatches(Arena.input_fields, ids, np.random.default_rng(i)))
    last: list[WorldState | None] = [None] * len(games)
    compared = 0
    for _ in range(120):
        pairs = []
        for k, (game, batch) in enumerate(zip(games, batches, strict=True)):
            game.apply_inputs(batch.next())
            game.step()
            view = game.view()
            world = WorldState.from_view(game.tick, view.ids, view.components, schema)
            if last[k] is not None:
                pairs.append((world, last[k]))
            last[k] = world
        same_bytes(encode_room_deltas(pairs, schema), pairs, schema)
        compared += len(pairs)
    assert compared == 5 * 119


@given(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 30), min_size=0, max_size=6))
@settings(max_examples=100)
def test_rows_packed_together_are_the_rows_each_world_packs(seed, universes):
    rng = np.random.default_rng(seed)
    worlds = [random_world(rng, 1, universe, 0.6) for universe in universes]
    alone = [WorldState.from_view(1, w.ids, dict(w.components), SCHEMA)._rows(SCHEMA) for w in worlds]
    pack_rows(worlds, SCHEMA)
    for world, rows in zip(worlds, alone, strict=True):
        assert np.array_equal(world._rows(SCHEMA), rows) and world._rows(SCHEMA).dtype == rows.dtype
