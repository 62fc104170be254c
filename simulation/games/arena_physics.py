"""Arena collision and damage, vectorised.

Kept apart from the game rules so the two collision strategies can be tested
against each other on arbitrary layouts without building a game.

Two ways to find which projectile hits which player:

- all-pairs: one (projectiles x players) distance matrix. A dozen numpy calls
  whatever the sizes, which is what a room of 10 wants (numpy costs ~1 us a
  call, so the call count, not the arithmetic, is the price); but the work
  grows as P*N: ~0.7 ms for 100 players x 900 projectiles.
- sweep: players sorted by x, each projectile looks up only the players whose
  x lies within the hit radius (np.searchsorted), and the candidate pairs are
  expanded with np.repeat. O((N + P) log P + candidates), ~25 numpy calls:
  slower than all-pairs for a small room, ~0.15 ms at 100 x 900.

Both compute distances with the very same float operation (np.abs of a
complex difference) and break ties the same way (nearest player first, then
the lowest player row), so they return identical hits; tests/simulation
checks that on random layouts.
"""

from __future__ import annotations

import numpy as np

#: Above this many (projectile, player) pairs the sweep beats all-pairs.
#: Measured whole arena steps (docs/benchmarks.md): 16 x 250 pairs, all-pairs
#: 120 us vs sweep 131 us; 16 x 375, 164 vs 153; 16 x 750, 352 vs 233.
BROADPHASE_MIN_PAIRS = 6_000  # pairs
#: The sweep's x window is widened by this much so float rounding of
#: ``qx +- radius`` can never drop a pair the exact distance test accepts;
#: extra candidates are harmless, they are filtered by that same test.
SWEEP_SLACK = 1e-6  # units

_EMPTY = np.zeros(0, dtype=np.int64)


def _complex(pos: np.ndarray) -> np.ndarray:
    """An (N, 2) float64 array of (x, y) seen as N complex numbers x + iy,
    without a copy when its rows are contiguous pairs (row slices of a wider
    matrix are fine): one broadcast subtraction and one np.abs then give
    every distance, fewer numpy calls than squaring coordinates apart."""
    if pos.dtype != np.float64 or pos.strides[-1] != 8:
        pos = np.ascontiguousarray(pos, dtype=np.float64)
    return pos.view(np.complex128)[:, 0]


def find_hits_all_pairs(q_pos, q_owner, q_live, p_pos, p_id, p_alive, radius):
    """Hits by testing every (projectile, player) pair.

    Args: projectile positions (N, 2), owner ids (N,), live mask (N,) or None
    for all; player positions (P, 2), ids (P,), alive mask (P,) or None for
    all; hit radius (player radius + projectile radius). A projectile never
    hits its owner, nor a dead player, and hits at most one player: the
    nearest, ties to the lowest player row.

    Returns (q_rows, p_rows), int64, ascending by q_rows.
    """
    dist = np.abs(_complex(q_pos)[:, None] - _complex(p_pos))
    hit = dist <= radius
    # Most steps touch nothing: leave before the masks and the argmin.
    if not np.count_nonzero(hit):
        return _EMPTY, _EMPTY
    if p_alive is not None:
        hit &= p_alive
    if q_live is not None:
        hit &= q_live[:, None]
    hit &= q_owner[:, None] != p_id
    if not np.count_nonzero(hit):
        return _EMPTY, _EMPTY
    q_rows = np.flatnonzero(hit.any(axis=1))
    dist = np.where(hit[q_rows], dist[q_rows], np.inf)
    return q_rows, dist.argmin(axis=1).astype(np.int64)


def find_hits_sweep(q_pos, q_owner, q_live, p_pos, p_id, p_alive, radius):
    """Hits by a sort-and-sweep broad phase on x; same contract and results
    as find_hits_all_pairs."""
    n_q, n_p = q_pos.shape[0], p_pos.shape[0]
    cand_p = np.flatnonzero(p_alive) if p_alive is not None else np.arange(n_p)
    cand_q = np.flatnonzero(q_live) if q_live is not None else np.arange(n_q)
    if cand_p.shape[0] == 0 or cand_q.shape[0] == 0:
        return _EMPTY, _EMPTY
    zq, zp = _complex(q_pos), _complex(p_pos)
    by_x = cand_p[np.argsort(zp.real[cand_p], kind="stable")]
    xs = zp.real[by_x]
    qx = zq.real[cand_q]
    window = radius + SWEEP_SLACK
    lo = np.searchsorted(xs, qx - window, side="left")
    counts = np.searchsorted(xs, qx + window, side="right") - lo
    ends = np.cumsum(counts)
    total = int(ends[-1])
    if total == 0:
        return _EMPTY, _EMPTY
    # Expand each projectile's run by_x[lo:lo + count] into explicit pairs:
    # pair k of the run starting at output position s is by_x[lo + k], and
    # k = output position - s, so one repeat of (lo - s) plus an arange.
    at = np.repeat(lo - (ends - counts), counts)
    at += np.arange(total)
    qi = np.repeat(cand_q, counts)
    pj = by_x[at]
    dist = np.abs(zq[qi] - zp[pj])  # the same operation as all-pairs
    ok = (dist <= radius) & (q_owner[qi] != p_id[pj])
    if not np.count_nonzero(ok):
        return _EMPTY, _EMPTY
    qi, pj, dist = qi[ok], pj[ok], dist[ok]
    # Per projectile: nearest first, then lowest player row (as argmin does).
    order = np.lexsort((pj, dist, qi))
    qi, pj = qi[order], pj[order]
    first = np.ones(qi.shape[0], dtype=bool)
    first[1:] = qi[1:] != qi[:-1]
    return qi[first].astype(np.int64), pj[first].astype(np.int64)


def find_hits(q_pos, q_owner, q_live, p_pos, p_id, p_alive, radius, method="auto"):
    """Dispatch to all-pairs or the sweep; method is "auto", "all_pairs" or
    "sweep". "auto" sweeps above BROADPHASE_MIN_PAIRS pairs."""
    if method == "auto":
        pairs = q_pos.shape[0] * p_pos.shape[0]
        method = "sweep" if pairs > BROADPHASE_MIN_PAIRS else "all_pairs"
    if method == "sweep":
        return find_hits_sweep(q_pos, q_owner, q_live, p_pos, p_id, p_alive, radius)
    if method == "all_pairs":
        return find_hits_all_pairs(q_pos, q_owner, q_live, p_pos, p_id, p_alive, radius)
    raise ValueError(f"unknown collision method {method!r}")


def resolve_hits(q_ids, q_rows, p_rows, hp, damage):
    """Work out what each hit does, processing hits in projectile id order.

    Several projectiles may strike one player in the same step. Taking them
    in projectile id order (older shots first), each deals
    min(damage, hp left); the one that brings hp to 0 gets the kill, and any
    later one finds a dead body: it is absorbed without effect (``landed`` is
    False). Vectorised: a hit's rank among the hits on the same target, times
    ``damage``, is the damage dealt to that target before it.

    Args: projectile ids (N,), hit pairs (q_rows, p_rows) as from find_hits,
    player hp (P,), damage per hit.

    Returns (q_rows, p_rows, landed, dealt, killed), reordered by projectile
    id; dealt is meaningful where landed.
    """
    order = np.argsort(q_ids[q_rows], kind="stable")
    q_rows, p_rows = q_rows[order], p_rows[order]
    n = q_rows.shape[0]
    by_target = np.argsort(p_rows, kind="stable")  # keeps id order per target
    target = p_rows[by_target]
    index = np.arange(n)
    first = np.ones(n, dtype=bool)
    first[1:] = target[1:] != target[:-1]
    group_start = np.maximum.accumulate(np.where(first, index, 0))
    rank = np.empty(n, dtype=np.int64)
    rank[by_target] = index - group_start
    hp_before = hp[p_rows] - rank * damage
    landed = hp_before > 0
    dealt = np.minimum(hp_before, damage)
    killed = landed & (hp_before <= damage)
    return q_rows, p_rows, landed, dealt, killed
