"""Arena lag compensation: shots judged against the world their shooter saw.

A client draws the other players in the past (docs/protocol.md section 9:
interpolated about two ticks behind its newest snapshot, which is itself
half a round trip old), and says in each input which tick it was looking at
(the input's ``tick``, InputBatch.ticks). A shot fired with an input that
acted on tick ``c`` and fired in step ``t`` gets a ``lag`` of ``t - c``
ticks, at most the room's rewind bound (option ``rewind``); for its whole
flight, the projectile at tick ``T`` is tested against the players as they
were at tick ``T - lag``, taken from the room's history of the world
(Game ``history_ticks`` / ``remember`` / ``past``). So the projectile meets
the target where the shooter's screen showed it, and the bound stops a
high-ping (or lying) client from reaching further back.

A player is hit only if it is alive both then and now (the present decides
whether damage can land: a player killed since is not hit again), and only
the players in the room now can be hit. A tick the history does not hold
(a room restored after a failover starts with an empty history; a game run
without a room has none) is judged in the present.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tickroom.simulation.game import PastWorlds
from tickroom.simulation.games import arena_physics
from tickroom.simulation.games.arena_physics import BROADPHASE_MIN_PAIRS

_EMPTY = np.zeros(0, dtype=np.int64)
_SLACK = 1e-6  # units: float rounding can never drop a pair the exact test accepts


def shot_lag(acted_on: np.ndarray, t: int, bound: int) -> np.ndarray:
    """Each shot's lag in ticks: ``t - acted_on``, clamped to [0, bound];
    0 where the client did not say (``acted_on`` <= 0) or named a tick that
    has not happened yet."""
    lag = np.where(acted_on > 0, t - acted_on, 0)  # ufuncs: np.clip costs 3x more
    np.minimum(lag, bound, out=lag)
    np.maximum(lag, 0, out=lag)
    return lag


def remember(players: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What a tick's history keeps of the players: copies of their ids,
    centres and hit points (the arrays a rewound hit test reads)."""
    return {"id": players["id"].copy(), "pos": players["pos"].copy(), "hp": players["hp"].copy()}


def players_then(
    past: PastWorlds, tick: int, p_id: np.ndarray, p_pos: np.ndarray, alive_now: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Today's players as they were at ``tick``: (centres, hittable mask),
    rows aligned with today's. A player absent then is not hittable; with
    no record of ``tick``, the present."""
    then = past.at(tick)
    if then is None:
        return p_pos, alive_now
    ids, pos, hp = then["id"], then["pos"], then["hp"]
    n = ids.shape[0]
    if n == p_id.shape[0] and not np.count_nonzero(ids != p_id):
        hittable = hp > 0  # the common case: the same players as today
        pos_then = pos
    else:
        if n == 0:
            return p_pos, np.zeros(p_id.shape[0], dtype=bool)
        slot = np.minimum(np.searchsorted(ids, p_id), n - 1)
        hittable = ids[slot] == p_id
        hittable &= hp[slot] > 0
        pos_then = pos[slot]
    if alive_now is not None:
        hittable &= alive_now
    return pos_then, hittable


def find_hits_rewound(
    past: PastWorlds,
    t: int,
    q_pos: np.ndarray,
    q_owner: np.ndarray,
    q_lag: np.ndarray,
    q_live: np.ndarray,
    p_pos: np.ndarray,
    p_id: np.ndarray,
    p_alive: np.ndarray | None,
    radius: float,
    method: str,
    drift: float,
) -> tuple[np.ndarray, np.ndarray]:
    """arena_physics.find_hits with each projectile tested against the
    players at ``t - lag``. Same contract and return value; ``drift`` is
    the farthest a player moves in a tick.

    A small room (all-pairs) first keeps the projectiles that could hit
    anyone: within ``radius + lag * drift`` of a player other than its
    owner now (a player cannot have moved further since; a respawn, the
    only jump, comes after a death longer than any rewind). Most ticks none
    is, and that costs what the plain test does. The rest are tested in one
    pass: the players of every lag in flight stacked (a room's shooters
    share a handful of round trips) and each projectile's distances taken
    against its own lag's. A big room (the sweep) runs the broad phase once
    per distinct lag."""
    if not np.count_nonzero(q_lag):
        return arena_physics.find_hits(q_pos, q_owner, q_live, p_pos, p_id, p_alive, radius, method)
    sweep = method == "sweep" or (method == "auto" and q_pos.shape[0] * p_pos.shape[0] > BROADPHASE_MIN_PAIRS)
    if sweep:
        used = sorted(set(q_lag.tolist()))
        return _per_lag(past, t, q_pos, q_owner, q_lag, q_live, p_pos, p_id, p_alive, radius, used)
    zq = q_pos.view(np.complex128)  # (N, 1): the rows are contiguous (x, y) pairs
    reach = q_lag * drift
    reach += radius + _SLACK
    near = np.abs(zq - p_pos.view(np.complex128)[:, 0]) <= reach[:, None]
    near &= q_owner[:, None] != p_id
    rows = np.flatnonzero(near.any(axis=1))
    if not rows.shape[0]:
        return _EMPTY, _EMPTY
    lag, live, owner = q_lag[rows], q_live[rows], q_owner[rows]
    stack, hittable = _stacked(past, t, set(lag.tolist()), p_pos, p_id, p_alive)
    # Row i: candidate i against the players as they were at t - lag[i].
    dist = np.abs(zq[rows] - stack.view(np.complex128)[:, :, 0][lag])
    hit = dist <= radius
    if not np.count_nonzero(hit):
        return _EMPTY, _EMPTY
    hit &= hittable[lag]
    hit &= live[:, None]
    hit &= owner[:, None] != p_id
    if not np.count_nonzero(hit):
        return _EMPTY, _EMPTY
    found = np.flatnonzero(hit.any(axis=1))
    dist = np.where(hit[found], dist[found], np.inf)
    return rows[found], dist.argmin(axis=1).astype(np.int64)


def _stacked(
    past: PastWorlds, t: int, used: set[int], p_pos: np.ndarray, p_id: np.ndarray, p_alive: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Today's players at t - lag for every lag 0..max(used), indexed by
    lag: centres (L, P, 2) and the hittable mask (L, P); a lag no
    projectile has gets the present (never read). When every tick used
    holds today's players (the common case: nobody joined or left within
    the bound), a handful of calls for all lags together; else lag by lag."""
    n_p = p_id.shape[0]
    # As "hp", the ids (>= 1) read as alive: whether a player is alive now
    # is p_alive's to say, below.
    present = {"id": p_id, "pos": p_pos, "hp": p_id}
    entries = [past.at(t - lag) if lag and lag in used else present for lag in range(max(used) + 1)]
    if all(e is not None and e["id"].shape[0] == n_p for e in entries):
        held = [e for e in entries if e is not None]
        if not np.count_nonzero(np.array([e["id"] for e in held]) != p_id):
            stack = np.array([e["pos"] for e in held], dtype=np.float64)
            hittable = np.array([e["hp"] for e in held]) > 0
            if p_alive is not None:
                hittable &= p_alive
            return stack, hittable
    stack = np.empty((len(entries), n_p, 2), dtype=np.float64)
    hittable = np.ones((len(entries), n_p), dtype=bool)
    for lag in range(len(entries)):
        pos_then, alive_then = players_then(past, t - lag, p_id, p_pos, p_alive) if lag in used else (p_pos, p_alive)
        stack[lag] = pos_then
        if alive_then is not None:
            hittable[lag] = alive_then
    return stack, hittable


def _per_lag(past, t, q_pos, q_owner, q_lag, q_live, p_pos, p_id, p_alive, radius, lags):
    q_found: list[np.ndarray] = []
    p_found: list[np.ndarray] = []
    for lag in lags:
        rows = np.flatnonzero(q_lag == lag)
        pos_then, alive_then = (p_pos, p_alive) if lag == 0 else players_then(past, t - lag, p_id, p_pos, p_alive)
        q_rows, p_rows = arena_physics.find_hits(
            q_pos[rows], q_owner[rows], q_live[rows], pos_then, p_id, alive_then, radius, "sweep"
        )
        q_found.append(rows[q_rows])
        p_found.append(p_rows)
    q_rows = np.concatenate(q_found)
    if not q_rows.shape[0]:
        return _EMPTY, _EMPTY
    order = np.argsort(q_rows, kind="stable")
    return q_rows[order], np.concatenate(p_found)[order]
