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

_EMPTY = np.zeros(0, dtype=np.int64)


def shot_lag(acted_on: np.ndarray, t: int, bound: int) -> np.ndarray:
    """Each shot's lag in ticks: ``t - acted_on``, clamped to [0, bound];
    0 where the client did not say (``acted_on`` <= 0) or named a tick that
    has not happened yet."""
    lag = t - acted_on
    np.clip(lag, 0, bound, out=lag)
    lag[acted_on <= 0] = 0
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
) -> tuple[np.ndarray, np.ndarray]:
    """arena_physics.find_hits with each projectile tested against the
    players at ``t - lag``: one call per distinct lag (a room's shooters
    share a handful of round trips). Same contract and return value."""
    if not np.count_nonzero(q_lag):
        return arena_physics.find_hits(q_pos, q_owner, q_live, p_pos, p_id, p_alive, radius, method)
    q_found: list[np.ndarray] = []
    p_found: list[np.ndarray] = []
    for lag in np.unique(q_lag).tolist():
        rows = np.flatnonzero(q_lag == lag)
        pos_then, alive_then = (p_pos, p_alive) if lag == 0 else players_then(past, t - lag, p_id, p_pos, p_alive)
        q_rows, p_rows = arena_physics.find_hits(
            q_pos[rows], q_owner[rows], q_live[rows], pos_then, p_id, alive_then, radius, method
        )
        q_found.append(rows[q_rows])
        p_found.append(p_rows)
    q_rows = np.concatenate(q_found)
    if not q_rows.shape[0]:
        return _EMPTY, _EMPTY
    order = np.argsort(q_rows, kind="stable")
    return q_rows[order], np.concatenate(p_found)[order]
