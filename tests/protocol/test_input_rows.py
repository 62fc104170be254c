"""Protocol version 2's input rows against version 1's inputs.

The batched decode and validation (tickroom.protocol.input_rows) must
refuse exactly what the version 1 path (msgpack decode, then the
validator, through the joined ServerSession) refuses, with the same codes,
and accept the same values. Both paths get the same inputs: valid ones,
values out of range, NaN and infinities, seqs and ticks out of range, and
rows with random bytes flipped, each translated into its version 1 map.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code, RemoteProtocolError
from tickroom.protocol.input_rows import HEADER_BYTES, ROW_TAG, InputRows, RowEncoder, row_layout
from tickroom.protocol.session import ServerSession
from tickroom.protocol.validate import InputFields

FIELDS = InputFields(
    {
        "mx": ("float", -1.0, 1.0),
        "aim": ("float", -math.pi, math.pi),
        "power": ("int", -5, 300),
        "fire": ("bool",),
        "jump": ("bool",),
    }
)
ROWS = InputRows(FIELDS)
T0 = 1000.0

# Values a row can carry, with the edges of each rule and of each wire type.
seqs = st.one_of(st.sampled_from([0, 1, 2, 2**31, 2**32 - 1]), st.integers(0, 2**32 - 1))
ticks = st.one_of(st.sampled_from([-(2**31), -2, -1, 0, 1, 2**31 - 1]), st.integers(-(2**31), 2**31 - 1))
floats = st.one_of(
    st.sampled_from([-1.0, 1.0, -1.0000000000000002, 1.0000000000000002, -0.0, math.pi, -math.pi, 4.0]),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.floats(-10.0, 10.0),
    st.floats(allow_nan=True, allow_infinity=True),
)
ints = st.one_of(st.sampled_from([-6, -5, 300, 301, 0]), st.integers(-(2**63), 2**63 - 1))
bool_bytes = st.one_of(st.sampled_from([0, 1]), st.integers(0, 255))


VALID = {
    "seq": st.integers(1, 2**32 - 1),
    "tick": st.integers(0, 2**31 - 1),
    "ack": st.integers(-1, 2**31 - 1),
    "mx": st.floats(-1.0, 1.0),
    "aim": st.floats(-math.pi, math.pi),
    "power": st.integers(-5, 300),
    "fire": st.sampled_from([0, 1]),
    "jump": st.sampled_from([0, 1]),
}
ANY = {
    "seq": seqs, "tick": ticks, "ack": ticks, "mx": floats, "aim": floats, "power": ints,
    "fire": bool_bytes, "jump": bool_bytes,
}  # fmt: skip


@st.composite
def raw_inputs(draw: Any) -> tuple[int, int, int, dict[str, Any]]:
    """(seq, tick, ack, field -> raw wire value) as a row carries them:
    each part valid, or (one in four) anything its wire type holds, so
    that most inputs break one rule or none."""
    raw = {key: draw(ANY[key] if draw(st.integers(0, 3)) == 0 else VALID[key]) for key in VALID}
    return raw.pop("seq"), raw.pop("tick"), raw.pop("ack"), raw


def pack_row(seq: int, tick: int, ack: int, values: dict[str, Any]) -> bytes:
    codes = {"<f8": "d", "<i8": "q", "|u1": "B"}
    fmt = "<BIii" + "".join(codes[dtype] for _, dtype in ROWS.layout())
    return struct.pack(fmt, ROW_TAG, seq, tick, ack, *(values[name] for name, _ in ROWS.layout()))


def unpack_row(row: bytes) -> tuple[int, int, int, dict[str, Any]]:
    fields = np.frombuffer(row, dtype=ROWS.dtype)[0]
    values = {name: fields[f"f_{name}"].item() for name in FIELDS.fields}
    return int(fields["seq"]), int(fields["tick"]), int(fields["ack"]), values


def as_version_1(seq: int, tick: int, ack: int, values: dict[str, Any]) -> bytes:
    """The version 1 message that says what the row says: a bool byte
    other than 0 or 1 is an int where a bool is due."""
    data = {}
    for name, value in values.items():
        data[name] = bool(value) if FIELDS.fields[name][0] == "bool" and value in (0, 1) else value
    return msgpack.packb({"t": "input", "seq": seq, "tick": tick, "ack": ack, "in": data}, use_bin_type=True)


def joined(version: int) -> ServerSession:
    session = ServerSession()
    session.receive_message(msgpack.packb({"t": "join", "v": version}), T0)
    session.joined(FIELDS, 20, T0)
    return session


def version_1_outcome(data: bytes) -> tuple[str, Any]:
    try:
        msg = joined(1).receive_message(data, T0)
    except RemoteProtocolError as exc:
        return "refused", exc.code
    assert isinstance(msg, m.Input)
    return "accepted", (msg.seq, msg.tick, msg.ack, dict(msg.data))


def version_2_outcomes(rows: list[bytes]) -> list[tuple[str, Any]]:
    session = joined(2)
    for row in rows:
        assert session.receive_message(row, T0) == row  # passed on, length checked
        session._tokens = session._burst  # the rate limit is not under test
    decoded = ROWS.decode(rows)
    # Both ways of decoding (row by row, and numpy's for big batches) agree.
    in_numpy = ROWS.decode(rows, numpy_min_rows=0)
    assert in_numpy.ok.tolist() == decoded.ok.tolist()
    assert {i: (r.code, r.message) for i, r in in_numpy.refusals.items()} == {
        i: (r.code, r.message) for i, r in decoded.refusals.items()
    }
    for name, column in decoded.fields.items():
        assert column.dtype == in_numpy.fields[name].dtype
        assert column[decoded.ok].tolist() == in_numpy.fields[name][decoded.ok].tolist()
    for key in ("seq", "tick", "ack"):
        assert getattr(decoded, key)[decoded.ok].tolist() == getattr(in_numpy, key)[decoded.ok].tolist()
    out: list[tuple[str, Any]] = []
    for i in range(len(rows)):
        if not decoded.ok[i]:
            assert i in decoded.refusals
            out.append(("refused", decoded.refusals[i].code))
            continue
        data = {name: col[i].item() for name, col in decoded.fields.items()}
        out.append(("accepted", (int(decoded.seq[i]), int(decoded.tick[i]), int(decoded.ack[i]), data)))
    return out


@given(st.lists(raw_inputs(), min_size=1, max_size=24))
@settings(max_examples=300, deadline=None)
def test_a_batch_of_rows_refuses_exactly_what_version_1_refuses(inputs) -> None:
    rows = [pack_row(*raw) for raw in inputs]
    expected = [version_1_outcome(as_version_1(*raw)) for raw in inputs]
    assert version_2_outcomes(rows) == expected


@given(raw_inputs(), st.lists(st.tuples(st.integers(HEADER_BYTES - 12, ROWS.row_bytes - 1), st.integers(0, 255))))
@settings(max_examples=300, deadline=None)
def test_mutated_rows_are_refused_as_their_version_1_equivalents(raw, flips) -> None:
    row = bytearray(pack_row(*raw))
    for offset, byte in flips:
        row[offset] = byte  # anything but the tag: a row without it is not a row
    mutated = bytes(row)
    [got] = version_2_outcomes([mutated])
    assert got == version_1_outcome(as_version_1(*unpack_row(mutated)))


def test_refusals_name_the_field_as_version_1_does() -> None:
    good = {"mx": 0.5, "aim": 0.0, "power": 3, "fire": 1, "jump": 0}
    cases = {
        "seq": (pack_row(0, 0, -1, good), "'seq' must be in [1, 4294967295], got 0"),
        "ack": (pack_row(1, 0, -2, good), "'ack' must be in [-1, 2147483647], got -2"),
        "range": (pack_row(1, 0, -1, good | {"mx": 2.0}), "input 'mx' must be in [-1.0, 1.0], got 2.0"),
        "nan": (pack_row(1, 0, -1, good | {"aim": math.nan}), "input 'aim' must be finite, got nan"),
        "bool": (pack_row(1, 0, -1, good | {"jump": 7}), "input 'jump' must be true or false"),
        "int": (pack_row(1, 0, -1, good | {"power": 301}), "input 'power' must be in [-5, 300]"),
    }
    decoded = ROWS.decode([row for row, _ in cases.values()])
    assert not decoded.ok.any()
    assert [decoded.refusals[i].message for i in range(len(cases))] == [text for _, text in cases.values()]
    assert {r.code for r in decoded.refusals.values()} == {Code.INVALID_MESSAGE}


def test_a_good_row_decodes_to_the_game_dtypes() -> None:
    row = RowEncoder(row_layout(FIELDS)).encode(7, 40, 39, {"mx": -0.5, "power": 12, "fire": True})
    assert len(row) == ROWS.row_bytes == HEADER_BYTES + 8 + 8 + 8 + 1 + 1
    decoded = ROWS.decode([row])
    assert decoded.ok.tolist() == [True] and not decoded.refusals
    assert (decoded.seq[0], decoded.tick[0], decoded.ack[0]) == (7, 40, 39)
    assert {name: col.dtype for name, col in decoded.fields.items()} == {
        "mx": np.float64, "aim": np.float64, "power": np.int64, "fire": np.bool_, "jump": np.bool_,
    }  # fmt: skip
    assert decoded.fields["fire"].tolist() == [True] and decoded.fields["jump"].tolist() == [False]


def test_the_layout_is_the_fields_in_order_with_their_wire_dtypes() -> None:
    assert ROWS.layout() == [["mx", "<f8"], ["aim", "<f8"], ["power", "<i8"], ["fire", "|u1"], ["jump", "|u1"]]
    with pytest.raises(ValueError):
        RowEncoder([["mx", "<f4"]])
