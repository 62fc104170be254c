"""Arena rooms stepped together: one pass of numpy calls for many rooms.

A room of 10 pays ~40 numpy calls of 1-3 us each per step (the arena's
module docstring), whatever its size; a node runs dozens of such rooms on
one tick grid. Here the rooms' arrays are laid end to end, players room by
room and projectiles room by room, with a room index column, and the step
runs once over all of them; then each room gets its rows back. The result
is bit-identical to each room's own step(): every per-row operation is the
one step() does (the same ufunc on the same float64 values, e.g. the
movement ``pos += step * alive`` that step() uses when someone is dead,
which for a living row adds exactly ``step``), and hits are found among the
pairs of one room only, with arena_physics' distance (np.abs of a complex
difference) and tie-break (nearest, then lowest player row).

What the batch leaves to step(): a room with a respawn due this tick (it
draws from the room's RNG, one room at a time), with lag compensation in
use (the room's history is its own), with a collision option other than
"auto", crowded enough that step() would use the sweep broad phase
(the batch tests all pairs of a room), or of more than MAX_PLAYERS
players. Those rooms are stepped alone, in the same call; rooms are
independent, so the order does not matter.

All or nothing: every batched result is computed into fresh arrays before
any room is written; the rooms stepped alone are stepped after that with a
copy of what step() may change, put back if one of them raises. Only then
are the batched results written back (assignments that cannot fail): the
players' moved arrays become slices of the concatenated ones (disjoint;
join, leave and state() copy), the projectile pools get their rows copied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

from tickroom.simulation.games import arena_physics
from tickroom.simulation.games.arena_world import MAX_SCORE, Q_FLOATS, Q_INTS, ProjectilePool

if TYPE_CHECKING:
    from tickroom.simulation.games.arena import Arena


#: A room with more players is stepped alone: its own step's calls are paid
#: for by many, and it would widen every room's row of the hit table
#: (_find_hits) to its size.
MAX_PLAYERS = 32  # players


@dataclass(frozen=True)
class Rules:
    """What the batch needs of arena's rules (passed in by Arena, which
    imports this module)."""

    player_radius: float  # units: the walls' clamp
    hit_radius: float  # units, centre to centre
    damage: int  # hit points per hit
    #: The step() the batch reproduces: a game whose class overrides it is stepped alone.
    step: Callable[[Any], list[list[Any]]]


def step_together(games: Sequence[Arena], rules: Rules) -> list[list[list[Any]]]:
    """Step every game one tick, as ``[g.step() for g in games]`` would;
    each game's events, in the order of ``games``. Raises ValueError when a
    game appears twice; if it raises, no game has been changed."""
    if len({id(g) for g in games}) != len(games):
        raise ValueError("step_together: the same game twice in one list")
    suits = [batchable(g, rules) for g in games]
    batched = [g for g, ok in zip(games, suits, strict=True) if ok]
    alone = [g for g, ok in zip(games, suits, strict=True) if not ok]
    plan = _Plan(batched, rules) if batched else None
    events: dict[int, list[list[Any]]] = _step_alone(alone)
    if plan is not None:
        events.update(plan.write_back())
    return [events[id(g)] for g in games]


def batchable(g: Arena, rules: Rules) -> bool:
    """Whether the batch steps ``g`` itself at its next step (the module
    docstring says when it leaves a game to its own step())."""
    n_players = g._p["id"].shape[0]
    return (
        type(g).step is rules.step
        and g._collision == "auto"
        and not g._rewinds()
        and not (n_players and g.tick + 1 >= g._next_respawn)
        # step() tests all pairs up to this many, counting this tick's shots.
        and (g._q.n + n_players) * n_players <= arena_physics.BROADPHASE_MIN_PAIRS
        and n_players <= MAX_PLAYERS
    )


def _step_alone(games: list[Arena]) -> dict[int, list[list[Any]]]:
    """step() each game; if one raises, put every one of them back as it
    was and re-raise."""
    saved = [_Saved(g) for g in games]
    events: dict[int, list[list[Any]]] = {}
    try:
        for g in games:
            events[id(g)] = g.step()
    except BaseException:
        for s in saved:
            s.put_back()
        raise
    return events


class _Saved:
    """A copy of everything Arena.step() may change in one game."""

    def __init__(self, g: Arena) -> None:
        self.game = g
        self.scalars = (g.tick, g._next_id, g._n_dead, g._next_respawn)
        self.players = {k: a.copy() for k, a in g._p.items()}
        q = g._q
        self.n, self.f, self.i = q.n, q.f[: q.n].copy(), q.i[: q.n].copy()
        self.rng = g.rng.bit_generator.state

    def put_back(self) -> None:
        g = self.game
        g.tick, g._next_id, g._n_dead, g._next_respawn = self.scalars
        g._p = self.players
        q = g._q
        q.f[: self.n] = self.f
        q.i[: self.n] = self.i
        q.n = self.n
        g.rng.bit_generator.state = self.rng


def _offsets(counts: np.ndarray) -> np.ndarray:
    """Start of each segment of lengths ``counts`` laid end to end, plus the total at the end."""
    out = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


class _Plan:
    """One batched step of ``games``: computed into fresh arrays only, at
    construction; write_back() then hands each game its rows."""

    def __init__(self, games: list[Arena], rules: Rules) -> None:
        self.games = games
        n_rooms = len(games)
        players = [g._p for g in games]
        pools = [g._q for g in games]
        # Per-room scalars; their per-row copies are one fancy index each.
        self.ints = ints = np.fromiter(
            chain.from_iterable(
                (g.tick + 1, g._cooldown_ticks, g._ttl_ticks, g._respawn_ticks, g._next_id, q.n, q.capacity)
                for g, q in zip(games, pools, strict=True)
            ),
            dtype=np.int64,
            count=7 * n_rooms,
        ).reshape(n_rooms, 7)
        t, q_n = ints[:, 0], ints[:, 5]
        floats = np.array([(g._size, g._projectile_step) for g in games], dtype=np.float64).reshape(n_rooms, 2)
        size = floats[:, 0]
        self.counts = counts = np.array([p["id"].shape[0] for p in players], dtype=np.int64)
        self.p_start = p_start = _offsets(counts)
        ids = np.concatenate([p["id"] for p in players])
        pos = np.concatenate([p["pos"] for p in players])
        step = np.concatenate([p["step"] for p in players])
        fire = np.concatenate([p["fire"] for p in players])
        trigger = np.concatenate([p["trigger"] for p in players])
        next_fire = np.concatenate([p["next_fire"] for p in players])
        hp = np.concatenate([p["hp"] for p in players])
        if {a.shape[0] for a in (ids, pos, step, fire, trigger, next_fire, hp)} != {int(p_start[-1])}:
            raise ValueError("step_together: a game's player arrays have unequal lengths")
        room = np.repeat(np.arange(n_rooms), counts)  # each player row's room

        # -- players: move, clamp to the walls, fire (Arena.step's order) --
        alive = hp > 0
        pos += step * alive[:, None]  # a living row adds exactly its step, as step() does
        np.maximum(pos, rules.player_radius, out=pos)
        np.minimum(pos, (size - rules.player_radius)[room][:, None], out=pos)
        shooting = next_fire <= t[room]
        shooting &= fire
        shooting &= alive
        shooters = np.flatnonzero(shooting)
        shots = np.zeros(n_rooms, dtype=np.int64)
        if shooters.shape[0]:
            new_f, new_i, shots = _fire(shooters, room, pos, ids, next_fire, players, ints, floats[:, 1])

        # -- projectiles: each room's pool rows, then its new shots --
        q_count = q_n + shots
        q_start = _offsets(q_count)
        f = np.concatenate([q.f[: q.n] for q in pools])
        i = np.concatenate([q.i[: q.n] for q in pools])
        if shooters.shape[0]:
            # Rooms stay contiguous and ids ascend within each: a room's
            # old rows move down by the shots of the rooms before it, its
            # shots go after its old rows.
            both_f = np.empty((int(q_start[-1]), f.shape[1]), dtype=np.float64)
            both_i = np.empty((int(q_start[-1]), i.shape[1]), dtype=np.int64)
            shots_before = _offsets(shots)[:-1]
            old_at = np.arange(f.shape[0]) + np.repeat(shots_before, q_n)
            new_at = np.arange(new_f.shape[0]) + np.repeat(q_start[:-1] + q_n - shots_before, shots)
            both_f[old_at], both_i[old_at] = f, i
            both_f[new_at], both_i[new_at] = new_f, new_i
            f, i = both_f, both_i
        q_room = np.repeat(np.arange(n_rooms), q_count)
        qpos = f[:, 5:7]
        qpos += f[:, 3:5]  # exact: every term is on the 1/VEL_SCALE grid
        live = i[:, 2] > t[q_room]
        inside = qpos >= 0.0
        inside &= qpos <= size[q_room][:, None]
        live &= inside[:, 0]
        live &= inside[:, 1]
        q_rows, p_rows = _find_hits(
            qpos, i[:, 1], live, q_room, pos, ids, alive, room, counts, p_start, rules.hit_radius
        )
        self.events: dict[int, list[list[Any]]] = {}  # by room, for the rooms with hits
        self.hp: np.ndarray | None = None
        self.kills: np.ndarray | None = None
        if q_rows.shape[0]:
            self._hit(q_rows, p_rows, i, q_room, room, hp, ids, players, rules.damage)
            live[q_rows] = False
        # Everything is computed: what write_back() needs.
        self.shots, self.pos, self.fire, self.next_fire = shots, pos, trigger, next_fire
        self.kept = np.bincount(q_room[live], minlength=n_rooms)
        self.kept_f, self.kept_i = f[live], i[live]

    def _hit(
        self,
        q_rows: np.ndarray,
        p_rows: np.ndarray,
        i: np.ndarray,
        q_room: np.ndarray,
        room: np.ndarray,
        hp: np.ndarray,
        ids: np.ndarray,
        players: list[dict[str, np.ndarray]],
        damage: int,
    ) -> None:
        """Damage, kills and scores of the hits (Arena._hit over all rooms):
        resolved in global projectile row order, which is room by room and,
        within a room, projectile id order."""
        q_rows, p_rows, landed, dealt, killed = arena_physics.resolve_hits(
            np.arange(i.shape[0]), q_rows, p_rows, hp, damage
        )
        np.subtract.at(hp, p_rows[landed], dealt[landed])
        self.hp = hp
        shooters = i[q_rows, 1]
        if np.count_nonzero(killed):
            dead, dead_room = p_rows[killed], room[p_rows[killed]]
            respawn_at = np.concatenate([p["respawn_at"] for p in players])
            respawn_at[dead] = self.ints[dead_room, 0] + self.ints[dead_room, 3]
            # The killer by (room, id) among all players (ids ascend within
            # a room, rooms are contiguous); it may have left.
            key = (room << 32) | ids
            killers = (dead_room << 32) | shooters[killed]
            slot = np.searchsorted(key, killers)
            slot_ok = slot < key.shape[0]
            slot_ok[slot_ok] = key[slot[slot_ok]] == killers[slot_ok]
            score = np.concatenate([p["score"] for p in players])
            np.add.at(score, slot[slot_ok], 1)
            np.minimum(score, MAX_SCORE, out=score)
            self.kills = np.bincount(dead_room, minlength=len(self.games))
            self.respawn_at, self.score = respawn_at, score
        hit_room = q_room[q_rows]
        hit_rooms = hit_room.tolist()
        for r in sorted(set(hit_rooms)):
            self.events[r] = []
        targets = ids[p_rows]
        for r, s, v, d, k, ok in zip(
            hit_rooms,
            shooters.tolist(),
            targets.tolist(),
            dealt.tolist(),
            killed.tolist(),
            landed.tolist(),
            strict=True,
        ):
            if ok:
                self.events[r].append(["hit", s, v, d])
                if k:
                    self.events[r].append(["kill", s, v])

    def write_back(self) -> dict[int, list[list[Any]]]:
        """Hand each game its rows (only assignments: nothing here can
        fail); returns each game's events by id(game)."""
        ints, p_start, kept = self.ints, self.p_start.tolist(), self.kept.tolist()
        ticks = ints[:, 0].tolist()
        next_ids = (ints[:, 4] + self.shots).tolist()
        shot = (self.shots > 0).tolist()
        kept_start = _offsets(self.kept).tolist()
        pos, fire, next_fire, kept_f, kept_i = self.pos, self.fire, self.next_fire, self.kept_f, self.kept_i
        out: dict[int, list[list[Any]]] = {}
        for r, g in enumerate(self.games):
            g.tick = ticks[r]
            g._next_id = next_ids[r]
            a, b = p_start[r], p_start[r + 1]
            if b > a:
                p = g._p
                p["pos"] = pos[a:b]
                p["fire"] = fire[a:b]
                if shot[r]:
                    p["next_fire"] = next_fire[a:b]
            q, m, c = g._q, kept[r], kept_start[r]
            if m:
                q.f[:m] = kept_f[c : c + m]
                q.i[:m] = kept_i[c : c + m]
            q.n = m
            out[id(g)] = self.events.get(r, [])
        if self.hp is not None:
            for r in self.events:
                self.games[r]._p["hp"] = self.hp[p_start[r] : p_start[r + 1]]
        if self.kills is not None:
            respawn_ticks = (ints[:, 0] + ints[:, 3]).tolist()
            for r, k in enumerate(self.kills.tolist()):
                if k:
                    g = self.games[r]
                    a, b = p_start[r], p_start[r + 1]
                    g._p["respawn_at"] = self.respawn_at[a:b]
                    g._p["score"] = self.score[a:b]
                    g._n_dead += k
                    g._next_respawn = min(g._next_respawn, respawn_ticks[r])
        return out


def _fire(
    shooters: np.ndarray,
    room: np.ndarray,
    pos: np.ndarray,
    ids: np.ndarray,
    next_fire: np.ndarray,
    players: list[dict[str, np.ndarray]],
    ints: np.ndarray,
    shot_step: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arena._fire over all rooms: one projectile per shooter row, lowest
    rows first in each room, as many as its pool has room for. Returns the
    shots' pool rows (floats, ints; room by room) and each room's count;
    sets the shooters' next_fire."""
    n_rooms = ints.shape[0]
    t, cooldown, ttl, next_id = ints[:, 0], ints[:, 1], ints[:, 2], ints[:, 4]
    free = np.maximum(ints[:, 6] - ints[:, 5], 0)
    s_room = room[shooters]
    wanted = np.bincount(s_room, minlength=n_rooms)
    rank = np.arange(shooters.shape[0]) - _offsets(wanted)[:-1][s_room]  # within its room
    fits = rank < free[s_room]
    if np.count_nonzero(fits) < fits.shape[0]:
        shooters, s_room, rank = shooters[fits], s_room[fits], rank[fits]
    aim = np.concatenate([p["aim"] for p in players])
    k = shooters.shape[0]
    f = np.empty((k, Q_FLOATS), dtype=np.float64)
    i = np.empty((k, Q_INTS), dtype=np.int64)
    t_s = t[s_room]
    # The very launch step() uses, with per-shot speed (a column) and t0.
    ProjectilePool.launch(f, i, pos[shooters], aim[shooters], shot_step[s_room][:, None], t_s - 1)
    i[:, 0] = next_id[s_room] + rank
    i[:, 1] = ids[shooters]
    i[:, 2] = t_s + ttl[s_room]
    i[:, 4] = 0  # no lag: a room that rewinds is stepped alone
    next_fire[shooters] = t_s + cooldown[s_room]
    return f, i, np.minimum(wanted, free)


def _complex(xy: np.ndarray) -> np.ndarray:
    """(N, 2) float64 rows with contiguous (x, y) as N complex numbers, no copy."""
    return xy.view(np.complex128)[:, 0]


def _find_hits(
    q_pos: np.ndarray,
    q_owner: np.ndarray,
    q_live: np.ndarray,
    q_room: np.ndarray,
    p_pos: np.ndarray,
    p_id: np.ndarray,
    p_alive: np.ndarray,
    room: np.ndarray,
    counts: np.ndarray,
    p_start: np.ndarray,
    radius: float,
) -> tuple[np.ndarray, np.ndarray]:
    """arena_physics.find_hits_all_pairs over the pairs of each room, with
    the same distance operation and tie-break, so the same hits. Each
    projectile row meets its room's players as one row of a (rooms x
    widest room) table padded with NaN (never within reach): one row
    gather and one broadcast, no pair indices. Returns (q_rows, p_rows),
    global rows, ascending by q_rows."""
    width = int(counts.max()) if counts.shape[0] else 0
    if q_pos.shape[0] == 0 or width == 0:
        return _EMPTY, _EMPTY
    table = np.full((counts.shape[0], width), complex(np.nan, np.nan), dtype=np.complex128)
    first = p_start[:-1]
    table[room, np.arange(p_id.shape[0]) - first[room]] = _complex(p_pos)
    dist = np.abs(q_pos.view(np.complex128) - table[q_room])
    near = np.flatnonzero(dist <= radius)
    # Most steps touch nothing: leave before the masks and the sort.
    if not near.shape[0]:
        return _EMPTY, _EMPTY
    qi, pj = np.divmod(near, width)
    pj += first[q_room[qi]]
    ok = p_alive[pj] & q_live[qi]
    ok &= q_owner[qi] != p_id[pj]
    if not np.count_nonzero(ok):
        return _EMPTY, _EMPTY
    qi, pj, d = qi[ok], pj[ok], dist.ravel()[near[ok]]
    # Per projectile: nearest first, then lowest player row (as argmin does).
    order = np.lexsort((pj, d, qi))
    qi, pj = qi[order], pj[order]
    keep = np.ones(qi.shape[0], dtype=bool)
    keep[1:] = qi[1:] != qi[:-1]
    return qi[keep], pj[keep]


_EMPTY = np.zeros(0, dtype=np.int64)
