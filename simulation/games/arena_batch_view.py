"""Arena views of many rooms in one pass (Arena.view_together).

``build_view`` (arena_world) is ~20 numpy calls for a room of a dozen
entities, their overhead and not their data being the cost. Here every
room's players and projectiles are gathered end to end, room after room
(each room's players first, then its projectiles, as build_view lays them
out), scaled and rounded with the same operations in one pass, and each
room's View is a set of slices of the shared arrays: fresh arrays, which
no game holds, as view() promises. A room whose rows are not in id order
as laid out (a player joined after one of its live projectiles was fired:
build_view then sorts) takes build_view alone.

The output is exactly ``[build_view(...) for each game]``, value for value
and dtype for dtype; tests/simulation/test_arena_batch_view.py holds it to
that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tickroom.simulation.game import View
from tickroom.simulation.games.arena_world import build_view, wire_floats

if TYPE_CHECKING:
    from tickroom.simulation.games.arena import Arena


def _in_id_order(game: Arena) -> bool:
    p, q = game._p, game._q
    return not (p["id"].shape[0] and q.n and p["id"][-1] > q.i[0, 0])


def views_together(games: Sequence[Arena]) -> list[View]:
    """Each game's view(), for all of them at once. Pure."""
    batched = [g for g in games if _in_id_order(g)]
    out: dict[int, View] = {id(g): build_view(g._p, g._q) for g in games if not _in_id_order(g)}
    if len(batched) < 2:
        out.update((id(g), build_view(g._p, g._q)) for g in batched)
        return [out[id(g)] for g in games]
    players = [g._p for g in batched]
    n_p = np.fromiter((p["id"].shape[0] for p in players), dtype=np.intp, count=len(batched))
    n_q = np.fromiter((g._q.n for g in batched), dtype=np.intp, count=len(batched))
    sizes = n_p + n_q
    at = np.zeros(len(batched) + 1, dtype=np.intp)
    np.cumsum(sizes, out=at[1:])
    n = int(at[-1])
    # Where each player row and each projectile row goes: its room's
    # start, then its rank among its room's players (or after them).
    room_of_p = np.repeat(np.arange(len(batched)), n_p)
    p_first = np.zeros(len(batched) + 1, dtype=np.intp)
    np.cumsum(n_p, out=p_first[1:])
    to_p = at[room_of_p] + (np.arange(room_of_p.shape[0]) - p_first[room_of_p])
    room_of_q = np.repeat(np.arange(len(batched)), n_q)
    q_first = np.zeros(len(batched) + 1, dtype=np.intp)
    np.cumsum(n_q, out=q_first[1:])
    to_q = (at[room_of_q] + n_p[room_of_q]) + (np.arange(room_of_q.shape[0]) - q_first[room_of_q])

    pid = np.concatenate([p["id"] for p in players])
    qf = np.concatenate([g._q.f[: g._q.n] for g in batched])
    qi = np.concatenate([g._q.i[: g._q.n] for g in batched])
    ids = np.empty(n, dtype="<u4")
    ids[to_p] = pid
    ids[to_q] = qi[:, 0]
    owner = np.empty(n, dtype="<u4")
    owner[to_p] = pid
    owner[to_q] = qi[:, 1]
    kind = np.ones(n, dtype="|u1")
    kind[to_p] = 0
    hp = np.zeros(n, dtype="|u1")
    hp[to_p] = np.concatenate([p["hp"] for p in players])
    score = np.zeros(n, dtype="<i2")
    score[to_p] = np.concatenate([p["score"] for p in players])
    fx = np.empty((n, 5), dtype=np.float64)
    fx[to_p, :2] = np.concatenate([p["pos"] for p in players])
    fx[to_p, 2] = np.concatenate([p["aim"] for p in players])
    fx[to_p, 3:] = 0.0
    fx[to_q] = qf[:, :5]
    pos, aim, vel = wire_floats(fx)
    t0 = np.zeros(n, dtype="<u4")
    t0[to_q] = qi[:, 3]
    comps = {"kind": kind, "pos": pos, "aim": aim, "hp": hp, "score": score, "owner": owner, "vel": vel, "t0": t0}
    bounds = at.tolist()
    for k, game in enumerate(batched):
        a, b = bounds[k], bounds[k + 1]
        out[id(game)] = View(ids=ids[a:b], components={name: arr[a:b] for name, arr in comps.items()})
    return [out[id(g)] for g in games]
