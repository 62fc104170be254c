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

Hidden components: a game that declares ``hidden_components`` gives, every
tick, one more players x entities mask per such component (who sees that
component of that entity, e.g. a card's face only to its holder). A view is
then its entity row plus one row per hidden component, deduplicated the same
way, so players who see the same entities and the same hidden values still
share one encode. In a view, a hidden component the player may not see reads
as zero bytes (the world's row is zeroed, never sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np

from tickroom.protocol.delta import WorldState
from tickroom.protocol.delta_batch import HiddenRows
from tickroom.protocol.schema import Schema
from tickroom.simulation.game import View, Visibility


class VisibilityError(ValueError):
    """The game's visibility() returned something that does not fit its view."""


class RoomViews:
    """A room's way to its per-player views, set up once from its game."""

    def __init__(self, game: object, schema: Schema) -> None:
        self.schema = schema
        self._visibility = getattr(game, "visibility", None)
        self.hidden = hidden_components(game, schema)

    def split(self, view: View, world: WorldState) -> TickViews | None:
        """This tick's per-player views, or None: everybody sees ``world``
        (``view`` is the game's, ``world`` the room's WorldState of it).
        Raises VisibilityError, a bug of the game (the room crashes, 4103)."""
        if self._visibility is None:
            return None
        visibility = self._visibility(view)
        if visibility is None:
            if self.hidden:
                raise VisibilityError("a game with hidden components must return a Visibility every tick")
            return None
        return split_views(world, visibility, view.ids, self.schema, self.hidden)


def hidden_components(game: object, schema: Schema) -> tuple[str, ...]:
    """The game's ``hidden_components``, checked against its schema: each a
    component, none twice, and a ``visibility`` method to hide them with.
    Raises VisibilityError (the room cannot be made)."""
    hidden = tuple(getattr(game, "hidden_components", ()))
    for name in hidden:
        if name not in schema:
            raise VisibilityError(f"hidden component {name!r} is not one of the game's components")
    if len(set(hidden)) != len(hidden):
        raise VisibilityError(f"hidden components named twice: {hidden}")
    if hidden and getattr(game, "visibility", None) is None:
        raise VisibilityError("a game with hidden components must define visibility()")
    return hidden


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
            if views.shown is not None:
                world = _redacted(world, views.hidden, views.shown[k][:, row])
            self._cut[k] = world
        return world


@dataclass(frozen=True)
class TickViews:
    """The distinct views of one tick and which player has which.

    ``masks[k]`` is view k as a boolean row over ``world``'s entities (its
    ids' ascending order), ``worlds[k]`` the world it cuts (made on first
    use); ``group_of[player_id]`` is k; ``empty`` is the index of the empty
    view, what a player without a row sees; ``distinct`` counts the views
    the players with a row have. With hidden components, ``hidden`` names
    them and ``shown[k, h]`` is view k's row for ``hidden[h]`` (which of
    the world's entities it sees that component of; False off the view).
    """

    world: WorldState
    masks: np.ndarray
    group_of: dict[int, int]
    empty: int
    distinct: int
    schema: Schema
    hidden: tuple[str, ...] = ()
    shown: np.ndarray | None = None
    worlds: _ViewWorlds = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "worlds", _ViewWorlds(self))

    def group(self, player_id: int) -> int:
        """The index of the view ``player_id`` has at this tick."""
        return self.group_of.get(player_id, self.empty)

    def hidden_rows(self, now: list[int], base: TickViews, then: list[int]) -> HiddenRows | None:
        """The hidden components of views ``now`` of this tick against views
        ``then`` of ``base`` (tickroom.protocol.delta_batch), or None when
        neither tick hides any. A tick without them showed everything."""
        if self.shown is None and base.shown is None:
            return None
        hidden = self.hidden or base.hidden
        columns = np.array([self.schema.names.index(name) for name in hidden], dtype=np.intp)
        return HiddenRows(columns, _shown_rows(self, now, len(hidden)), _shown_rows(base, then, len(hidden)))


def _shown_rows(views: TickViews, rows: list[int], count: int) -> np.ndarray:
    if views.shown is not None:
        return views.shown[rows]
    return np.ones((len(rows), count, views.world.ids.shape[0]), dtype=bool)


def _redacted(world: WorldState, hidden: tuple[str, ...], shown: np.ndarray) -> WorldState:
    """``world`` with row i of component ``hidden[h]`` zeroed where
    ``shown[h, i]`` is False (the world itself when nothing is hidden)."""
    if np.count_nonzero(shown) == shown.size:
        return world
    components = dict(world.components)
    for h, name in enumerate(hidden):
        if np.count_nonzero(shown[h]) < shown.shape[1]:
            arr = np.array(components[name])
            arr[~shown[h]] = 0
            arr.flags.writeable = False
            components[name] = arr
    return WorldState(world.tick, world.ids, components)


def split_views(
    world: WorldState, visibility: Visibility, view_ids: np.ndarray, schema: Schema, hidden: tuple[str, ...] = ()
) -> TickViews:
    """Cut ``world`` into the distinct views ``visibility`` describes.

    ``view_ids`` are the ids of the View the mask was computed for, in the
    game's order (the world holds them ascending; the mask's columns are
    reordered to match). ``hidden`` are the game's hidden components, each
    of which ``visibility.components`` must give a mask for. Raises
    VisibilityError when a mask's shape, dtype or players do not fit.
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
    shown = _hidden_masks(visibility, hidden, mask.shape)
    view_ids = np.asarray(view_ids)
    if n > 1 and np.count_nonzero(view_ids[1:] <= view_ids[:-1]):
        # WorldState.from_view sorted the entities (stably); sort the columns alike.
        order = np.argsort(view_ids, kind="stable")
        mask = mask[:, order]
        if shown is not None:
            shown = shown[:, :, order]
    if shown is not None:
        shown &= mask[:, None, :]  # off the view, a component is not "seen": equal views stay equal
    # One extra all-False row: the empty world, deduplicated with any
    # player's empty row like every other. A view's key is its entity row
    # and its hidden components' rows side by side.
    width = (n + 7) // 8 or 1
    rows = np.zeros((players.shape[0] + 1, width * (1 + len(hidden))), dtype=np.uint8)
    if n:
        rows[:-1, :width] = np.packbits(mask, axis=1)
        for h in range(len(hidden)):
            rows[:-1, width * (h + 1) : width * (h + 2)] = np.packbits(shown[:, h], axis=1)  # type: ignore[index]
    keys = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    if np.unique(players).shape[0] != players.shape[0]:
        raise VisibilityError("visibility players must be unique")
    # Row k of masks is distinct view k; the empty view's row stays False.
    masks = np.zeros((first.shape[0], n), dtype=bool)
    real = first < players.shape[0]
    masks[real] = mask[first[real]]
    distinct_shown = None
    if shown is not None:
        distinct_shown = np.zeros((first.shape[0], len(hidden), n), dtype=bool)
        distinct_shown[real] = shown[first[real]]
    groups = inverse[:-1]
    group_of = dict(zip(players.tolist(), groups.tolist(), strict=True))
    distinct = int(np.unique(groups).shape[0])
    return TickViews(world, masks, group_of, int(inverse[-1]), distinct, schema, hidden, distinct_shown)


def _hidden_masks(visibility: Visibility, hidden: tuple[str, ...], shape: tuple[int, ...]) -> np.ndarray | None:
    """The hidden components' masks as one players x H x entities array
    (a copy), or None when the game hides none. Every declared hidden
    component needs a mask, every tick: one left out would go to everyone."""
    given = dict(visibility.components)
    if set(given) != set(hidden):
        raise VisibilityError(
            f"visibility components must be exactly the hidden components {sorted(hidden)}, got {sorted(given)}"
        )
    if not hidden:
        return None
    out = np.empty((shape[0], len(hidden), shape[1]), dtype=bool)
    for h, name in enumerate(hidden):
        mask = np.asarray(given[name])
        if mask.dtype != np.bool_ or mask.shape != shape:
            raise VisibilityError(
                f"visibility mask of hidden component {name!r} must be bool of shape {shape}, got {mask.dtype} {mask.shape}"
            )
        out[:, h] = mask
    return out
