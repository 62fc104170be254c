"""Game messages as a game sees them: what its players sent, and what it
sends them.

A game that declares ``message_types`` (tickroom.simulation.game) receives
the tick's messages, already validated, in ``handle_messages(messages)``
before ``step()``: a list of ``PlayerMessage``, ordered by player id, then
in the order each player sent them (deterministic, like the input batch).
It answers through its ``RoomRequests`` (``requests.send(kind, data, to)``):
to one player, a set of players, or everyone, e.g. a chat line to all, a
dealt card to its holder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

KIND_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
MAX_DEPTH = 4  # nesting of lists and maps in a sent message's data


@dataclass(frozen=True, slots=True)
class PlayerMessage:
    """One message from player ``player`` (its avatar id): ``kind`` is one
    of the game's message types, ``data`` has every field it declares."""

    player: int
    kind: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class SendMessage:
    """A game's message for its players: ``to`` is None (everyone in the
    room) or the player ids to send it to."""

    kind: str
    data: Mapping[str, Any]
    to: tuple[int, ...] | None


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is plain data every client decodes the same way."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return True
    if depth >= MAX_DEPTH:
        return False
    if isinstance(value, (list, tuple)):
        return all(_plain(item, depth + 1) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def send_message(kind: str, data: Mapping[str, Any] | None, to: int | Iterable[int] | None) -> SendMessage:
    """A checked SendMessage; ValueError for a kind or data no client could read."""
    if not isinstance(kind, str) or not KIND_RE.fullmatch(kind):
        raise ValueError(f"message kind {kind!r} must match {KIND_RE.pattern}")
    data = dict(data or {})
    if not _plain(data):
        raise ValueError(
            f"message {kind!r}: data must be a map of str keys to None, bool, int, float, str, bytes, "
            f"lists and maps (at most {MAX_DEPTH} deep)"
        )
    targets = None if to is None else ((int(to),) if isinstance(to, int) else tuple(int(p) for p in to))
    return SendMessage(kind, data, targets)
