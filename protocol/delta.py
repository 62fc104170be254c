"""The delta codec: a world at tick T as bytes against a world the client has.

A snapshot message carries the world at tick T as a delta against a baseline
the client acknowledged (or as a full snapshot when there is none). The fields
this module produces and consumes, all arrays packed little-endian:

``"ids"``  uint32 ids of the entities this message carries, ascending: those
           new since the baseline, and those present in both with at least one
           component changed. In a full snapshot: every entity.
``"c"``    ``{name: [mask, values]}``. ``mask`` is empty bytes (every entity in
           "ids" carries this component) or exactly ceil(len(ids) / 8) bytes,
           one bit per entry of "ids", LSB first (numpy ``packbits(...,
           bitorder="little")``), bits past len(ids) zero. ``values`` are the
           carried rows in "ids" order, ``row_bytes`` each, in the schema's
           dtype. A component no entity carries is absent. A new entity carries
           every component. The encoder uses the empty mask whenever every bit
           would be set (always, in a full snapshot).
``"rm"``   uint32 ids present in the baseline and gone now, ascending.
``"n"``    the number of entities after applying; a mismatch is a desync.

"Changed" is bitwise per row: a float NaN that stays the same NaN is no change,
and 0.0 -> -0.0 is one. Why bits and not values: the client must end up with
exactly the server's bytes, or the next delta would be against something else.

The decoder trusts nothing: it checks every type, length, order and count
before it builds anything, and raises DeltaError naming what was wrong. It is
lenient only where nothing is ambiguous (a full mask, a component present with
no rows, an entity in "ids" carrying nothing, extra keys in the message body,
which belong to the message layer).

Worlds are immutable once built: their arrays are read-only views, so an
unchanged component is shared between a baseline and the world rebuilt from it
rather than copied every tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tickroom.protocol.schema import Schema

#: Entity ids on the wire and in a WorldState.
ID_DTYPE = np.dtype("<u4")
#: Largest entity id a uint32 can hold.
MAX_ENTITY_ID = 2**32 - 1
#: What a packed wire field must be: msgpack bin unpacks to bytes. Not
#: bytearray: a full snapshot's arrays are views of these bytes, so they must
#: be immutable.
BYTES_TYPES = (bytes,)
_EMPTY = b""
_UINTS = {size: np.dtype(f"<u{size}") for size in (1, 2, 4, 8)}


class DeltaError(ValueError):
    """A delta that cannot be applied: unknown/absent baseline, malformed or
    inconsistent fields (client side: a desync)."""


def _frozen(arr: np.ndarray) -> np.ndarray:
    """A read-only view: the world's arrays are shared, never mutated."""
    view = arr.view()
    view.flags.writeable = False
    return view


def _count(mask: np.ndarray) -> int:
    """True entries of a bool array. np.count_nonzero, because ndarray.any()
    and .all() cost ~2 us each in numpy's Python-level reduction wrapper, a
    lot at a dozen calls per message."""
    return int(np.count_nonzero(mask))


def _ascending(ids: np.ndarray) -> bool:
    """Strictly ascending, hence unique."""
    return ids.shape[0] < 2 or _count(ids[1:] <= ids[:-1]) == 0


def _bits(arr: np.ndarray) -> np.ndarray:
    """The same memory as unsigned ints of the item size, for bitwise compares."""
    return arr.view(_UINTS[arr.dtype.itemsize])


def _same_ids(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and _count(a != b) == 0


def _id_bytes(ids: np.ndarray) -> bytes:
    return np.ascontiguousarray(ids, dtype=ID_DTYPE).tobytes()


@dataclass(frozen=True, eq=False)
class WorldState:
    """What clients see of the world at one tick, as the codec needs it.

    ``ids`` is uint32, unique, ascending; ``components[name]`` has shape
    ``(len(ids),) + spec.shape`` and dtype ``spec.dtype``; row i belongs to
    ``ids[i]``. Build one with :meth:`from_view` (validated) or get one from
    :func:`apply_delta`. Arrays are read-only; never mutate them, as worlds
    share unchanged arrays with each other.
    """

    tick: int
    ids: np.ndarray
    components: Mapping[str, np.ndarray]
    # The rows as bytes (``_rows``), made on first use by encode_delta: a
    # world is compared as "current" once, then as a baseline for as long as
    # clients ack it, so they are worth keeping. A plain field, not cached by
    # schema: a world is only ever encoded with the schema it was built for.
    _packed: list = field(default_factory=list, init=False, repr=False)

    def _rows(self, schema: Schema) -> np.ndarray:
        """Every component of a row side by side as bytes, (n, sum of
        row_bytes) uint8 in schema order: one compare finds the changed
        bytes of all components at once (encode_delta)."""
        if not self._packed:
            n = self.ids.shape[0]
            parts = [np.ascontiguousarray(self.components[spec.name]).view(np.uint8).reshape(n, spec.row_bytes)
                     for spec in schema]  # fmt: skip
            # A last, always-zero column: reduceat needs every start inside
            # the row, and a component of zero bytes starts at its end.
            parts.append(np.zeros((n, 1), np.uint8))
            self._packed.append(np.concatenate(parts, axis=1))
        return self._packed[0]

    @classmethod
    def from_view(cls, tick: int, ids: Any, components: Mapping[str, Any], schema: Schema) -> WorldState:
        """Wrap a game's view (tickroom.simulation.game.View fields) as a world.

        Sorts by id if the ids are not ascending. The arrays are kept by
        reference when already sorted: the caller hands them over and must not
        mutate them afterwards (a Game's view() returns fresh arrays; if it
        returned live state, the snapshot ring would change under the encoder).

        Raises ValueError when the ids are not unique uint32 values, or a
        component is missing, unknown, or of the wrong dtype or shape.
        """
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(f"ids must be 1-D, got shape {ids.shape}")
        if ids.size == 0:
            ids = np.zeros(0, dtype=ID_DTYPE)  # np.array([]) is float64
        elif ids.dtype != ID_DTYPE:
            if ids.dtype.kind not in "iu":
                raise ValueError(f"ids must be integers, got dtype {ids.dtype}")
            if ids.min() < 0 or ids.max() > MAX_ENTITY_ID:
                raise ValueError("ids must fit in uint32")
            ids = ids.astype(ID_DTYPE)
        if set(components) != set(schema.names):
            raise ValueError(f"components {sorted(components)} do not match the schema's {list(schema.names)}")
        arrays = {}
        for spec in schema:
            arr = np.asarray(components[spec.name])
            expected = (ids.shape[0],) + spec.shape
            if arr.dtype != spec.dtype or arr.shape != expected:
                raise ValueError(
                    f"component {spec.name!r}: expected {spec.dtype.str} {expected}, got {arr.dtype.str} {arr.shape}"
                )
            arrays[spec.name] = arr
        if not _ascending(ids):
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
            if not _ascending(ids):
                raise ValueError("ids are not unique")
            arrays = {name: arr[order] for name, arr in arrays.items()}
        return cls(int(tick), _frozen(ids), {name: _frozen(arr) for name, arr in arrays.items()})

    def subset(self, rows: np.ndarray, schema: Schema) -> WorldState:
        """The same tick restricted to the entities at ``rows``, ascending
        indices into ``ids`` (one player's view of the world). The subset's
        packed rows (what encode_delta compares) are cut from this world's,
        packed once for all its subsets."""
        rows = np.asarray(rows, dtype=np.intp)
        sub = WorldState(
            self.tick, _frozen(self.ids[rows]), {name: _frozen(arr[rows]) for name, arr in self.components.items()}
        )
        sub._packed.append(self._rows(schema)[rows])
        return sub

    def equals(self, other: WorldState) -> bool:
        """Whether both hold the same ids and bit-identical components (ticks aside)."""
        if not isinstance(other, WorldState) or not _same_ids(self.ids, other.ids):
            return False
        if set(self.components) != set(other.components):
            return False
        for name, arr in self.components.items():
            theirs = other.components[name]
            if arr.dtype != theirs.dtype or arr.shape != theirs.shape:
                return False
            if _count(_bits(arr) != _bits(theirs)):
                return False
        return True

    def entity(self, entity_id: int) -> dict[str, Any] | None:
        """That entity's components as Python values (raw wire values, no
        scale applied), or None when it is not in this world."""
        if not 0 <= entity_id <= MAX_ENTITY_ID:
            return None
        i = int(np.searchsorted(self.ids, entity_id))
        if i == self.ids.shape[0] or self.ids[i] != entity_id:
            return None
        return {name: arr[i].tolist() for name, arr in self.components.items()}

    def __repr__(self) -> str:
        return f"WorldState(tick={self.tick}, entities={self.ids.shape[0]}, components={sorted(self.components)})"


def encode_delta(current: WorldState, baseline: WorldState | None, schema: Schema) -> dict:
    """Encode ``current`` against ``baseline`` (None: a full snapshot).

    Returns the msgpack-ready fields ``{"ids": bytes, "c": {name: [mask,
    values]}, "rm": bytes, "n": int}`` described in the module docstring.
    Both worlds must follow ``schema`` (a server-side invariant, not checked
    here: this runs per client group every tick). Pure; the result may be
    shared by every client with the same baseline.
    """
    n = int(current.ids.shape[0])
    if baseline is None:
        comps = {}
        if n:
            for spec in schema:
                values = np.ascontiguousarray(current.components[spec.name], dtype=spec.dtype)
                comps[spec.name] = [_EMPTY, values.tobytes()]
        return {"ids": _id_bytes(current.ids), "c": comps, "rm": _EMPTY, "n": n}

    # Which components of which rows changed, for every component at once:
    # compare the rows' bytes (WorldState._rows), then OR each component's
    # byte columns together (reduceat). A dozen numpy calls per delta
    # whatever the schema, instead of a dozen per component.
    cur_ids, base_ids = current.ids, baseline.ids
    cur_rows, base_rows = current._rows(schema), baseline._rows(schema)
    starts, hollow = schema.row_starts, schema.hollow
    if _same_ids(cur_ids, base_ids):
        # Same entities as the baseline (the usual tick): rows line up as is.
        if n and starts.shape[0]:
            carry = np.logical_or.reduceat(cur_rows != base_rows, starts, axis=1)
            if hollow is not None:
                carry[:, hollow] = False
        else:
            carry = np.zeros((n, starts.shape[0]), dtype=bool)
        carried = np.logical_or.reduce(carry, axis=1)
        rm = _EMPTY
    else:
        # Both id arrays ascend: one binary search pairs the survivors.
        m = base_ids.shape[0]
        if m:
            slot = np.searchsorted(base_ids, cur_ids)
            np.minimum(slot, m - 1, out=slot)
            kept = base_ids[slot] == cur_ids
            cur_idx = np.flatnonzero(kept)
            base_idx = slot[cur_idx]
        else:
            cur_idx = base_idx = np.zeros(0, dtype=np.intp)
        carry = np.ones((n, len(starts)), dtype=bool)  # new entities carry everything
        if cur_idx.shape[0] and starts.shape[0]:
            changed = np.logical_or.reduceat(cur_rows[cur_idx] != base_rows[base_idx], starts, axis=1)
            if hollow is not None:
                changed[:, hollow] = False
            carry[cur_idx] = changed
        # New entities are carried even in a schema with no bytes to send.
        carried = np.ones(n, dtype=bool)
        carried[cur_idx] = np.logical_or.reduce(carry[cur_idx], axis=1)
        gone = np.ones(m, dtype=bool)
        gone[base_idx] = False
        rm = _id_bytes(base_ids[gone])

    total = _count(carried)
    counts = np.count_nonzero(carry, axis=0).tolist()
    comps = {}
    if total:
        sub = carry if total == n else carry[carried]
        for k, spec in enumerate(schema):
            count = counts[k]
            if not count:
                continue
            column = carry[:, k]
            # column is a subset of carried: equal counts mean every bit is set.
            mask = _EMPTY if count == total else np.packbits(sub[:, k], bitorder="little").tobytes()
            arr = current.components[spec.name]
            rows = arr if count == n else arr[column]
            comps[spec.name] = [mask, np.ascontiguousarray(rows, dtype=spec.dtype).tobytes()]
    ids = cur_ids if total == n else cur_ids[carried]
    return {"ids": _id_bytes(ids), "c": comps, "rm": rm, "n": n}


def _require(fields: Mapping, key: str) -> Any:
    if key not in fields:
        raise DeltaError(f"snapshot has no {key!r} field")
    return fields[key]


def _parse_ids(raw: Any, key: str) -> np.ndarray:
    """A strictly ascending (so unique) uint32 array from packed bytes."""
    if not isinstance(raw, BYTES_TYPES):
        raise DeltaError(f"{key!r} must be bytes, got {type(raw).__name__}")
    if len(raw) % ID_DTYPE.itemsize:
        raise DeltaError(f"{key!r} is {len(raw)} bytes, not a multiple of {ID_DTYPE.itemsize}")
    ids = np.frombuffer(raw, dtype=ID_DTYPE)
    if not _ascending(ids):
        raise DeltaError(f"{key!r} ids are not strictly ascending")
    return ids


def _lookup(haystack: np.ndarray, needles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ascending ``haystack``: (needle found?, its index there; 0 if not)."""
    if haystack.size == 0:
        return np.zeros(needles.shape[0], dtype=bool), np.zeros(needles.shape[0], dtype=np.intp)
    pos = np.searchsorted(haystack, needles)
    np.minimum(pos, haystack.shape[0] - 1, out=pos)
    return haystack[pos] == needles, pos


def _parse_component(name: Any, entry: Any, m: int, schema: Schema) -> tuple[np.ndarray | None, np.ndarray]:
    """Check one "c" entry against ``m`` message ids.

    Returns (carry mask over the message ids, or None for all; the rows).
    """
    if not isinstance(name, str) or name not in schema:
        raise DeltaError(f"unknown component {name!r}")
    spec = schema[name]
    if not isinstance(entry, (list, tuple)) or len(entry) != 2:
        raise DeltaError(f"component {name!r} must be a [mask, values] pair")
    mask, values = entry
    if not isinstance(mask, BYTES_TYPES) or not isinstance(values, BYTES_TYPES):
        raise DeltaError(f"component {name!r}: mask and values must be bytes")
    if len(values) % spec.row_bytes:
        raise DeltaError(f"component {name!r}: {len(values)} bytes of values, not rows of {spec.row_bytes}")
    count = len(values) // spec.row_bytes
    if len(mask) == 0:
        carry = None
        expected = m
    else:
        if len(mask) != (m + 7) // 8:
            raise DeltaError(f"component {name!r}: mask of {len(mask)} bytes for {m} ids")
        bits = np.unpackbits(np.frombuffer(mask, dtype=np.uint8), bitorder="little")
        if _count(bits[m:]):
            raise DeltaError(f"component {name!r}: mask bits set past the {m} ids")
        carry = bits[:m].view(bool)
        expected = int(np.count_nonzero(carry))
    if count != expected:
        raise DeltaError(f"component {name!r}: {count} rows for {expected} entities in the mask")
    if spec.dtype.kind == "b" and _count(np.frombuffer(values, dtype=np.uint8) > 1):
        raise DeltaError(f"component {name!r}: bool values must be 0 or 1")
    rows = np.frombuffer(values, dtype=spec.dtype).reshape((count,) + spec.shape)
    return carry, rows


def apply_delta(baseline: WorldState | None, tick: int, fields: Mapping, schema: Schema) -> WorldState:
    """Rebuild the world at ``tick`` from ``baseline`` and a snapshot's fields.

    ``baseline`` is the world the sender encoded against, None for a full
    snapshot; finding it (by the message's baseline tick) is the caller's job.
    ``fields`` may hold other keys of the message body; they are ignored.
    Everything is validated before anything is built, so on DeltaError the
    caller's state is untouched (the baseline is never mutated anyway).

    Raises DeltaError on any malformed or inconsistent field.
    """
    if not isinstance(fields, Mapping):
        raise DeltaError(f"snapshot fields must be a map, got {type(fields).__name__}")
    ids = _parse_ids(_require(fields, "ids"), "ids")
    rm = _parse_ids(_require(fields, "rm"), "rm")
    comps = _require(fields, "c")
    if not isinstance(comps, Mapping):
        raise DeltaError(f"'c' must be a map, got {type(comps).__name__}")
    n = _require(fields, "n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DeltaError(f"'n' must be a non-negative int, got {n!r}")
    m = ids.shape[0]
    parsed = {name: _parse_component(name, entry, m, schema) for name, entry in comps.items()}

    if baseline is None:
        if rm.size:
            raise DeltaError("'rm' in a full snapshot (no baseline)")
        is_new = np.ones(m, dtype=bool)
        base_ids = ids[:0]
        pos = np.zeros(m, dtype=np.intp)
    else:
        base_ids = baseline.ids
        in_base, pos = _lookup(base_ids, ids)
        is_new = ~in_base
        if rm.size:
            rm_found, rm_pos = _lookup(base_ids, rm)
            if _count(rm_found) != rm.shape[0]:
                raise DeltaError(f"'rm' id {int(rm[~rm_found][0])} is not in the baseline")
            also_carried, _ = _lookup(rm, ids)
            if _count(also_carried):
                raise DeltaError(f"id {int(ids[also_carried][0])} is both removed and carried")
    new_count = int(np.count_nonzero(is_new))
    if new_count:
        for spec in schema:
            if spec.name not in parsed:
                raise DeltaError(f"new entities but no component {spec.name!r}")
            carry = parsed[spec.name][0]
            if carry is not None and _count(carry[is_new]) != new_count:
                raise DeltaError(f"a new entity does not carry component {spec.name!r}")
    total = base_ids.shape[0] - rm.shape[0] + new_count
    if total != n:
        raise DeltaError(f"'n' is {n} but applying gives {total} entities")

    out: dict[str, np.ndarray] = {}
    if baseline is None:
        # Every entity is new and carries every component, so the rows are the
        # world: read-only views of the message's bytes, not copies.
        for spec in schema:
            out[spec.name] = parsed[spec.name][1] if m else np.empty((0,) + spec.shape, spec.dtype)
        return WorldState(int(tick), _frozen(ids), out)
    if not rm.size and not new_count:
        # Same entities as the baseline: patch the carried rows in place of
        # a copy, and share every component nobody changed.
        out_ids = base_ids
        for spec in schema:
            base = baseline.components[spec.name]
            if spec.name not in parsed:
                out[spec.name] = base
                continue
            carry, rows = parsed[spec.name]
            arr = base.copy()
            arr[pos if carry is None else pos[carry]] = rows
            out[spec.name] = _frozen(arr)
        return WorldState(int(tick), out_ids, out)

    keep = np.ones(base_ids.shape[0], dtype=bool)
    if rm.size:
        keep[rm_pos] = False
    survivors = base_ids[keep]
    out_ids = np.concatenate([survivors, ids[is_new]])
    out_ids.sort(kind="stable")
    surv_pos = np.searchsorted(out_ids, survivors)
    msg_pos = np.searchsorted(out_ids, ids)
    for spec in schema:
        arr = np.empty((total,) + spec.shape, dtype=spec.dtype)
        arr[surv_pos] = baseline.components[spec.name][keep]
        if spec.name in parsed:
            carry, rows = parsed[spec.name]
            arr[msg_pos if carry is None else msg_pos[carry]] = rows
        out[spec.name] = _frozen(arr)
    return WorldState(int(tick), _frozen(out_ids), out)
