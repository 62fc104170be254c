"""Per-player views: one tick's world split by what each player sees.

A game that declares ``visibility(view)`` (tickroom.simulation.game) returns
a players x entities boolean mask for the whole room. Players whose rows are
equal see the same world, so the room keeps one world per distinct row, not
per player: in a room where everybody sees everything that is one world, in
a fogged open world about one per player. The distinct rows are found in
numpy (rows packed to bits, then ``np.unique`` over them as opaque byte
strings). A view's world is cut from the tick's (WorldState.subset) only
when something asks for it: the room's common case encodes every view's
delta in one pass from the views' masks (tickroom.protocol.delta_batch), so
it never needs the cut worlds.

A player without a row sees the empty world: hidden information never leaks
by omission.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np

from tickroom.protocol.delta import WorldState
from tickroom.protocol.schema import Schema
from tickroom.simulation.game import Visibility


class VisibilityError(ValueError):
    """The game's visibility() returned something that does not fit its view."""


class _ViewWorlds(Sequence[WorldState]):
    """The views' worlds, each cut from the tick's world on first use."""

    def __init__(self, views: TickViews) -> None:
        self._views = views
        self._cut: dict[int, WorldState] = {}

    def __len__(self) -> int:
        return self._views.masks.shape[0]

    @overload
    def __getitem__(self, k: int) -> WorldState: ...
    @overload
    def __getitem__(self, k: slice) -> list[WorldState]: ...
    def __getitem__(self, k: int | slice) -> WorldState | list[WorldState]:
        if isinstance(k, slice):
            return [self[i] for i in range(len(self))[k]]
        k = range(len(self))[k]  # IndexError past the end, negative from it
        world = self._cut.get(k)
        if world is None:
            views = self._views
            row = views.masks[k]
            if np.count_nonzero(row) == row.shape[0]:
                world = views.world  # sees everything: share the tick's world and its packed rows
            else:
                world = views.world.subset(np.flatnonzero(row), views.schema)
            self._cut[k] = world
        return world


@dataclass(frozen=True)
class TickViews:
    """The distinct views of one tick and which player has which.

    ``masks[k]`` is view k as a boolean row over ``world``'s entities (its
    ids' ascending order), ``worlds[k]`` the world it cuts (made on first
    use); ``group_of[player_id]`` is k; ``empty`` is the index of the empty
    view, what a player without a row sees; ``distinct`` counts the views
    the players with a row have.
    """

    world: WorldState
    masks: np.ndarray
    group_of: dict[int, int]
    empty: int
    distinct: int
    schema: Schema
    worlds: _ViewWorlds = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "worlds", _ViewWorlds(self))

    def group(self, player_id: int) -> int:
        """The index of the view ``player_id`` has at this tick."""
        return self.group_of.get(player_id, self.empty)


def split_views(world: WorldState, visibility: Visibility, view_ids: np.ndarray, schema: Schema) -> TickViews:
    """Cut ``world`` into the distinct views ``visibility`` describes.

    ``view_ids`` are the ids of the View the mask was computed for, in the
    game's order (the world holds them ascending; the mask's columns are
    reordered to match). Raises VisibilityError when the mask's shape, dtype
    or players do not fit.
    """
    players = np.asarray(visibility.players)
    mask = np.asarray(visibility.mask)
    n = world.ids.shape[0]
    if players.ndim != 1 or (players.size and players.dtype.kind not in "iu"):
        raise VisibilityError(f"visibility players must be a 1-D integer array, got {players.dtype} {players.shape}")
    if mask.dtype != np.bool_ or mask.shape != (players.shape[0], n):
        raise VisibilityError(
            f"visibility mask must be bool of shape {(players.shape[0], n)} (players x view ids), "
            f"got {mask.dtype} {mask.shape}"
        )
    view_ids = np.asarray(view_ids)
    if n > 1 and np.count_nonzero(view_ids[1:] <= view_ids[:-1]):
        # WorldState.from_view sorted the entities (stably); sort the columns alike.
        mask = mask[:, np.argsort(view_ids, kind="stable")]
    # One extra all-False row: the empty world, deduplicated with any
    # player's empty row like every other.
    rows = np.zeros((players.shape[0] + 1, (n + 7) // 8 or 1), dtype=np.uint8)
    if n:
        rows[:-1] = np.packbits(mask, axis=1)
    keys = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    if np.unique(players).shape[0] != players.shape[0]:
        raise VisibilityError("visibility players must be unique")
    # Row k of masks is distinct view k; the empty view's row stays False.
    masks = np.zeros((first.shape[0], n), dtype=bool)
    real = first < players.shape[0]
    masks[real] = mask[first[real]]
    groups = inverse[:-1]
    group_of = dict(zip(players.tolist(), groups.tolist(), strict=True))
    return TickViews(world, masks, group_of, int(inverse[-1]), int(np.unique(groups).shape[0]), schema)
