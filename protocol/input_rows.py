"""Protocol version 2 inputs: fixed-layout binary rows, decoded in batches.

An input is small and, for a given game, of fixed shape, so version 2 sends
it as a row of fixed size instead of a msgpack map (docs/protocol.md, 4.2):

    offset 0   u8    0x01, the row tag (never the first byte of a msgpack map)
    offset 1   <u4   seq
    offset 5   <i4   tick
    offset 9   <i4   ack
    offset 13  the game's fields, in the welcome's "layout" order:
               ["float", lo, hi] as <f8, ["int", lo, hi] as <i8, ["bool"] as |u1

The server collects a tick's rows from all of a room's players and decodes
and validates them in one batch (``InputRows.decode``): a fixed handful of
array operations per tick instead of a msgpack decode, a validation and
several Python objects per message. A room's few rows are unpacked by
struct into one float64 matrix checked against bound vectors; from
NUMPY_MIN_ROWS rows on (a node-wide batch) a structured numpy view of the
joined rows is cheaper (docs/benchmarks.md, "Wire protocol version 2").
Either way it refuses exactly what version 1 refuses, with the same codes (INVALID_MESSAGE for a value out of range, a
NaN or infinity, a seq of 0, ...); what only a row can get wrong (its
length, a bool byte other than 0 or 1) has the codes of its version 1
equivalents (a frame that does not decode: BAD_MESSAGE; a wrong type:
INVALID_MESSAGE). tests/protocol/test_input_rows.py drives both paths with
the same inputs.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code, RemoteProtocolError
from tickroom.protocol.validate import MAX_SEQ, MAX_TICK, InputFields

ROW_TAG = 0x01
HEADER = struct.Struct("<BIii")  # tag, seq, tick, ack
HEADER_BYTES = HEADER.size  # 13
#: Each input field kind's wire dtype in a row.
FIELD_DTYPES = {"float": "<f8", "int": "<i8", "bool": "|u1"}
_STRUCT_CODES = {"<f8": "d", "<i8": "q", "|u1": "B"}
_HEADER_FIELDS = [("tag", "u1"), ("seq", "<u4"), ("tick", "<i4"), ("ack", "<i4")]
_KIND_ORDER = {"float": 0, "int": 1, "bool": 2}
_COLUMN_DTYPES = {"float": np.float64, "int": np.int64, "bool": np.bool_}
#: From this many rows on, one batch costs less in numpy (a fixed ~25 calls)
#: than row by row with struct (docs/benchmarks.md, "Wire protocol version 2").
NUMPY_MIN_ROWS = 64
_INT64 = (-(2**63), 2**63 - 1)
_HEAD_SHIFT = np.array([0, 0, 1], dtype=np.int64)
_HEAD_LO = np.array([1, 0, 0], dtype=np.int64)
_HEAD_HI = np.array([MAX_SEQ, MAX_TICK, MAX_TICK + 1], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class DecodedRows:
    """One batch of rows, validated. ``ok`` marks the rows accepted; for the
    others ``codes``/``messages`` (indexed like the rows) say why not.
    Columns hold every row (refused ones too): index them with ``ok``."""

    ok: np.ndarray  # bool per row
    seq: np.ndarray  # int64
    tick: np.ndarray  # int64
    ack: np.ndarray  # int64
    fields: Mapping[str, np.ndarray]  # field name -> column, in the game's dtype
    refusals: Mapping[int, RemoteProtocolError]  # row index -> why it was refused

    def cut(self, start: int, stop: int) -> DecodedRows:
        """Rows [start, stop) as a batch of their own (indices from 0):
        one room's share of a node-wide decode. Columns are views."""
        return DecodedRows(
            ok=self.ok[start:stop],
            seq=self.seq[start:stop],
            tick=self.tick[start:stop],
            ack=self.ack[start:stop],
            fields={name: column[start:stop] for name, column in self.fields.items()},
            refusals={i - start: why for i, why in self.refusals.items() if start <= i < stop},
        )


def row_layout(fields: InputFields) -> list[list[str]]:
    """The welcome's "layout" of ``fields``: [name, wire dtype] in row order,
    the floats first, then the ints, then the bools (each kind in the game's
    order), so that the server checks each kind's values as one 2-D block."""
    ordered = sorted(fields.fields.items(), key=lambda item: _KIND_ORDER[item[1][0]])
    return [[name, FIELD_DTYPES[spec[0]]] for name, spec in ordered]


class RowEncoder:
    """Packs inputs into rows of a welcome's ``layout`` (the client's side;
    the reference client, the bots and the tests use it)."""

    def __init__(self, layout: Sequence[Sequence[str]]) -> None:
        try:
            codes = "".join(_STRUCT_CODES[dtype] for _, dtype in layout)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"not an input row layout: {layout!r}") from exc
        self._fields = tuple((name, dtype) for name, dtype in layout)
        self._struct = struct.Struct("<BIii" + codes)
        self.row_bytes = self._struct.size

    def encode(self, seq: int, tick: int, ack: int, data: Mapping[str, Any]) -> bytes:
        """One row; absent fields are 0 / false (as in version 1). Values
        are packed as given: out-of-range ones are the server's to refuse.
        Raises ValueError for a field the layout does not have (version 1
        refuses it: a row cannot even carry it)."""
        unknown = data.keys() - {name for name, _ in self._fields}
        if unknown:
            raise ValueError(f"unknown input field(s): {sorted(unknown)}")
        values: list[Any] = []
        for name, dtype in self._fields:
            value = data.get(name)
            if dtype == "|u1":
                values.append(1 if value else 0)
            elif dtype == "<i8":
                values.append(int(value or 0))
            else:
                values.append(float(value or 0.0))
        return self._struct.pack(ROW_TAG, seq, tick, ack, *values)


class InputRows:
    """The row layout of one game's input fields, and its batched decoder."""

    def __init__(self, fields: InputFields) -> None:
        self.fields = fields
        layout = row_layout(fields)
        # Per field, for the refusal texts (one row at a time).
        self.dtype = np.dtype(_HEADER_FIELDS + [(f"f_{name}", dtype) for name, dtype in layout])
        self.row_bytes = self.dtype.itemsize
        self.encoder = RowEncoder(layout)
        self._layout = layout
        # Per kind, for the batch: the header's three uint32 and each kind's
        # fields as one (rows, fields) block, checked against bound vectors
        # all at once: a fixed handful of numpy calls per tick.
        blocks: list[tuple[str, str, int]] = []
        self._blocks: list[tuple[str, list[str], np.ndarray, np.ndarray]] = []
        for kind, dtype in FIELD_DTYPES.items():
            names = [name for name, spec in fields.fields.items() if spec[0] == kind]
            if not names:
                continue
            blocks.append((kind, dtype, len(names)))
            if kind == "bool":
                lo, hi = np.zeros(len(names), dtype=np.uint8), np.ones(len(names), dtype=np.uint8)
            elif kind == "int":  # int64 is all a row carries: wider bounds are the same as none
                lo = np.array([max(fields.fields[n][1], _INT64[0]) for n in names], dtype=np.int64)
                hi = np.array([min(fields.fields[n][2], _INT64[1]) for n in names], dtype=np.int64)
            else:
                lo = np.array([fields.fields[n][1] for n in names], dtype=np.float64)
                hi = np.array([fields.fields[n][2] for n in names], dtype=np.float64)
            self._blocks.append((kind, names, lo, hi))
        # The per-row path: the whole row in one struct, and every value's
        # [lo, hi] (a bool's is [0, 1]; ack's lower bound is -1).
        self._row_struct = struct.Struct("<xIii" + "".join(_STRUCT_CODES[dtype] for _, dtype in layout))
        bounds = [(1, MAX_SEQ), (0, MAX_TICK), (m.NO_TICK, MAX_TICK)]
        for name, _ in layout:
            spec = fields.fields[name]
            bounds.append((0, 1) if spec[0] == "bool" else (spec[1], spec[2]))
        self._bounds = tuple(bounds)
        # The matrix check's bounds; an int field's are checked on its own
        # exact int64 column (a float64 cannot hold every int64).
        is_int = [False] * 3 + [fields.fields[name][0] == "int" for name, _ in layout]
        self._matrix_lo = np.array([-np.inf if i else lo for (lo, _), i in zip(bounds, is_int, strict=True)])
        self._matrix_hi = np.array([np.inf if i else hi for (_, hi), i in zip(bounds, is_int, strict=True)])
        self._float_positions = list(3 + i for i, (name, _) in enumerate(layout) if fields.fields[name][0] == "float")
        self._column_dtypes = tuple((name, _COLUMN_DTYPES[fields.fields[name][0]]) for name, _ in layout)
        self._block_dtype = np.dtype([("tag", "u1"), ("head", "<u4", (3,))] + [(k, d, (n,)) for k, d, n in blocks])
        # An infinite bound would let an infinity through the range check:
        # only then is finiteness checked apart (NaN fails any comparison).
        self._check_finite = any(
            kind == "float" and not (np.isfinite(lo).all() and np.isfinite(hi).all())
            for kind, _, lo, hi in self._blocks
        )

    def layout(self) -> list[list[str]]:
        """The welcome's "layout": [field name, wire dtype] in row order."""
        return [list(field) for field in self._layout]

    # -- encoding (clients, bots, tests) --------------------------------------

    def encode_input(self, msg: m.Input) -> bytes:
        """A validated version 1 input as a row (the room decodes both
        versions' inputs in one batch)."""
        return self.encoder.encode(msg.seq, msg.tick, msg.ack, msg.data)

    # -- decoding (the server) ------------------------------------------------

    def decode(self, rows: Sequence[bytes], *, numpy_min_rows: int = NUMPY_MIN_ROWS) -> DecodedRows:
        """Decode and validate rows of ``row_bytes`` each (the session
        checked their length). Both ways apply the same rules: a batch of
        at least ``numpy_min_rows`` rows in numpy, a smaller one row by row
        (numpy's per-call cost is not paid back by a room's ten rows)."""
        joined = b"".join(rows)
        if len(rows) < numpy_min_rows:
            return self._decode_rows(joined)
        return self._decode_numpy(joined)

    def _decode_rows(self, joined: bytes) -> DecodedRows:
        """Small batches: struct unpacks the rows into one float64 matrix
        (exact for the header, floats and bools; the int fields are read
        apart, exactly), checked against the bound vectors at once."""
        values = list(self._row_struct.iter_unpack(joined))
        matrix = np.array(values, dtype=np.float64)
        ok = np.asarray(((matrix >= self._matrix_lo) & (matrix <= self._matrix_hi)).all(axis=1))
        if self._check_finite:
            ok &= np.isfinite(matrix[:, self._float_positions]).all(axis=1)
        head = matrix[:, :3].astype(np.int64)
        columns: dict[str, np.ndarray] = {}
        for j, (name, dtype) in enumerate(self._column_dtypes, start=3):
            if dtype is np.float64:
                columns[name] = matrix[:, j]
            elif dtype is np.bool_:
                columns[name] = matrix[:, j] != 0
            else:
                column = np.array([row[j] for row in values], dtype=np.int64)
                lo, hi = self._bounds[j]
                ok &= (column >= max(lo, _INT64[0])) & (column <= min(hi, _INT64[1]))
                columns[name] = column
        refusals: dict[int, RemoteProtocolError] = {}
        if not ok.all():
            per_field = np.frombuffer(joined, dtype=self.dtype)
            for index in np.flatnonzero(~ok).tolist():
                refusals[index] = RemoteProtocolError(Code.INVALID_MESSAGE, self._why(per_field[index]))
        return DecodedRows(ok=ok, seq=head[:, 0], tick=head[:, 1], ack=head[:, 2], fields=columns, refusals=refusals)

    def _decode_numpy(self, joined: bytes) -> DecodedRows:
        arr = np.frombuffer(joined, dtype=self._block_dtype)
        # seq, tick and ack + 1 as uint32 (ack -1 wraps to 0): each rule is
        # then one range, [1, MAX_SEQ], [0, MAX_TICK] and [0, MAX_TICK + 1].
        head = arr["head"].astype(np.int64)
        head += _HEAD_SHIFT
        head &= 0xFFFFFFFF
        ok = np.asarray(((head >= _HEAD_LO) & (head <= _HEAD_HI)).all(axis=1))
        columns: dict[str, np.ndarray] = {}
        for kind, names, lo, hi in self._blocks:
            values = arr[kind]
            in_range = (values >= lo) & (values <= hi)
            if kind == "float" and self._check_finite:
                in_range &= np.isfinite(values)
            ok &= in_range.all(axis=1)
            if kind == "bool":
                values = values != 0
            for j, name in enumerate(names):
                columns[name] = values[:, j].copy()  # a writable array of its own, as the game gets
        refusals: dict[int, RemoteProtocolError] = {}
        if not ok.all():
            per_field = np.frombuffer(joined, dtype=self.dtype)
            for index in np.flatnonzero(~ok).tolist():
                refusals[index] = RemoteProtocolError(Code.INVALID_MESSAGE, self._why(per_field[index]))
        return DecodedRows(
            ok=ok, seq=head[:, 0], tick=head[:, 1], ack=head[:, 2] - 1, fields=columns, refusals=refusals
        )

    def _why(self, row: np.void) -> str:
        """The refusal text of one bad row, worded as version 1 words it
        (the first rule it breaks, in version 1's order: the game's)."""
        for key, lo, hi in (("seq", 1, MAX_SEQ), ("tick", 0, MAX_TICK), ("ack", m.NO_TICK, MAX_TICK)):
            value = int(row[key])
            if not lo <= value <= hi:
                return f"{key!r} must be in [{lo}, {hi}], got {value}"
        for name, spec in self.fields.fields.items():
            value = row[f"f_{name}"].item()
            kind = spec[0]
            if kind == "bool":
                if value not in (0, 1):
                    return f"input {name!r} must be true or false"
            elif kind == "int":
                if not spec[1] <= value <= spec[2]:
                    return f"input {name!r} must be in [{spec[1]}, {spec[2]}]"
            elif not math.isfinite(value):
                return f"input {name!r} must be finite, got {value!r}"
            elif not spec[1] <= value <= spec[2]:
                return f"input {name!r} must be in [{spec[1]}, {spec[2]}], got {value!r}"
        return "invalid input row"  # unreachable: decode found a rule broken
