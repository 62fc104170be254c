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
and validates them as one numpy structured array (``InputRows.decode``): a
handful of numpy calls per tick instead of a msgpack decode, a validation
and several Python objects per message. It refuses exactly what version 1
refuses, with the same codes (INVALID_MESSAGE for a value out of range, a
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
_COLUMN_DTYPES = {"float": np.float64, "int": np.int64, "bool": np.bool_}


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


def row_layout(fields: InputFields) -> list[list[str]]:
    """The welcome's "layout" of ``fields``: [name, wire dtype] in row order."""
    return [[name, FIELD_DTYPES[spec[0]]] for name, spec in fields.fields.items()]


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
        self._specs = tuple(fields.fields.items())
        self.dtype = np.dtype(_HEADER_FIELDS + [(f"f_{name}", FIELD_DTYPES[spec[0]]) for name, spec in self._specs])
        self.row_bytes = self.dtype.itemsize
        self.encoder = RowEncoder(row_layout(fields))
        # Bounds as the comparisons need them; a float field's bounds are
        # compared as floats (version 1 compares Python numbers: the same).
        self._checks = tuple(
            (name, spec[0], spec[1] if spec[0] != "bool" else 0, spec[2] if spec[0] != "bool" else 1)
            for name, spec in self._specs
        )

    def layout(self) -> list[list[str]]:
        """The welcome's "layout": [field name, wire dtype] in row order."""
        return row_layout(self.fields)

    # -- encoding (clients, bots, tests) --------------------------------------

    def encode_input(self, msg: m.Input) -> bytes:
        """A validated version 1 input as a row (the room decodes both
        versions' inputs in one batch)."""
        return self.encoder.encode(msg.seq, msg.tick, msg.ack, msg.data)

    # -- decoding (the server) ------------------------------------------------

    def decode(self, rows: Sequence[bytes]) -> DecodedRows:
        """Decode and validate rows of ``row_bytes`` each (the session
        checked their length)."""
        arr = np.frombuffer(b"".join(rows), dtype=self.dtype)
        seq = arr["seq"].astype(np.int64)
        tick = arr["tick"].astype(np.int64)
        ack = arr["ack"].astype(np.int64)
        ok = (seq >= 1) & (tick >= 0) & (ack >= m.NO_TICK)
        columns: dict[str, np.ndarray] = {}
        for name, kind, lo, hi in self._checks:
            raw = arr[f"f_{name}"]
            if kind == "float":
                # NaN fails both comparisons; an infinity fails the range
                # unless a bound is infinite, hence isfinite too.
                ok &= np.isfinite(raw) & (raw >= lo) & (raw <= hi)
            else:
                ok &= (raw >= lo) & (raw <= hi)
            columns[name] = raw.astype(_COLUMN_DTYPES[kind])
        refusals: dict[int, RemoteProtocolError] = {}
        if not ok.all():
            for index in np.flatnonzero(~ok).tolist():
                refusals[index] = RemoteProtocolError(Code.INVALID_MESSAGE, self._why(arr[index]))
        return DecodedRows(ok=ok, seq=seq, tick=tick, ack=ack, fields=columns, refusals=refusals)

    def _why(self, row: np.void) -> str:
        """The refusal text of one bad row, worded as version 1 words it
        (the first rule it breaks, in the same order)."""
        for key, lo, hi in (("seq", 1, MAX_SEQ), ("tick", 0, MAX_TICK), ("ack", m.NO_TICK, MAX_TICK)):
            value = int(row[key])
            if not lo <= value <= hi:
                return f"{key!r} must be in [{lo}, {hi}], got {value}"
        for name, kind, lo, hi in self._checks:
            value = row[f"f_{name}"].item()
            if kind == "bool":
                if value not in (0, 1):
                    return f"input {name!r} must be true or false"
            elif kind == "int":
                if not lo <= value <= hi:
                    return f"input {name!r} must be in [{lo}, {hi}]"
            elif not math.isfinite(value):
                return f"input {name!r} must be finite, got {value!r}"
            elif not lo <= value <= hi:
                return f"input {name!r} must be in [{lo}, {hi}], got {value!r}"
        return "invalid input row"  # unreachable: decode found a rule broken
