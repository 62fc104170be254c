"""What a game asks of its room: end the match, kick a player, set labels.

A game stays pure (no trio, no server): it records its requests in a
``RoomRequests`` it owns, as the attribute ``requests``, and the room takes
them after every call it makes into the game (a step, a join, a hook) and
carries them out on its own task. Like nakama's ``MatchKick`` /
``MatchLabelUpdate`` and a ``MatchLoop`` returning nil, but as data: the
game's arithmetic never waits on the server.

    class MyGame:
        def __init__(self, seed, config):
            self.requests = RoomRequests()
        def step(self):
            if self._score.max() >= 10:
                self.requests.end_match("blue wins")

What the room does with each (docs/protocol.md, close codes):
- ``end_match(reason)``: closes every client with 4107 MATCH_ENDED and the
  reason, then the room ends (the game's ``on_end`` hears "match_ended");
- ``kick(player_id, reason)``: closes that player's connection with 4108
  KICKED, and removes the player (``leave`` is called) at once: no rejoin;
- ``set_labels(**labels)``: updates the room's matchmaker labels (a value of
  None removes one); checkpointed with the room and listed by
  ``GET /v1/rooms?label=key:value``;
- ``send(kind, data, to=None)``: a game message (docs/protocol.md, 5.6) to
  the player ``to``, the players in ``to``, or (None) every player, sent
  reliably in order; a player away within its rejoin grace gets it on its
  return (tickroom.simulation.player_messages).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tickroom.simulation.player_messages import SendMessage, send_message

MAX_REASON_CHARS = 100  # a WebSocket close reason holds 123 bytes
LABEL_KEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,63}")  # as the control API's labels
MAX_LABEL_VALUE_CHARS = 256
MAX_LABELS = 32  # a room's labels, the matchmaker's and the game's together


@dataclass(frozen=True)
class EndMatch:
    reason: str


@dataclass(frozen=True)
class Kick:
    player_id: int
    reason: str


@dataclass(frozen=True)
class SetLabels:
    labels: Mapping[str, str | None]  # None: remove the label


RoomRequest = EndMatch | Kick | SetLabels | SendMessage


class RoomRequests:
    """A game's outbox to its room. The methods only record; the room acts
    at the end of the call into the game that made them, in order.

    Raises ValueError at once for a request the room could never carry out
    (a label key or value the control API would refuse), so the game's own
    tests catch it rather than the room's log."""

    def __init__(self) -> None:
        self._pending: list[RoomRequest] = []

    def end_match(self, reason: str = "match over") -> None:
        """End the match: every client is closed with 4107 MATCH_ENDED and
        ``reason`` (cut to MAX_REASON_CHARS), then the room ends."""
        self._pending.append(EndMatch(str(reason)[:MAX_REASON_CHARS]))

    def kick(self, player_id: int, reason: str = "kicked by the game") -> None:
        """Close this player's connection with 4108 KICKED and remove the
        player (the game's ``leave`` is called); unknown ids are ignored."""
        self._pending.append(Kick(int(player_id), str(reason)[:MAX_REASON_CHARS]))

    def set_labels(self, **labels: str | None) -> None:
        """Set (or, with None, remove) the room's labels, e.g.
        ``set_labels(phase="playing")``. Raises ValueError for a key or value
        the control API would refuse."""
        for key, value in labels.items():
            if not LABEL_KEY_RE.fullmatch(key):
                raise ValueError(f"label key {key!r} must match {LABEL_KEY_RE.pattern}")
            if value is not None and (not isinstance(value, str) or len(value) > MAX_LABEL_VALUE_CHARS):
                raise ValueError(f"label {key!r} must be a string of at most {MAX_LABEL_VALUE_CHARS} characters")
        self._pending.append(SetLabels(dict(labels)))

    def send(self, kind: str, data: Mapping[str, Any] | None = None, to: int | Iterable[int] | None = None) -> None:
        """Send a game message to player ``to``, the players in ``to``, or
        (None) everyone in the room. Raises ValueError for a kind or data
        no client could read (tickroom.simulation.player_messages)."""
        self._pending.append(send_message(kind, data, to))

    def take(self) -> list[RoomRequest]:
        """The requests recorded since the last take, oldest first (the room calls this)."""
        taken, self._pending = self._pending, []
        return taken
