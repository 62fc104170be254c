"""Arena rooms' input batches applied together: Arena.apply_inputs over many
rooms in one pass of numpy calls (the twin of arena_batch for the step).

The batches are laid end to end with a room index column and each row's
player becomes the key ``room << 32 | player id``: rows stay grouped by
player within a room, and the rooms' players, laid end to end (ids ascend
within a room), are sorted by that key, so one rows_by_player and one
searchsorted do for all rooms what apply_inputs does for one. Every value
goes through the same operations as in apply_inputs (the same clamps,
np.hypot, the division of the room's step length by the same scale), so
the players' arrays come out bit-identical.

All or nothing: the new arrays are computed first; then each room's input
fields become slices of them (disjoint; join, leave and state() copy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tickroom.simulation.game import InputBatch
from tickroom.simulation.inputs import rows_by_player

if TYPE_CHECKING:
    from tickroom.simulation.games.arena import Arena

# The player fields apply_inputs writes.
_WRITTEN = ("step", "aim", "trigger", "fire", "aim_tick")
_ID_LIMIT = 1 << 32  # entity ids are uint32


def apply_inputs_together(
    games: Sequence[Arena], batches: Sequence[InputBatch], lo: np.ndarray, hi: np.ndarray
) -> None:
    """``for g, b in zip(games, batches): g.apply_inputs(b)``, bit-identically,
    with the (mx, my, aim) clamp bounds ``lo`` and ``hi`` (3 x 1 columns).
    Raises ValueError for lists of unequal lengths or a game twice; if it
    raises, no game has been changed."""
    if len(games) != len(batches):
        raise ValueError(f"apply_inputs_together: {len(games)} games and {len(batches)} batches")
    if len({id(g) for g in games}) != len(games):
        raise ValueError("apply_inputs_together: the same game twice in one list")
    # Rooms with rows and players; the others are left as apply_inputs leaves them.
    pairs = [(g, b) for g, b in zip(games, batches, strict=True) if len(b) and g._p["id"].shape[0]]
    if not pairs:
        return
    rooms = [g for g, _ in pairs]
    players = [g._p for g in rooms]
    n_rooms = len(pairs)
    counts = np.array([p["id"].shape[0] for p in players], dtype=np.int64)
    p_start = np.zeros(n_rooms + 1, dtype=np.int64)
    np.cumsum(counts, out=p_start[1:])
    room = np.repeat(np.arange(n_rooms, dtype=np.int64), counts)
    key = room << 32
    key |= np.concatenate([p["id"] for p in players])
    rows = np.array([len(b) for _, b in pairs], dtype=np.int64)
    row_room = np.repeat(np.arange(n_rooms, dtype=np.int64), rows)
    who = np.concatenate([np.asarray(b.players, dtype=np.int64) for _, b in pairs])
    # An id that cannot be a player's (out of uint32, or 0) must not reach
    # into the next room's keys: it becomes player 0 of its room, never found.
    ok = who > 0
    ok &= who < _ID_LIMIT
    row_key = row_room << 32
    row_key |= np.where(ok, who, 0)
    by_player = rows_by_player(row_key)
    f = [b.fields for _, b in pairs]
    axes = np.array(
        (
            np.concatenate([x["mx"] for x in f]),
            np.concatenate([x["my"] for x in f]),
            np.concatenate([x["aim"] for x in f]),
        ),
        dtype=np.float64,
    )[:, by_player.last]
    np.fmax(axes, lo, out=axes)
    np.fmin(axes, hi, out=axes)
    fire = np.asarray(np.concatenate([x["fire"] for x in f]), dtype=bool)
    trigger, pressed = fire[by_player.last], by_player.any(fire)
    # The tick the client acted on with its newest aim (0: not said).
    ticks = [b.ticks for _, b in pairs]
    acted_on: Any = 0
    if any(t is not None for t in ticks):
        said = [
            t if t is not None else np.zeros(len(b), dtype=np.int64) for t, (_, b) in zip(ticks, pairs, strict=True)
        ]
        acted_on = np.concatenate(said)[by_player.last]
    ids = by_player.ids
    slot = np.searchsorted(key, ids)
    np.minimum(slot, key.shape[0] - 1, out=slot)
    known = key[slot] == ids
    if np.count_nonzero(known) < known.shape[0]:
        slot, axes = slot[known], axes[:, known]
        trigger, pressed = trigger[known], pressed[known]
        if not isinstance(acted_on, int):
            acted_on = acted_on[known]
    # Diagonals are not faster: the stick vector is clamped to length 1.
    scale = np.hypot(axes[0], axes[1])
    np.maximum(scale, 1.0, out=scale)
    step_length = np.array([g._player_step for g in rooms], dtype=np.float64)
    np.divide(step_length[room[slot]], scale, out=scale)
    new = {k: np.concatenate([p[k] for p in players]) for k in _WRITTEN}
    new["step"][slot] = (axes[:2] * scale).T
    new["aim"][slot] = axes[2]
    new["trigger"][slot] = trigger
    new["fire"][slot] = pressed
    new["aim_tick"][slot] = acted_on
    if {a.shape[0] for a in new.values()} != {key.shape[0]}:
        raise ValueError("apply_inputs_together: a game's player arrays have unequal lengths")
    # Everything is computed: hand each room its rows.
    bounds = p_start.tolist()
    for r, p in enumerate(players):
        a, b = bounds[r], bounds[r + 1]
        for k in _WRITTEN:
            p[k] = new[k][a:b]
