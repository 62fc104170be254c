"""The browser client's delta decoder (server/control/static/wire.js) against the
Python encoder: the same bytes must rebuild the same world, bit for bit.

Python makes random worlds (fixed seed), encodes each as a full snapshot or
as a delta against an earlier world, through the real codec; node decodes
the sequence with wire.js and the vendored msgpack, keeping its own history
of baselines as a client does; the worlds it reports must equal Python's.
A few broken messages must be refused as desyncs. Needs node: without it
the test fails, it does not skip.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import msgpack
import numpy as np
import pytest

from tickroom.protocol import messages as m
from tickroom.protocol.codec import encode_snapshot
from tickroom.protocol.delta import WorldState, apply_delta, encode_delta
from tickroom.protocol.schema import ComponentSpec, Schema
from tickroom.simulation.games.arena_world import COMPONENTS as ARENA_COMPONENTS

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "web" / "decode_vectors.mjs"
SEED = 20261122
TICKS = 40  # snapshots per case
POOL = 40  # entity ids drawn from 1..POOL (+ a few large ones)
WIDE = {  # every dtype and shape the page allows
    "b": {"dtype": "|b1", "shape": []},
    "f2": {"dtype": "<f2", "shape": [2]},
    "f4": {"dtype": "<f4", "shape": [], "scale": 4.0},
    "f8": {"dtype": "<f8", "shape": [2, 3]},
    "i1": {"dtype": "|i1", "shape": [3]},
    "i4": {"dtype": "<i4", "shape": []},
    "i8": {"dtype": "<i8", "shape": []},
    "u2": {"dtype": "<u2", "shape": [], "scale": 0.5},
    "u8": {"dtype": "<u8", "shape": [2]},
}


def random_rows(rng: np.random.Generator, spec: ComponentSpec, n: int) -> np.ndarray:
    shape = (n,) + spec.shape
    if spec.dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    arr = np.frombuffer(rng.bytes(n * spec.row_bytes), dtype=spec.dtype).reshape(shape).copy()
    if spec.dtype.kind == "f" and arr.size:
        specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5], dtype=spec.dtype)
        pick = rng.random(shape) < 0.3
        arr[pick] = rng.choice(specials, size=int(pick.sum()))
    return arr


def evolve(rng: np.random.Generator, schema: Schema, prev: WorldState | None, tick: int) -> WorldState:
    """The next world: some entities leave, some arrive, some rows change."""
    if prev is None or rng.random() < 0.1:
        ids = np.sort(rng.choice(np.arange(1, POOL + 1), size=int(rng.integers(0, 12)), replace=False))
        comps = {s.name: random_rows(rng, s, ids.shape[0]) for s in schema}
        return WorldState.from_view(tick, ids.astype("<u4"), comps, schema)
    keep = rng.random(prev.ids.shape[0]) > 0.15
    fresh = [i for i in rng.choice(np.arange(1, POOL + 1), size=3, replace=False) if i not in prev.ids]
    if rng.random() < 0.2:
        fresh.append(int(2**32 - 1 - rng.integers(0, 5)))  # ids near the top of uint32
    ids = np.concatenate([prev.ids[keep], np.array(fresh, dtype="<u4")[: int(rng.integers(0, 4))]])
    comps = {}
    for s in schema:
        old = prev.components[s.name][keep]
        new_rows = random_rows(rng, s, ids.shape[0] - old.shape[0])
        arr = np.concatenate([old, new_rows]).copy()
        change = rng.random(old.shape[0]) < 0.3
        arr[: old.shape[0]][change] = random_rows(rng, s, int(change.sum()))
        comps[s.name] = arr
    ids, unique = np.unique(ids, return_index=True)
    return WorldState.from_view(tick, ids, {k: v[unique] for k, v in comps.items()}, schema)


def snapshot_bytes(tick: int, base: int, fields: dict) -> bytes:
    return encode_snapshot(m.Snapshot(tick=tick, base=base, seq=tick, fields=fields, events=[[tick, "x", 1]]))


def make_case(rng: np.random.Generator, description: dict, out: Path, prefix: str) -> tuple[dict, list]:
    """A sequence of snapshots against baselines the client holds, and the
    worlds (or desyncs) a correct client must end with."""
    schema = Schema.from_description(description)
    held: dict[int, WorldState] = {}
    steps, expected = [], []
    world = None
    for tick in range(1, TICKS + 1):
        world = evolve(rng, schema, world, tick)
        usable = sorted(held)
        if not usable or rng.random() < 0.15:
            base_world = None
        else:
            base_world = held[usable[int(rng.integers(max(0, len(usable) - 6), len(usable)))]]
        base = -1 if base_world is None else base_world.tick
        fields = encode_delta(world, base_world, schema)
        name = f"{prefix}-{tick:03d}.msgpack"
        (out / name).write_bytes(snapshot_bytes(tick, base, fields))
        steps.append({"file": name})
        expected.append(world)
        held[tick] = world
        # The Python client agrees (a check on the vectors themselves).
        assert apply_delta(base_world, tick, fields, schema).equals(world)
    return {"schema": description, "steps": steps}, expected


def broken_case(out: Path) -> tuple[dict, list]:
    """Messages a client must refuse: each names its own flaw."""
    description = {"hp": {"dtype": "|u1", "shape": []}, "pos": {"dtype": "<i2", "shape": [2], "scale": 32}}
    schema = Schema.from_description(description)
    full = WorldState.from_view(
        1, [1, 2], {"hp": np.array([1, 2], "u1"), "pos": np.array([[1, 2], [3, 4]], "<i2")}, schema
    )
    good = encode_delta(full, None, schema)
    u32 = lambda *xs: np.array(xs, "<u4").tobytes()
    cases = {
        "ok": (1, -1, good),
        "unknown baseline": (3, 2, {**good, "rm": b""}),
        "n mismatch": (4, 1, {"ids": b"", "c": {}, "rm": b"", "n": 3}),
        "mask too long": (5, 1, {"ids": u32(1), "c": {"hp": [b"\x01\x00", b"\x07"]}, "rm": b"", "n": 2}),
        "mask bit past ids": (6, 1, {"ids": u32(1), "c": {"hp": [b"\x03", b"\x07"]}, "rm": b"", "n": 2}),
        "rows do not match mask": (7, 1, {"ids": u32(1, 2), "c": {"hp": [b"\x01", b"\x07\x08"]}, "rm": b"", "n": 2}),
        "ids not ascending": (8, 1, {"ids": u32(2, 1), "c": {}, "rm": b"", "n": 2}),
        "new entity lacks a component": (9, 1, {"ids": u32(3), "c": {"hp": [b"", b"\x05"]}, "rm": b"", "n": 3}),
        "removed and carried": (10, 1, {"ids": u32(2), "c": {"hp": [b"", b"\x05"]}, "rm": u32(2), "n": 1}),
        "rm not in baseline": (11, 1, {"ids": b"", "c": {}, "rm": u32(7), "n": 1}),
        "unknown component": (12, 1, {"ids": u32(1), "c": {"zz": [b"", b"\x05"]}, "rm": b"", "n": 2}),
        "rm in full snapshot": (
            13,
            -1,
            {"ids": u32(1), "c": {"hp": [b"", b"\x05"], "pos": [b"", b"\x00" * 4]}, "rm": u32(2), "n": 1},
        ),
        "still fine after": (14, 1, {"ids": u32(2), "c": {"pos": [b"", u32(0x00080007)]}, "rm": u32(1), "n": 1}),
    }
    steps, expected = [], []
    for label, (tick, base, fields) in cases.items():
        name = f"broken-{tick:03d}.msgpack"
        (out / name).write_bytes(snapshot_bytes(tick, base, fields))
        steps.append({"file": name})
        if label == "ok":
            expected.append(full)
        elif label == "still fine after":
            expected.append(apply_delta(full, tick, fields, schema))
        else:
            expected.append(label)
    return {"schema": description, "steps": steps}, expected


def expected_value(value, spec: ComponentSpec):
    """numpy's view of a raw value in the JSON spelling decode_vectors uses."""
    if isinstance(value, list):
        return [expected_value(v, spec) for v in value]
    if spec.dtype.kind in "iu" and spec.dtype.itemsize == 8:
        return str(value)
    if spec.dtype.kind == "f" and not math.isfinite(value):
        return str(value).replace("nan", "NaN").replace("inf", "Infinity")
    return value


def scaled(value, spec: ComponentSpec):
    if isinstance(value, list):
        return [scaled(v, spec) for v in value]
    if isinstance(value, str):  # NaN / Infinity: what JS spells stays as is
        return value
    return float(value) / spec.scale if spec.scale else value


def as_floats(value):
    """JSON spells a big double as an integer (JS prints up to 1e21 in full)."""
    if isinstance(value, list):
        return [as_floats(v) for v in value]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def test_js_decoder_matches_python_encoder(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required for the browser client tests (apt-get install nodejs)")
    rng = np.random.default_rng(SEED)
    cases, expected = [], []
    for i, description in enumerate([{k: dict(v) for k, v in ARENA_COMPONENTS.items()}, WIDE]):
        case, worlds = make_case(rng, description, tmp_path, f"case{i}")
        cases.append(case)
        expected.append(worlds)
    case, worlds = broken_case(tmp_path)
    cases.append(case)
    expected.append(worlds)
    (tmp_path / "manifest.json").write_text(json.dumps({"cases": cases}))

    subprocess.run([node, str(SCRIPT), str(tmp_path)], check=True, timeout=60)
    decoded = json.loads((tmp_path / "decoded.json").read_text())

    kinds = {"full": 0, "delta": 0, "rm": 0, "masked": 0, "desync": 0}
    for case, want_worlds, got_worlds in zip(cases, expected, decoded, strict=True):
        schema = Schema.from_description(case["schema"])
        for want, got in zip(want_worlds, got_worlds, strict=True):
            if isinstance(want, str):
                assert "desync" in got, f"{want}: decoded instead of refused"
                kinds["desync"] += 1
                continue
            assert "desync" not in got, got
            assert got["tick"] == want.tick
            assert got["ids"] == want.ids.tolist()
            for spec in schema:
                arr = want.components[spec.name]
                assert got["rows"][spec.name] == [row.tobytes().hex() for row in arr], spec.name
                raw = [expected_value(v, spec) for v in arr.tolist()]
                assert as_floats(got["values"][spec.name]) == as_floats(raw), spec.name
                # Division by the scale is one IEEE operation in both languages: exact.
                assert as_floats(got["units"][spec.name]) == as_floats([scaled(v, spec) for v in raw]), spec.name
    # The vectors exercised what they are for.
    for case in cases[:2]:
        for step in case["steps"]:
            fields = msgpack.unpackb((tmp_path / step["file"]).read_bytes())
            kinds["full" if fields["base"] == -1 else "delta"] += 1
            kinds["rm"] += bool(fields["rm"])
            kinds["masked"] += any(mask for mask, _ in fields["c"].values())
    assert min(kinds.values()) > 0, kinds
