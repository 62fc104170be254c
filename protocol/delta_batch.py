"""Many views' deltas against one pair of worlds, in one vectorised pass.

A room with per-player views sends each player its view of tick T as a delta
against its own view at its baseline tick B. ``encode_delta`` on each view
costs a dozen numpy calls whatever the view's size, so a 500-player fogged
room paid ~6,000 small calls per tick, their overhead and not their data
being the cost. Here the tick's changes are found once for the whole world
(which entities of T are in B, which of their components changed), and the
K views' carried rows, component masks and removals follow from the views'
(view, entity) pairs in a handful of numpy calls; each view's bytes are then
cut from shared buffers by offsets, a Python loop of slicing only.

The output is exactly ``encode_delta(current.subset(now[k]),
baseline.subset(then[k]))``, byte for byte and key for key (the wire format
is in tickroom.protocol.delta); tests/protocol/test_delta_batch.py holds it
to that on random worlds and masks.

Hidden components (``HiddenRows``): a view may see an entity but not some
of its components (a card's face, a team's resources); there the component
reads as zero bytes, as if the view's world had been cut and its hidden
rows zeroed before encode_delta. Whether such a row changed for a view then
depends on what that view saw at each tick: shown at both, the world's own
change; hidden at both, none (zero stays zero); shown at one only, whether
the shown value has a nonzero byte. The carried values of a hidden row are
zeros, so its bytes never leave in another view's payload.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tickroom.protocol.delta import ID_DTYPE, WorldState
from tickroom.protocol.schema import Schema

_EMPTY = b""


@dataclass(frozen=True)
class HiddenRows:
    """Which views see which hidden components.

    ``columns`` are the hidden components' indices in schema order (H of
    them); ``now[k, h, e]`` says view k sees component ``columns[h]`` of
    entity e of the current world (K x H x len(current.ids)), ``then`` the
    same at the baseline (K x H x len(baseline.ids)). Where a view sees the
    entity but not the component, the component is zero bytes.
    """

    columns: np.ndarray
    now: np.ndarray
    then: np.ndarray


def _nonzero_rows(rows: np.ndarray, starts: np.ndarray, widths: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """n x H: whether component ``columns[h]`` of row i has a nonzero byte."""
    out = np.zeros((rows.shape[0], columns.shape[0]), dtype=bool)
    for h, c in enumerate(columns.tolist()):
        s, w = int(starts[c]), int(widths[c])
        if w:
            out[:, h] = np.logical_or.reduce(rows[:, s : s + w] != 0, axis=1)
    return out


def _segments(keys: np.ndarray, count: int) -> np.ndarray:
    """Start offsets (length count + 1) of each key's run in ``keys``, which
    is sorted (np.nonzero's row order): run k is [out[k], out[k + 1])."""
    out = np.zeros(count + 1, dtype=np.intp)
    np.cumsum(np.bincount(keys, minlength=count), out=out[1:])
    return out


def _member(needles: np.ndarray, haystack: np.ndarray) -> np.ndarray:
    """Which of ``needles`` are in ``haystack`` (ascending)."""
    if not haystack.shape[0]:
        return np.zeros(needles.shape[0], dtype=bool)
    pos = np.searchsorted(haystack, needles)
    np.minimum(pos, haystack.shape[0] - 1, out=pos)
    return haystack[pos] == needles


def encode_deltas(
    current: WorldState,
    baseline: WorldState,
    schema: Schema,
    now: np.ndarray,
    then: np.ndarray,
    hidden: HiddenRows | None = None,
) -> list[dict]:
    """Encode K views of ``current`` against K views of ``baseline`` at once.

    ``now`` is a K x len(current.ids) boolean matrix (row k: the entities of
    view k now), ``then`` K x len(baseline.ids) (row k: the entities the
    client had in view k at the baseline). Returns K field dicts, each equal
    to ``encode_delta(current.subset(flatnonzero(now[k])),
    baseline.subset(flatnonzero(then[k])), schema)``. Both worlds must follow
    ``schema`` (not checked, as in encode_delta). With ``hidden``, view k's
    worlds are those subsets with the components it does not see zeroed.
    Pure.
    """
    k_count = now.shape[0]
    cur_ids, base_ids = current.ids, baseline.ids
    n, m = cur_ids.shape[0], base_ids.shape[0]
    starts, hollow = schema.row_starts, schema.hollow
    specs = list(schema)
    c_count = len(specs)
    cur_rows = current._rows(schema)

    # The world's changes, once: which entities of T were in B (cur_idx,
    # at base_idx there) and which of their components changed bitwise.
    if m and n:
        slot = np.searchsorted(base_ids, cur_ids)
        np.minimum(slot, m - 1, out=slot)
        cur_idx = np.flatnonzero(base_ids[slot] == cur_ids)
        base_idx = slot[cur_idx]
    else:
        cur_idx = base_idx = np.zeros(0, dtype=np.intp)
    changed = np.zeros((n, c_count), dtype=bool)
    if cur_idx.shape[0] and c_count:
        base_rows = baseline._rows(schema)
        changed[cur_idx] = np.logical_or.reduceat(cur_rows[cur_idx] != base_rows[base_idx], starts, axis=1)
        if hollow is not None:
            changed[:, hollow] = False

    # Per view, as (view, entity) pairs rather than K x entities matrices:
    # a view holds a few dozen of the room's entities, so two np.nonzero
    # calls and a few binary searches over the pairs beat a dozen passes
    # over the dense matrices. Pairs come in (view, entity) order; keyed as
    # view * n + index in current, they ascend, which the searches need.
    base_to_cur = np.full(m, -1, dtype=np.intp)
    base_to_cur[base_idx] = cur_idx
    nk, ne = np.nonzero(now)
    tk, tb = np.nonzero(then)
    now_key = nk * n + ne
    tc = base_to_cur[tb]
    still = tc >= 0  # in view then and still in the world
    then_key = tk[still] * n + tc[still]
    new = ~_member(now_key, then_key)  # arrives whole
    widths = np.array([spec.row_bytes for spec in specs], dtype=np.intp)
    if hidden is None:
        carried = new | np.logical_or.reduce(changed, axis=1)[ne]
        pair_changed = None
        shown_carried = None
    else:
        pair_changed, shown_now = _hidden_changes(
            hidden, changed, cur_rows, baseline, schema, widths, (nk, ne, tk, tb, still, then_key, now_key, new)
        )
        carried = new | np.logical_or.reduce(pair_changed, axis=1)
        shown_carried = shown_now[carried]
    kept_in_view = np.zeros(tk.shape[0], dtype=bool)
    kept_in_view[still] = _member(then_key, now_key)
    gone = ~kept_in_view  # gone from the world or from the view: in "rm"
    sizes = np.bincount(nk, minlength=k_count).tolist()

    # Carried (view, entity) pairs in view order, entities ascending within.
    kk, ee = nk[carried], ne[carried]
    ids_at = _segments(kk, k_count)
    ids_buf = np.ascontiguousarray(cur_ids[ee], dtype=ID_DTYPE).tobytes()
    rk, re_ = tk[gone], tb[gone]
    rm_at = _segments(rk, k_count)
    rm_buf = np.ascontiguousarray(base_ids[re_], dtype=ID_DTYPE).tobytes()

    # carry[j, c]: pair j carries component c (a new entity carries all).
    carry = changed[ee] if pair_changed is None else pair_changed[carried]
    carry[new[carried]] = True
    hidden_at = {} if hidden is None else {c: h for h, c in enumerate(hidden.columns.tolist())}
    value_bufs = []
    for c, spec in enumerate(specs):
        s = int(starts[c])
        values = np.ascontiguousarray(cur_rows[ee[carry[:, c]], s : s + spec.row_bytes])
        h = hidden_at.get(c)
        if h is not None and shown_carried is not None:
            values[~shown_carried[carry[:, c], h]] = 0  # what this view may not see leaves as zeros
        value_bufs.append(values.tobytes())
    return fields_by_segment(Segments(kk, carry, ids_at, ids_buf, rm_at, rm_buf, sizes), specs, value_bufs)


@dataclass(frozen=True)
class Segments:
    """K messages' carried rows laid end to end: row j belongs to message
    ``owner[j]`` (ascending) and carries component c where ``carry[j, c]``;
    message k's rows are [ids_at[k], ids_at[k + 1]), its ids those bytes of
    ``ids_buf`` (4 per row), its removals [rm_at[k], rm_at[k + 1]) of
    ``rm_buf``, and ``sizes[k]`` its world's entity count."""

    owner: np.ndarray
    carry: np.ndarray
    ids_at: np.ndarray
    ids_buf: bytes
    rm_at: np.ndarray
    rm_buf: bytes
    sizes: list[int]


def fields_by_segment(seg: Segments, specs: list, value_bufs: list[bytes]) -> list[dict]:
    """Each message's delta fields (tickroom.protocol.delta's), cut from the
    shared buffers: ``value_bufs[c]`` holds component c's carried values
    of every message, in row order. Component masks are packed for all
    messages at once (each message's bits padded to whole bytes), then the
    only per-message Python is slicing. Shared by many views of one room
    (encode_deltas) and many rooms (tickroom.protocol.delta_rooms)."""
    kk, carry, ids_at = seg.owner, seg.carry, seg.ids_at
    k_count, c_count = ids_at.shape[0] - 1, carry.shape[1]
    widths = np.array([spec.row_bytes for spec in specs], dtype=np.intp)
    totals = np.diff(ids_at)
    summed = np.zeros((kk.shape[0] + 1, c_count), dtype=np.intp)
    np.cumsum(carry, axis=0, out=summed[1:])
    counts = summed[ids_at[1:]] - summed[ids_at[:-1]]  # K x C
    # Byte ranges of message k's values of component c in value_bufs[c].
    value_from = summed[ids_at[:-1]] * widths
    value_to = (value_from + counts * widths).tolist()
    value_from = value_from.tolist()
    full = (counts == totals[:, None]).tolist()
    counts = counts.tolist()
    mask_at = np.zeros(k_count + 1, dtype=np.intp)
    np.cumsum((totals + 7) // 8, out=mask_at[1:])
    bits = np.zeros((int(mask_at[-1]) * 8, c_count), dtype=bool)
    bits[mask_at[kk] * 8 + (np.arange(kk.shape[0]) - ids_at[kk])] = carry
    packed = np.packbits(bits, axis=0, bitorder="little")
    mask_bufs = [packed[:, c].tobytes() for c in range(c_count)]

    names = [spec.name for spec in specs]
    columns = range(c_count)
    mask_at_list, ids_at_list, rm_at_list = mask_at.tolist(), ids_at.tolist(), seg.rm_at.tolist()
    ids_buf, rm_buf, sizes = seg.ids_buf, seg.rm_buf, seg.sizes
    out = []
    for k in range(k_count):
        i0, i1 = ids_at_list[k], ids_at_list[k + 1]
        comps = {}
        if i1 > i0:
            row_counts, row_full, v_from, v_to = counts[k], full[k], value_from[k], value_to[k]
            m0, m1 = mask_at_list[k], mask_at_list[k + 1]
            for c in columns:
                if row_counts[c]:
                    mask = _EMPTY if row_full[c] else mask_bufs[c][m0:m1]
                    comps[names[c]] = [mask, value_bufs[c][v_from[c] : v_to[c]]]
        out.append({
            "ids": ids_buf[i0 * 4 : i1 * 4],
            "c": comps,
            "rm": rm_buf[rm_at_list[k] * 4 : rm_at_list[k + 1] * 4],
            "n": sizes[k],
        })  # fmt: skip
    return out


def _hidden_changes(
    hidden: HiddenRows,
    changed: np.ndarray,
    cur_rows: np.ndarray,
    baseline: WorldState,
    schema: Schema,
    widths: np.ndarray,
    pairs: tuple[np.ndarray, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Per (view, entity) pair of now: which components changed for that
    view (P x C), the hidden ones judged by what the view saw at each tick,
    and which hidden components the view sees now (P x H)."""
    nk, ne, tk, tb, still, then_key, now_key, new = pairs
    columns = hidden.columns
    h_range = np.arange(columns.shape[0])
    shown_now = hidden.now[nk[:, None], h_range, ne[:, None]]
    pair_changed = changed[ne]
    old = np.flatnonzero(~new)  # in this view at the baseline too: find its pair there
    then_pair = np.flatnonzero(still)[np.searchsorted(then_key, now_key[old])]
    sn = shown_now[old]
    st = hidden.then[tk[then_pair][:, None], h_range, tb[then_pair][:, None]]
    starts = schema.row_starts
    # Per entity once (a world holds far fewer entities than views x entities pairs).
    nz_now = _nonzero_rows(cur_rows, starts, widths, columns)[ne[old]]
    nz_then = _nonzero_rows(baseline._rows(schema), starts, widths, columns)[tb[then_pair]]
    was = pair_changed[old][:, columns]
    pair_changed[old[:, None], columns[None, :]] = (sn & st & was) | (sn & ~st & nz_now) | (~sn & st & nz_then)
    return pair_changed, shown_now
