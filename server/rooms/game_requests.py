"""Carrying out what a game asked of its room (tickroom.simulation.room_requests):
end the match, kick a player, set labels.

The room calls ``carry_out`` on its own task after every call it makes into
the game (a step, a join, a hook), so each request takes effect before the
next snapshot: a player kicked in a step is gone from that tick's view.
The room is seen through ``RequestTarget``, the few things a request may
change, so this module needs nothing else of the room.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from tickroom.protocol.errors import Code
from tickroom.server.rooms.game_mail import MailCounters, deliver
from tickroom.server.rooms.players import Player, PlayerTable
from tickroom.simulation.game import Game
from tickroom.simulation.player_messages import SendMessage
from tickroom.simulation.room_requests import MAX_LABELS, EndMatch, Kick, RoomRequest, SetLabels

log = logging.getLogger(__name__)


class RequestTarget(Protocol):
    """What of a room the game's requests act on (tickroom.server.rooms.room.Room)."""

    room_id: str
    closed: bool  # set: the room ends after this tick
    end_reason: str  # what the game's on_end will hear
    labels: dict[str, str]
    players: PlayerTable
    game: Game
    mail: MailCounters  # game messages (tickroom.server.rooms.game_mail)

    def kick_all(self, code: Code, reason: str) -> None: ...

    def remove_player(self, player: Player, why: str) -> None: ...


def carry_out(room: RequestTarget, requests: Iterable[RoomRequest]) -> None:
    """Do what the game asked, in order; once the match has ended, the rest
    are moot and dropped. Unknown player ids are ignored; labels that would
    exceed MAX_LABELS are not set (logged), so a game's slip never ends its
    room."""
    for request in requests:
        if room.closed:
            return
        if isinstance(request, EndMatch):
            log.info("room %s: the game ended its match: %s", room.room_id, request.reason)
            room.kick_all(Code.MATCH_ENDED, request.reason)
            room.end_reason = "match_ended"
            room.closed = True
        elif isinstance(request, Kick):
            kick_player(room, request.player_id, request.reason)
        elif isinstance(request, SendMessage):
            deliver(room.players, room.game.tick, request, room.mail, room.room_id)
        elif isinstance(request, SetLabels):
            merged = {**room.labels, **request.labels}
            labels = {key: value for key, value in merged.items() if value is not None}
            if len(labels) > MAX_LABELS:
                log.warning("room %s: the game's labels would be over %d; not set", room.room_id, MAX_LABELS)
                continue
            room.labels = labels


def kick_player(room: RequestTarget, player_id: int, reason: str) -> None:
    """Remove a player for good, asked by the game or by an operator (the
    control API): its client is closed with KICKED (4108) and ``reason``, its
    avatar leaves the game and its session is void. A player already gone is
    ignored."""
    player = room.players.by_id(player_id)
    if player is None:
        return
    if player.link is not None and not player.link.closed:
        player.link.kick(Code.KICKED, reason)
    room.remove_player(player, f"kicked: {reason}")
