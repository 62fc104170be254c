"""Many rooms' deltas, each against its own baseline, in one vectorised pass.

Every room of a node encodes, each tick, its newest world against the tick
most of its clients acknowledged (tickroom.server.rooms.snapshots).
``encode_delta`` costs two dozen numpy calls whatever the world's size, so
50 rooms of a dozen entities paid ~1,200 small calls a tick, their overhead
and not their data being the cost. Here the K (current, baseline) pairs are
laid end to end, their entities keyed by (pair, id) so that one binary
search pairs every survivor of every room, one compare finds every changed
byte, and the carried rows, masks and removals of all pairs come out of a
handful of calls over the whole; each pair's bytes are then cut from shared
buffers by offsets, a Python loop of slicing only (tickroom.protocol.
delta_batch's fields_by_segment, across worlds instead of across views).

The output is exactly ``[encode_delta(current, baseline, schema) for
current, baseline in pairs]``, byte for byte and key for key (the wire
format is in tickroom.protocol.delta); tests/protocol/test_delta_rooms.py
holds it to that on random worlds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tickroom.protocol.delta import ID_DTYPE, WorldState, encode_delta
from tickroom.protocol.delta_batch import Segments, fields_by_segment
from tickroom.protocol.schema import Schema

_KEY_SHIFT = np.uint64(32)  # a pair's index above the 32 bits of an entity id
_ID_BITS = np.uint64(0xFFFFFFFF)


def _keys(worlds: Sequence[WorldState]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The worlds' ids laid end to end as uint64 (pair << 32 | id), which
    ascend since each world's ids do; the pair of each row; and the start
    offset of each world (length K + 1)."""
    sizes = np.fromiter((w.ids.shape[0] for w in worlds), dtype=np.intp, count=len(worlds))
    at = np.zeros(len(worlds) + 1, dtype=np.intp)
    np.cumsum(sizes, out=at[1:])
    pair = np.repeat(np.arange(len(worlds), dtype=np.uint64), sizes)
    keys = np.concatenate([w.ids for w in worlds]).astype(np.uint64) if int(at[-1]) else np.zeros(0, np.uint64)
    keys |= pair << _KEY_SHIFT
    return keys, pair.astype(np.intp), at


def pack_rows(worlds: Sequence[WorldState], schema: Schema) -> None:
    """Pack the rows (WorldState._rows) of every world not packed yet, in
    one concatenation per component for all of them instead of one per
    component per world; each world keeps its slice, the very bytes its own
    _rows would have made."""
    todo = [w for w in worlds if not w._packed]
    if len(todo) < 2:
        return
    at = np.zeros(len(todo) + 1, dtype=np.intp)
    np.cumsum([w.ids.shape[0] for w in todo], out=at[1:])
    n = int(at[-1])
    parts = [
        np.concatenate([w.components[spec.name] for w in todo]).view(np.uint8).reshape(n, spec.row_bytes)
        for spec in schema
    ]
    parts.append(np.zeros((n, 1), np.uint8))  # WorldState._rows's always-zero column
    rows = np.concatenate(parts, axis=1)
    bounds = at.tolist()
    for k, world in enumerate(todo):
        world._packed.append(rows[bounds[k] : bounds[k + 1]])


def _rows(worlds: Sequence[WorldState], schema: Schema) -> np.ndarray:
    return np.concatenate([w._rows(schema) for w in worlds]) if worlds else np.zeros((0, 1), np.uint8)


def encode_room_deltas(pairs: Sequence[tuple[WorldState, WorldState]], schema: Schema) -> list[dict]:
    """Encode each ``current`` against its ``baseline`` (both following
    ``schema``, not checked, as in encode_delta). Returns one field dict per
    pair, each equal to ``encode_delta(current, baseline, schema)``. Pure."""
    k_count = len(pairs)
    specs = list(schema)
    c_count = len(specs)
    if k_count < 2 or not c_count:
        return [encode_delta(current, baseline, schema) for current, baseline in pairs]
    currents = [current for current, _ in pairs]
    baselines = [baseline for _, baseline in pairs]
    pack_rows(currents + baselines, schema)
    cur_keys, cur_pair, cur_at = _keys(currents)
    base_keys, base_pair, base_at = _keys(baselines)
    n, m = cur_keys.shape[0], base_keys.shape[0]
    starts, hollow = schema.row_starts, schema.hollow

    # Survivors of every room at once: (pair, id) keys ascend on both sides.
    if m and n:
        slot = np.searchsorted(base_keys, cur_keys)
        np.minimum(slot, m - 1, out=slot)
        cur_idx = np.flatnonzero(base_keys[slot] == cur_keys)
        base_idx = slot[cur_idx]
    else:
        cur_idx = base_idx = np.zeros(0, dtype=np.intp)
    cur_rows = _rows(currents, schema)
    carry = np.ones((n, c_count), dtype=bool)  # new entities carry everything
    if cur_idx.shape[0]:
        base_rows = _rows(baselines, schema)
        changed = np.logical_or.reduceat(cur_rows[cur_idx] != base_rows[base_idx], starts, axis=1)
        if hollow is not None:
            changed[:, hollow] = False
        carry[cur_idx] = changed
    carried = np.ones(n, dtype=bool)
    carried[cur_idx] = np.logical_or.reduce(carry[cur_idx], axis=1)
    gone = np.ones(m, dtype=bool)
    gone[base_idx] = False

    # Carried rows in pair order (ids ascending within), and each pair's
    # share of them, of the removals and of each component's values.
    kk = cur_pair[carried]
    ids_at = np.zeros(k_count + 1, dtype=np.intp)
    np.cumsum(np.bincount(kk, minlength=k_count), out=ids_at[1:])
    ids_buf = (cur_keys[carried] & _ID_BITS).astype(ID_DTYPE).tobytes()
    rm_at = np.zeros(k_count + 1, dtype=np.intp)
    np.cumsum(np.bincount(base_pair[gone], minlength=k_count), out=rm_at[1:])
    rm_buf = (base_keys[gone] & _ID_BITS).astype(ID_DTYPE).tobytes()
    sub = carry[carried]
    carried_rows = cur_rows[carried]
    value_bufs = []
    for c, spec in enumerate(specs):
        s = int(starts[c])
        value_bufs.append(np.ascontiguousarray(carried_rows[sub[:, c], s : s + spec.row_bytes]).tobytes())
    sizes = np.diff(cur_at).tolist()
    return fields_by_segment(Segments(kk, sub, ids_at, ids_buf, rm_at, rm_buf, sizes), specs, value_bufs)
