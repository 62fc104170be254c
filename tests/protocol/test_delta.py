"""The component schema and the delta codec (protocol/schema.py, protocol/delta.py).

Every round trip goes through msgpack, as on the wire, so a field the codec
produces that msgpack would change (a tuple, a numpy scalar) shows up here.
"""

from __future__ import annotations

import math
import re

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickroom.protocol.delta import DeltaError, WorldState, apply_delta, encode_delta
from tickroom.protocol.schema import MAX_ROW_BYTES, ComponentSpec, Schema, SchemaError

DTYPES = ["|b1", "|u1", "|i1", "<i2", "<u2", "<i4", "<u4", "<f2", "<f4", "<f4", "<f8", "<i8", "<u8"]
SHAPES = [(), (2,), (2, 3)]
NAMES = ["a", "hp", "pos", "vel", "z"]
#: Memberships of an id from the pool: only in the baseline, only now, both, neither.
BASE, CUR, BOTH, NONE = range(4)
ARENA = {
    "pos": {"dtype": "<i2", "shape": [2], "scale": 32},
    "angle": {"dtype": "<i2"},
    "hp": {"dtype": "|u1", "shape": []},
}


def wire(fields: dict) -> dict:
    """What the peer gets: the fields through msgpack and back."""
    return msgpack.unpackb(msgpack.packb(fields), raw=False)


def ids_of(raw: bytes) -> list[int]:
    return np.frombuffer(raw, dtype="<u4").tolist()


def random_rows(rng: np.random.Generator, spec: ComponentSpec, n: int) -> np.ndarray:
    """Rows of arbitrary bits, with NaNs, infinities and signed zeros for floats."""
    shape = (n,) + spec.shape
    if spec.dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    arr = np.frombuffer(rng.bytes(n * spec.row_bytes), dtype=spec.dtype).reshape(shape).copy()
    if spec.dtype.kind == "f" and arr.size:
        specials = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0], dtype=spec.dtype)
        pick = rng.random(shape) < 0.3
        arr[pick] = rng.choice(specials, size=int(pick.sum()))
    return arr


@st.composite
def schemas(draw) -> Schema:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=4))
    return Schema(
        tuple(ComponentSpec(name, draw(st.sampled_from(DTYPES)), draw(st.sampled_from(SHAPES))) for name in names)
    )


@st.composite
def world_pairs(draw):
    """(schema, baseline, current) with overlapping ids, some rows changed."""
    schema = draw(schemas())
    pool = draw(st.lists(st.integers(0, 40) | st.integers(0, 2**32 - 1), unique=True, max_size=40))
    where = np.array(
        draw(st.lists(st.sampled_from([BASE, CUR, BOTH, NONE]), min_size=len(pool), max_size=len(pool))), dtype=int
    )
    if draw(st.booleans()):
        # The usual tick: the same entities as the baseline, some rows changed.
        where[where == BASE], where[where == CUR] = BOTH, NONE
    pool = np.array(pool, dtype=np.uint32)
    p_change = draw(st.sampled_from([0.0, 0.05, 0.5, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    base_ids = np.sort(pool[(where == BASE) | (where == BOTH)])
    cur_ids = np.sort(pool[(where == CUR) | (where == BOTH)])
    base_comps, cur_comps = {}, {}
    for spec in schema:
        base = random_rows(rng, spec, len(base_ids))
        cur = random_rows(rng, spec, len(cur_ids))
        # Entities in both keep their baseline row unless picked to change.
        _, ci, bi = np.intersect1d(cur_ids, base_ids, return_indices=True)
        stay = rng.random(len(ci)) >= p_change
        cur[ci[stay]] = base[bi[stay]]
        base_comps[spec.name], cur_comps[spec.name] = base, cur
    # Hand from_view the current world in a shuffled order at times: it sorts.
    order = rng.permutation(len(cur_ids)) if draw(st.booleans()) else np.arange(len(cur_ids))
    baseline = WorldState.from_view(7, base_ids, base_comps, schema)
    current = WorldState.from_view(9, cur_ids[order], {k: v[order] for k, v in cur_comps.items()}, schema)
    return schema, baseline, current


def expected_carry(schema: Schema, baseline: WorldState, current: WorldState) -> dict[int, set[str]]:
    """Reference model, one entity at a time: id -> components it must carry."""
    base_row = {int(e): i for i, e in enumerate(baseline.ids)}
    carry = {}
    for i, e in enumerate(current.ids.tolist()):
        j = base_row.get(e)
        names = {
            spec.name
            for spec in schema
            if j is None or current.components[spec.name][i].tobytes() != baseline.components[spec.name][j].tobytes()
        }
        if j is None or names:  # new entities are carried even with no components
            carry[e] = names
    return carry


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world_pairs())
def test_delta_round_trip(pair):
    schema, baseline, current = pair
    fields = encode_delta(current, baseline, schema)
    assert apply_delta(baseline, 9, wire(fields), schema).equals(current)

    # The delta carries exactly what changed, per the wire semantics.
    carry = expected_carry(schema, baseline, current)
    ids = ids_of(fields["ids"])
    assert ids == sorted(carry)
    assert ids_of(fields["rm"]) == sorted(set(baseline.ids.tolist()) - set(current.ids.tolist()))
    assert fields["n"] == len(current.ids)
    for spec in schema:
        bits = [spec.name in carry[e] for e in ids]
        if not any(bits):
            assert spec.name not in fields["c"]
            continue
        mask, values = fields["c"][spec.name]
        assert mask == (b"" if all(bits) else np.packbits(bits, bitorder="little").tobytes())
        assert len(values) == sum(bits) * spec.row_bytes

    full = encode_delta(current, None, schema)
    assert ids_of(full["ids"]) == current.ids.tolist()
    assert all(mask == b"" for mask, _ in full["c"].values())
    assert apply_delta(None, 9, wire(full), schema).equals(current)


def arena_world(tick: int = 1, n: int = 64, seed: int = 0) -> tuple[Schema, WorldState]:
    schema = Schema.from_description(ARENA)
    rng = np.random.default_rng(seed)
    comps = {spec.name: random_rows(rng, spec, n) for spec in schema}
    return schema, WorldState.from_view(tick, np.arange(100, 100 + n, dtype=np.uint32), comps, schema)


def changed(world: WorldState, tick: int, **rows: dict[int, object]) -> WorldState:
    """A copy of world with rows[name][entity_id] = value."""
    comps = {name: arr.copy() for name, arr in world.components.items()}
    for name, updates in rows.items():
        for eid, value in updates.items():
            comps[name][int(np.searchsorted(world.ids, eid))] = value
    return WorldState(tick, world.ids, comps)


def test_unchanged_world_gives_empty_delta():
    schema, world = arena_world()
    fields = encode_delta(world, world, schema)
    assert fields == {"ids": b"", "c": {}, "rm": b"", "n": 64}
    again = apply_delta(world, 2, wire(fields), schema)
    assert again.equals(world) and again.tick == 2
    # Nothing changed, so nothing was copied.
    assert all(again.components[k] is world.components[k] for k in world.components)


def test_one_changed_component_is_all_the_delta_carries():
    schema, world = arena_world()
    now = changed(world, 2, hp={105: 3})
    fields = encode_delta(now, world, schema)
    # One entity carried, and it carries hp: the mask is empty (all bits set).
    assert fields == {"ids": np.uint32(105).tobytes(), "c": {"hp": [b"", b"\x03"]}, "rm": b"", "n": 64}
    assert apply_delta(world, 2, wire(fields), schema).equals(now)


def test_masks_say_which_carried_entity_has_which_component():
    schema, world = arena_world()
    now = changed(world, 2, hp={101: 3}, pos={140: [1, -2]})
    fields = encode_delta(now, world, schema)
    assert ids_of(fields["ids"]) == [101, 140]
    assert fields["c"] == {"hp": [b"\x01", b"\x03"], "pos": [b"\x02", np.array([1, -2], "<i2").tobytes()]}
    assert apply_delta(world, 2, wire(fields), schema).entity(140)["pos"] == [1, -2]


def test_float_changes_are_bitwise():
    schema = Schema.from_description({"v": {"dtype": "<f4"}})
    base = WorldState.from_view(1, [1, 2, 3], {"v": np.array([np.nan, 0.0, 1.0], "<f4")}, schema)
    same_nan = WorldState.from_view(2, [1, 2, 3], {"v": np.array([np.nan, 0.0, 1.0], "<f4")}, schema)
    assert encode_delta(same_nan, base, schema)["ids"] == b""
    signed_zero = WorldState.from_view(2, [1, 2, 3], {"v": np.array([np.nan, -0.0, 1.0], "<f4")}, schema)
    assert ids_of(encode_delta(signed_zero, base, schema)["ids"]) == [2]


def test_full_snapshot_size_is_columns_of_packed_rows():
    """64 entities, as docs/benchmarks.md counts them: one bin field per
    column, so the size is the row bytes plus a fixed msgpack overhead."""
    schema, world = arena_world()
    packed = msgpack.packb(encode_delta(world, None, schema))

    def key(s: str) -> int:  # fixstr
        return 1 + len(s)

    def bin_(n: int) -> int:  # bin 8 / bin 16 / bin 32 header + payload
        return n + (2 if n < 2**8 else 3 if n < 2**16 else 5)

    n = 64
    columns = sum(key(spec.name) + 1 + bin_(0) + bin_(n * spec.row_bytes) for spec in schema)  # [mask, values]
    expected = 1 + key("ids") + bin_(4 * n) + key("c") + 1 + columns + key("rm") + bin_(0) + key("n") + 1
    assert len(packed) == expected == 752


def test_added_and_removed_entities():
    schema, world = arena_world(n=8)
    keep = np.isin(world.ids, [101, 104], invert=True)
    ids = np.concatenate([world.ids[keep], np.array([99, 300], np.uint32)])
    comps = {k: np.concatenate([v[keep], v[:2]]) for k, v in world.components.items()}
    now = WorldState.from_view(2, ids, comps, schema)
    fields = encode_delta(now, world, schema)
    assert ids_of(fields["ids"]) == [99, 300] and ids_of(fields["rm"]) == [101, 104]
    assert apply_delta(world, 2, wire(fields), schema).equals(now)
    empty = WorldState.from_view(
        3, np.zeros(0, np.uint32), {s.name: np.zeros((0,) + s.shape, s.dtype) for s in schema}, schema
    )
    gone = encode_delta(empty, world, schema)
    assert gone["n"] == 0 and ids_of(gone["rm"]) == world.ids.tolist()
    assert apply_delta(world, 3, wire(gone), schema).equals(empty)


# Malformed snapshots: each case breaks one rule of a valid delta in which
# entity 101 changed hp, 140 changed pos, 107 was removed and 500 is new.
def _valid() -> tuple[Schema, WorldState, dict]:
    schema, world = arena_world()
    now = changed(world, 2, hp={101: 3}, pos={140: [1, -2]})
    keep = now.ids != 107
    ids = np.append(now.ids[keep], np.uint32(500))
    comps = {k: np.concatenate([v[keep], v[:1]]) for k, v in now.components.items()}
    now = WorldState.from_view(2, ids, comps, schema)
    return schema, world, wire(encode_delta(now, world, schema))


def _set(path, value):
    def mutate(f):
        *head, last = path
        for k in head:
            f = f[k]
        f[last] = value(f[last]) if callable(value) else value

    return mutate


def _drop_new_pos(f):
    """Entity 500 (bit 2) no longer carries pos: mask and rows both say so."""
    mask, values = f["c"]["pos"]
    f["c"]["pos"] = [bytes([mask[0] & ~0x04]), values[:4]]


# name -> (mutation of the valid fields, what the error must say)
MALFORMED = {
    "mask too long": (_set(["c", "hp", 0], lambda m: m + b"\x00"), "mask of 2 bytes for 3 ids"),
    "mask padding bits": (_set(["c", "hp", 0], lambda m: bytes([m[0] | 0x80])), "past the 3 ids"),
    "popcount over rows": (_set(["c", "hp", 0], lambda m: bytes([m[0] | 0x02])), "2 rows for 3 entities"),
    "values not whole rows": (_set(["c", "pos", 1], lambda v: v + b"\x00"), "not rows of 4"),
    "values short of mask": (_set(["c", "pos", 1], lambda v: v[:-4]), "1 rows for 2"),
    "values one row over": (_set(["c", "angle", 1], lambda v: v + b"\x00\x00"), "2 rows for 1"),
    "unknown component": (_set(["c", "mana"], [b"", b"\x00"]), "unknown component 'mana'"),
    "component name bytes": (lambda f: f["c"].__setitem__(b"hp", f["c"].pop("hp")), "unknown component b'hp'"),
    "ids not ascending": (_set(["ids"], lambda b: b[4:8] + b[:4] + b[8:]), "not strictly ascending"),
    "ids duplicate": (_set(["ids"], lambda b: b[:4] + b[:4] + b[8:]), "not strictly ascending"),
    "ids not whole": (_set(["ids"], lambda b: b + b"\x00"), "not a multiple of 4"),
    "rm not in baseline": (_set(["rm"], np.array([107, 9999], "<u4").tobytes()), "9999 is not in the baseline"),
    "rm not ascending": (_set(["rm"], np.array([108, 107], "<u4").tobytes()), "'rm' ids are not strictly"),
    "rm also carried": (_set(["rm"], np.array([101, 107], "<u4").tobytes()), "both removed and carried"),
    "new entity misses a component": (lambda f: f["c"].pop("angle"), "no component 'angle'"),
    "new entity bit cleared": (_drop_new_pos, "does not carry component 'pos'"),
    "n off by one": (_set(["n"], 65), "'n' is 65 but applying gives 64"),
    "n negative": (_set(["n"], -1), "non-negative int"),
    "n bool": (_set(["n"], True), "non-negative int"),
    "n str": (_set(["n"], "64"), "non-negative int"),
    "ids list": (_set(["ids"], [101, 140, 500]), "'ids' must be bytes"),
    "ids bytearray": (_set(["ids"], bytearray), "'ids' must be bytes"),
    "rm str": (_set(["rm"], ""), "'rm' must be bytes"),
    "c list": (_set(["c"], []), "'c' must be a map"),
    "entry not a pair": (_set(["c", "hp"], [b"\x01"]), "pair"),
    "entry a map": (_set(["c", "hp"], {"mask": b"", "values": b""}), "pair"),
    "mask str": (_set(["c", "hp", 0], "\x01"), "must be bytes"),
    "values int": (_set(["c", "hp", 1], 3), "must be bytes"),
    "missing n": (lambda f: f.pop("n"), "no 'n' field"),
    "missing c": (lambda f: f.pop("c"), "no 'c' field"),
}


def test_the_malformed_cases_start_from_a_valid_delta():
    schema, world, fields = _valid()
    assert ids_of(fields["ids"]) == [101, 140, 500] and ids_of(fields["rm"]) == [107]
    assert sorted(fields["c"]) == ["angle", "hp", "pos"] and fields["c"]["pos"][0] == b"\x06"
    apply_delta(world, 2, fields, schema)


@pytest.mark.parametrize("mutate, says", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_delta_raises_delta_error(mutate, says):
    schema, world, fields = _valid()
    mutate(fields)
    with pytest.raises(DeltaError, match=re.escape(says)):
        apply_delta(world, 2, fields, schema)


@pytest.mark.parametrize(
    "fields",
    [None, [], {"ids": b"", "c": {}, "rm": np.uint32(1).tobytes(), "n": 0}],
    ids=["none", "list", "rm without baseline"],
)
def test_malformed_full_snapshot_raises_delta_error(fields):
    schema, _ = arena_world()
    with pytest.raises(DeltaError):
        apply_delta(None, 1, fields, schema)


def test_bool_values_must_be_zero_or_one():
    schema = Schema.from_description({"alive": {"dtype": "|b1"}})
    fields = {"ids": np.uint32(1).tobytes(), "c": {"alive": [b"", b"\x02"]}, "rm": b"", "n": 1}
    with pytest.raises(DeltaError, match="0 or 1"):
        apply_delta(None, 1, fields, schema)


def test_from_view_sorts_checks_and_shares():
    schema = Schema.from_description({"hp": {"dtype": "|u1"}})
    world = WorldState.from_view(1, np.array([5, 2, 9]), {"hp": np.array([50, 20, 90], np.uint8)}, schema)
    assert world.ids.dtype == np.uint32 and world.ids.tolist() == [2, 5, 9]
    assert world.entity(9) == {"hp": 90} and world.entity(3) is None and world.entity(-1) is None
    assert not world.ids.flags.writeable and not world.components["hp"].flags.writeable
    hp = np.array([1, 2], np.uint8)
    assert np.shares_memory(
        WorldState.from_view(1, np.array([1, 2], np.uint32), {"hp": hp}, schema).components["hp"], hp
    )
    bad = [
        ([1, 1], {"hp": np.zeros(2, np.uint8)}),
        ([-1], {"hp": np.zeros(1, np.uint8)}),
        ([2**32], {"hp": np.zeros(1, np.uint8)}),
        ([1.0], {"hp": np.zeros(1, np.uint8)}),
        ([1], {"hp": np.zeros(1, np.int8)}),
        ([1], {"hp": np.zeros((1, 1), np.uint8)}),
        ([1], {}),
        ([1], {"hp": np.zeros(1, np.uint8), "mp": np.zeros(1, np.uint8)}),
    ]
    for ids, comps in bad:
        with pytest.raises(ValueError):
            WorldState.from_view(1, np.array(ids), comps, schema)


def test_schema_round_trips_through_describe_and_msgpack():
    schema = Schema.from_description(ARENA)
    assert schema.names == ("angle", "hp", "pos")
    assert schema["pos"].row_bytes == 4 and schema["pos"].scale == 32.0 and schema["angle"].shape == ()
    desc = schema.describe()
    assert desc["pos"] == {"dtype": "<i2", "shape": [2], "scale": 32.0}
    assert Schema.from_description(desc) == schema
    assert Schema.from_description(msgpack.unpackb(msgpack.packb(desc), raw=False)) == schema
    # A game may write dtypes the numpy way; the wire gets the canonical form.
    assert Schema.from_description({"v": {"dtype": np.float32, "shape": (2, 3)}}).describe() == {
        "v": {"dtype": "<f4", "shape": [2, 3]}
    }


@pytest.mark.parametrize(
    "desc",
    [
        {"x": {"dtype": "<c8"}},
        {"x": {"dtype": "O"}},
        {"x": {"dtype": "|S4"}},
        {"x": {"dtype": "<M8[s]"}},
        {"x": {"dtype": "f4,i4"}},
        {"x": {"dtype": ">i2"}},
        {"x": {"dtype": "<i3"}},
        {"x": {"dtype": "nonsense"}},
        {"x": {"dtype": None}},
        {"x": {"dtype": 4}},
        {"x": {"dtype": "<" + "f" * 40}},
        {"x": {"shape": [2]}},
        {"x": {"dtype": "<i2", "shape": [-1]}},
        {"x": {"dtype": "<i2", "shape": [0]}},
        {"x": {"dtype": "<i2", "shape": "2"}},
        {"x": {"dtype": "<i2", "shape": [2.0]}},
        {"x": {"dtype": "<i2", "shape": [True]}},
        {"x": {"dtype": "<i2", "shape": [1, 2, 3]}},
        {"x": {"dtype": "<f8", "shape": [MAX_ROW_BYTES]}},
        {"x": {"dtype": "<i2", "scale": "32"}},
        {"x": {"dtype": "<i2", "scale": True}},
        {"x": {"dtype": "<i2", "scale": 0}},
        {"x": {"dtype": "<i2", "scale": -4}},
        {"x": {"dtype": "<i2", "scale": math.nan}},
        {"x": {"dtype": "<i2", "scale": math.inf}},
        {"x": {"dtype": "<i2", "scal": 32}},
        {"x": "<i2"},
        {"": {"dtype": "<i2"}},
        {7: {"dtype": "<i2"}},
        [("x", {"dtype": "<i2"})],
        {f"c{i}": {"dtype": "<i2"} for i in range(65)},
    ],
)
def test_schema_rejects_bad_descriptions(desc):
    with pytest.raises(SchemaError):
        Schema.from_description(desc)


def test_schema_rejects_duplicate_names():
    with pytest.raises(SchemaError):
        Schema((ComponentSpec("a", "<i2", ()), ComponentSpec("a", "<f4", ())))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["ids", "rm", ("c", "hp", 0), ("c", "pos", 0), ("c", "pos", 1), ("c", "angle", 1)]),
    st.binary(max_size=24),
    st.integers(0, 70),
)
def test_corrupted_fields_raise_only_delta_error(where, junk, n):
    """Whatever bytes arrive, the decoder answers with a world or a DeltaError,
    never an IndexError or a numpy error from deep inside."""
    schema, world, fields = _valid()
    _set(where if isinstance(where, tuple) else [where], junk)(fields)
    fields["n"] = n
    try:
        apply_delta(world, 2, fields, schema)
    except DeltaError:
        pass
