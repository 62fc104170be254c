"""A room's ring of its game's recent ticks, for lag compensation.

A game that declares ``history_ticks`` > 0 and ``remember()``
(tickroom.simulation.game) gets one WorldHistory as its ``past``: after each
step the room records what remember() returned for that tick, and the game
looks a tick up with ``at(tick)`` while it judges a later input. The ring
holds the newest ``ticks`` entries; a tick older than that, or one never
recorded (before the room started, or before a failover: the ring is the
room's and is not checkpointed), is None.

Cost: one remember() (a few array copies) and one slot write per tick; no
allocation of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tickroom.simulation.game import PastWorlds

Arrays = Mapping[str, np.ndarray]


class WorldHistory:
    """The newest ``ticks`` entries of ``remember()``, by tick."""

    def __init__(self, ticks: int, remember: Callable[[], Arrays]) -> None:
        if ticks < 1:
            raise ValueError(f"a history holds at least one tick, got {ticks}")
        self.ticks = ticks
        self._remember = remember
        self._slots: list[tuple[int, Arrays] | None] = [None] * ticks

    def record(self, tick: int) -> None:
        """Keep what the game's remember() returns now as the world of
        ``tick`` (called after the step of ``tick``, ticks in ascending
        order; the entry ``ticks`` ticks older is dropped)."""
        self._slots[tick % self.ticks] = (tick, self._remember())

    def at(self, tick: int) -> Arrays | None:
        slot = self._slots[tick % self.ticks]
        if slot is None or slot[0] != tick:
            return None
        return slot[1]

    def clear(self) -> None:
        self._slots = [None] * self.ticks


def history_for(game: Any) -> WorldHistory | None:
    """A new ring for ``game`` if it asks for one (``history_ticks`` > 0 and
    a ``remember`` method), lent to it as ``game.past``; else None."""
    ticks = int(getattr(game, "history_ticks", 0) or 0)
    remember = getattr(game, "remember", None)
    if ticks <= 0 or not callable(remember):
        return None
    history = WorldHistory(ticks, remember)
    past: PastWorlds = history
    game.past = past
    return history
