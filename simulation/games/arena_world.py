"""Arena world layout: how players and projectiles sit in numpy arrays, how
they are checkpointed, and how they are turned into the networked view.

Numbers first: a small room's step costs what its numpy calls cost (~1-2 us
each, whatever the array size), so the layout is chosen to need few calls.

Players live in a dict of parallel arrays, dense and in ascending id order
(joins append a larger id, leaves compress, both rare). Lookups by id are a
searchsorted.

Projectiles are born and die nearly every tick, so they live in a fixed-
capacity pool of two matrices, floats (x0, y0, aim, vx, vy, x, y) and ints
(id, owner, expire_at, t0, lag), whose first ``n`` rows are the projectiles
in flight, in ascending id order. A shot is written straight into the rows
after ``n`` (no allocation, no concatenation) and the dead are squeezed out
with one boolean-mask copy per matrix, which keeps the id order.

Projectiles are sent once. A projectile's networked components never change
after its spawn: ``pos`` is its origin (its shooter's centre), ``vel`` its
displacement per tick and ``t0`` the tick before the one it was fired in
(a shot flies its first step in its fire tick, so it is "at its origin at
t0"); the generic delta carries it whole when it appears and never again,
and a client extrapolates

    position at tick T = pos / POS_SCALE + (T - t0) * vel / VEL_SCALE

and gets exactly the server's position: the origin is rounded to the 1/32
grid and the velocity to the 1/512 grid when the shot is fired, and the
server then adds the velocity once per tick, so every position it ever
holds is a multiple of 1/512 below 2^11 in magnitude, which float64 (and a
JavaScript number) represents exactly, by either formula.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tickroom.simulation.game import View, Visibility

POS_SCALE = 32  # wire units per unit: int16 reaches 1023.97 units
VEL_SCALE = 512  # wire units per unit per tick: int16 reaches 63.99 units a tick (40 at 1 Hz)
AIM_SCALE = 40  # wire units per radian: +-pi -> +-126 fits an int8
MAX_SCORE = 32767  # the wire score is an int16

#: The networked components (Game.components), all little-endian.
COMPONENTS: Mapping[str, Mapping[str, Any]] = {
    "kind": {"dtype": "|u1", "shape": []},  # 0 player, 1 projectile
    "pos": {"dtype": "<i2", "shape": [2], "scale": POS_SCALE},
    "aim": {"dtype": "|i1", "shape": [], "scale": AIM_SCALE},  # projectiles: flight direction
    "hp": {"dtype": "|u1", "shape": []},  # 0 while dead and for projectiles
    "score": {"dtype": "<i2", "shape": []},  # 0 for projectiles
    "owner": {"dtype": "<u4", "shape": []},  # projectiles: shooter; players: themselves
    # Projectiles: displacement per tick and the tick at which they were at
    # ``pos`` (the module docstring's formula); players: 0 and 0.
    "vel": {"dtype": "<i2", "shape": [2], "scale": VEL_SCALE},
    "t0": {"dtype": "<u4", "shape": []},
}

# Per-entity arrays as state() shows them: name -> (dtype, row shape).
PLAYER_FIELDS = {
    "id": (np.uint32, ()),
    "pos": (np.float64, (2,)),  # units
    "step": (np.float64, (2,)),  # displacement per tick from the held stick, units
    "aim": (np.float64, ()),  # radians
    "trigger": (np.bool_, ()),  # fire button held, as of the newest input
    "fire": (np.bool_, ()),  # fire wanted at the next step
    "next_fire": (np.int64, ()),  # first tick the player may fire again
    "hp": (np.int64, ()),  # hit points; 0 while dead
    "respawn_at": (np.int64, ()),  # tick of respawn; NEVER while alive
    "score": (np.int64, ()),  # kills
    "aim_tick": (np.int64, ()),  # the tick the newest input acted on (lag compensation); 0: not said
}
PROJECTILE_FIELDS = {
    "id": (np.uint32, ()),
    "pos": (np.float64, (2,)),  # units, now
    "vel": (np.float64, (2,)),  # displacement per tick, units, on the 1/VEL_SCALE grid
    "aim": (np.float64, ()),  # direction of flight, radians
    "origin": (np.float64, (2,)),  # units, on the 1/POS_SCALE grid: where it was at t0
    "owner": (np.uint32, ()),  # shooter's entity id
    "expire_at": (np.int64, ()),  # first tick the projectile is gone
    "t0": (np.int64, ()),  # the tick before it was fired: at t0 + k it is at origin + k * vel
    "lag": (np.int64, ()),  # ticks its hits are judged in the past (lag compensation)
}
# Where each projectile field sits in the pool's matrices.
# The first five float columns are the networked ones, in build_view's order.
_Q_FLOAT: dict[str, int | slice] = {"origin": slice(0, 2), "aim": 2, "vel": slice(3, 5), "pos": slice(5, 7)}
_Q_INT: dict[str, int] = {"id": 0, "owner": 1, "expire_at": 2, "t0": 3, "lag": 4}
Q_FLOATS, Q_INTS = 7, 5  # columns of the pool's matrices


def empty_players() -> dict[str, np.ndarray]:
    return {k: np.zeros((0,) + shape, dtype=dt) for k, (dt, shape) in PLAYER_FIELDS.items()}


def players_from_columns(columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Player arrays from state() columns, copied, reshaped and cast to the
    layout (a checkpoint codec may hand back flat arrays or other dtypes)."""
    return {k: np.array(columns[k], dtype=dt).reshape((-1,) + shape) for k, (dt, shape) in PLAYER_FIELDS.items()}


class ProjectilePool:
    """Projectiles in flight: rows [0, n) of two fixed-capacity matrices."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.f = np.zeros((capacity, Q_FLOATS), dtype=np.float64)  # x0, y0, aim, vx, vy, x, y
        self.i = np.zeros((capacity, Q_INTS), dtype=np.int64)  # id, owner, expire_at, t0, lag
        self.n = 0

    def reserve(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to k fresh rows (fewer when the pool is nearly full) as
        (floats, ints) views for the caller to fill; they count from now on."""
        n = self.n
        k = min(k, self.capacity - n)
        self.n = n + k
        return self.f[n : n + k], self.i[n : n + k]

    @staticmethod
    def launch(
        f: np.ndarray, i: np.ndarray, pos: np.ndarray, aim: np.ndarray, speed: float | np.ndarray, t0: int | np.ndarray
    ) -> None:
        """Fill reserved rows (f, i from reserve()) with shots from ``pos``
        along ``aim`` at ``speed`` units a tick, at their origin at tick
        ``t0``: origin on the wire's 1/POS_SCALE grid and velocity on its
        1/VEL_SCALE grid, so that a client's extrapolation is exact. The
        caller fills id, owner, expire_at and lag. ``speed`` may be a
        column and ``t0`` a vector, one per row (rooms stepped together)."""
        origin = f[:, 0:2]
        np.multiply(pos, POS_SCALE, out=origin)
        np.rint(origin, out=origin)
        origin /= POS_SCALE
        f[:, 5:7] = origin
        f[:, 2] = aim
        vel = f[:, 3:5]
        np.cos(aim, out=vel[:, 0])
        np.sin(aim, out=vel[:, 1])
        vel *= speed * VEL_SCALE
        np.rint(vel, out=vel)
        vel /= VEL_SCALE
        i[:, 3] = t0

    def keep(self, mask: np.ndarray, m: int) -> None:
        """Keep only the rows where mask (length n) is set; m = its count."""
        n = self.n
        self.f[:m] = self.f[:n][mask]
        self.i[:m] = self.i[:n][mask]
        self.n = m

    def columns(self) -> dict[str, np.ndarray]:
        """Copies of the live rows, one array per PROJECTILE_FIELDS entry."""
        f, i = self.f[: self.n], self.i[: self.n]
        cols: dict[str, np.ndarray] = {k: f[:, s].copy() for k, s in _Q_FLOAT.items()}
        cols.update({k: i[:, s].copy() for k, s in _Q_INT.items()})
        return {k: cols[k].astype(dt, copy=False) for k, (dt, _) in PROJECTILE_FIELDS.items()}

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any], capacity: int) -> ProjectilePool:
        """Raises ValueError when the columns disagree on length or exceed
        the capacity."""
        cols = {
            k: np.asarray(columns[k], dtype=dt).reshape((-1,) + shape) for k, (dt, shape) in PROJECTILE_FIELDS.items()
        }
        lengths = {a.shape[0] for a in cols.values()}
        if len(lengths) != 1 or max(lengths) > capacity:
            raise ValueError("projectile columns of unequal length or over capacity")
        pool = cls(capacity)
        pool.n = n = lengths.pop()
        for k, s in _Q_FLOAT.items():
            pool.f[:n, s] = cols[k]
        for k, s in _Q_INT.items():
            pool.i[:n, s] = cols[k]
        return pool


def upgrade_state_v1(state: Mapping[str, Any]) -> dict[str, Any]:
    """A version-1 arena state (before projectiles were sent once) as a
    version 2 one, for a checkpoint written by the previous release: no
    input has said its tick yet, and each projectile in flight starts again
    from where it is now, moved onto the wire's grids (by under 1/64 unit)."""
    new = dict(state)
    new["p_aim_tick"] = np.zeros(len(state["names"]), dtype=np.int64)
    pos = np.asarray(state["q_pos"], dtype=np.float64).reshape(-1, 2)
    origin = np.rint(pos * POS_SCALE) / POS_SCALE
    vel = np.asarray(state["q_vel"], dtype=np.float64).reshape(-1, 2)
    new.update(
        q_pos=origin,
        q_origin=origin.copy(),
        q_vel=np.rint(vel * VEL_SCALE) / VEL_SCALE,
        q_t0=np.full(pos.shape[0], int(state["tick"]), dtype=np.int64),
        q_lag=np.zeros(pos.shape[0], dtype=np.int64),
    )
    return new


def build_view(p: Mapping[str, np.ndarray], q: ProjectilePool) -> View:
    """Players and projectiles in ascending id order, in COMPONENTS' dtypes.

    Every array is filled players first, then projectiles; that is already
    id order unless a player joined after some live projectile was fired,
    and only then is an argsort paid for.
    """
    n_p, n_q = p["id"].shape[0], q.n
    n = n_p + n_q
    qf, qi = q.f[:n_q], q.i[:n_q]
    ids = np.empty(n, dtype="<u4")
    ids[:n_p] = p["id"]
    ids[n_p:] = qi[:, 0]
    owner = np.empty(n, dtype="<u4")
    owner[:n_p] = p["id"]
    owner[n_p:] = qi[:, 1]
    kind = np.zeros(n, dtype="|u1")
    kind[n_p:] = 1
    hp = np.zeros(n, dtype="|u1")
    hp[:n_p] = p["hp"]
    score = np.zeros(n, dtype="<i2")
    score[:n_p] = p["score"]
    # pos, aim and vel scaled and rounded together; projectiles' first five
    # float columns are exactly (x0, y0, aim, vx, vy): on the wire a
    # projectile is its origin, which stays put (sent once, see the
    # docstring), and its velocity, on the grid already (rint keeps it).
    fx = np.empty((n, 5), dtype=np.float64)
    fx[:n_p, :2] = p["pos"]
    fx[:n_p, 2] = p["aim"]
    fx[:n_p, 3:] = 0.0
    fx[n_p:] = qf[:, :5]
    pos, aim, vel = wire_floats(fx)
    t0 = np.zeros(n, dtype="<u4")
    t0[n_p:] = qi[:, 3]
    comps = {"kind": kind, "pos": pos, "aim": aim, "hp": hp, "score": score, "owner": owner, "vel": vel, "t0": t0}
    if n_p and n_q and p["id"][-1] > qi[0, 0]:
        order = np.argsort(ids)
        ids = ids[order]
        comps = {k: a[order] for k, a in comps.items()}
    return View(ids=ids, components=comps)


def wire_floats(fx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, aim, vx, vy) rows in units, scaled in place and rounded to
    the wire's pos, aim and vel (COMPONENTS' dtypes)."""
    fx *= _VIEW_SCALE
    np.rint(fx, out=fx)
    return fx[:, :2].astype("<i2"), fx[:, 2].astype("|i1"), fx[:, 3:].astype("<i2")


_VIEW_SCALE = np.array([POS_SCALE, POS_SCALE, AIM_SCALE, VEL_SCALE, VEL_SCALE], dtype=np.float64)


def wire_positions(view: View, tick: int) -> np.ndarray:
    """Every entity's centre at ``tick`` in wire units (1/POS_SCALE unit),
    float64: a player's ``pos``, a projectile's extrapolated position (the
    module docstring's formula, exact: multiples of 1/16 wire unit)."""
    comps = view.components
    pos = np.asarray(comps["pos"], dtype=np.float64)
    flying = np.flatnonzero(comps["kind"] != 0)
    if flying.shape[0]:
        age = tick - np.asarray(comps["t0"], dtype=np.float64)[flying]
        vel = np.asarray(comps["vel"], dtype=np.float64)[flying]
        pos[flying] += vel * (age * (POS_SCALE / VEL_SCALE))[:, None]
    return pos


def fog_visibility(view: View, radius: float, tick: int) -> Visibility:
    """Each player (an entity of kind 0 in ``view``) sees the entities whose
    centre is within ``radius`` units of its own, plus its own (owner == the
    player: its avatar and its projectiles). Worked out on the positions a
    client computes from the view at ``tick`` (wire_positions), so what a
    player sees is decided on exactly what it is sent.

    A uniform grid of cells one radius wide, not all pairs: each player's
    candidates are the entities of its 3 x 3 cells, found by one sort of the
    entities by cell and two binary searches per neighbour cell, and only
    those pairs are measured (in float32, the same arithmetic as a full
    players x entities distance matrix, so the same answer; see
    tests/simulation/test_arena_fog.py). In a 500-player room of 1,000 units
    with a 60-unit radius that is ~7,000 pairs instead of 700,000.
    """
    ids = view.ids
    comps = view.components
    players = comps["kind"] == 0
    pos = wire_positions(view, tick)
    viewer_ids = ids[players]
    n, p = ids.shape[0], viewer_ids.shape[0]
    mask = np.zeros((p, n), dtype=bool)
    if not p:
        return Visibility(players=viewer_ids.astype(np.int64), mask=mask)
    r = np.float32(radius * POS_SCALE)
    # Cells a little over the radius wide (integer wire units): any entity
    # within the radius is in the viewer's cell or a neighbour. A row of
    # cells has two spare columns, so a neighbour's key never wraps into
    # the next row.
    cell = int(r) + 1
    cells = (np.floor(pos).astype(np.int64) + 32768) // cell + 1
    stride = 65535 // cell + 3
    key = cells[:, 0] * stride + cells[:, 1]
    order = np.argsort(key, kind="stable")
    sorted_keys = key[order]
    around = (np.arange(-1, 2)[:, None] * stride + np.arange(-1, 2)[None, :]).ravel()
    wanted = (key[players][:, None] + around[None, :]).ravel()  # p x 9 cells, viewer-major
    lo = np.searchsorted(sorted_keys, wanted, side="left")
    counts = np.searchsorted(sorted_keys, wanted, side="right") - lo
    # Every (viewer, candidate) pair: the runs [lo, lo + count) laid end to end.
    run_starts = np.cumsum(counts) - counts
    candidate = order[np.arange(int(run_starts[-1] + counts[-1])) - np.repeat(run_starts - lo, counts)]
    viewer = np.repeat(np.arange(p * 9) // 9, counts)
    fpos = pos.astype(np.float32)  # exact: at most 2^20 sixteenths of a wire unit
    gap = fpos[np.flatnonzero(players)][viewer] - fpos[candidate]
    gap *= gap
    near = gap[:, 0] + gap[:, 1] <= r * r
    mask[viewer[near], candidate[near]] = True
    # Its own: the viewer whose id is the entity's owner, by binary search.
    by_id = np.argsort(viewer_ids, kind="stable")
    owner = comps["owner"]
    slot = np.minimum(np.searchsorted(viewer_ids, owner, sorter=by_id), p - 1)
    row = by_id[slot]
    own = viewer_ids[row] == owner
    mask[row[own], np.flatnonzero(own)] = True
    return Visibility(players=viewer_ids.astype(np.int64), mask=mask)
