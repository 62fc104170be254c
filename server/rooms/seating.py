"""Seating a joiner in a room: admission of a new or returning player and
the welcome it gets.

The room task calls ``admit`` at a tick boundary, on its own task, for each
join request it takes from its control channel (tickroom.server.rooms.room).
A join with a session token resumes that player on the new connection
(the old one, if still open, is closed with SESSION_REPLACED); a join
without one asks the game for a seat (``Game.join``), whose refusals become
``JoinRefused`` with the documented close code (docs/protocol.md, 3.2). The
room is seen through ``SeatingRoom``, the few things seating reads or
changes, so this module needs nothing else of the room.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from tickroom.protocol import messages as m
from tickroom.protocol.codec import encode_welcome
from tickroom.protocol.errors import Code
from tickroom.protocol.game_messages import MessageTypes
from tickroom.protocol.input_rows import row_layout
from tickroom.protocol.schema import Schema
from tickroom.protocol.validate import InputFields
from tickroom.server.rooms.game_hooks import GameHooks
from tickroom.server.rooms.game_mail import MailCounters, replay
from tickroom.server.rooms.link import ClientLink
from tickroom.server.rooms.players import Player, PlayerTable
from tickroom.server.rooms.room_types import JoinAccepted, JoinRefused, RoomConfig
from tickroom.server.rooms.snapshots import SnapshotHistory
from tickroom.simulation.game import Game, GameFull, JoinRejected

log = logging.getLogger(__name__)

SESSION_TOKEN_BYTES = 18  # 24 URL-safe characters: unguessable, short on the wire


class SeatingRoom(Protocol):
    """What of a room seating reads or changes (tickroom.server.rooms.room.Room)."""

    room_id: str
    game: Game
    config: RoomConfig
    schema: Schema
    input_fields: InputFields
    message_types: MessageTypes
    mail: MailCounters
    players: PlayerTable
    history: SnapshotHistory
    hooks: GameHooks

    def record_event(self, event: list[Any]) -> None: ...


@dataclass(frozen=True)
class JoinRequest:
    """A join on its way through the room's control channel; the answer
    (JoinAccepted or JoinRefused) goes back on ``reply``, a one-slot channel."""

    join: m.Join
    link: ClientLink
    reply: trio.MemorySendChannel


def answer_join(room: SeatingRoom, request: JoinRequest) -> None:
    """Admit ``request``'s player and send the answer back; a bug of ours
    while admitting is answered first (INTERNAL_ERROR, so the joiner hears
    at once rather than waiting out the room's join timeout), then
    re-raised to the room's fence."""
    failure: Exception | None = None
    try:
        result: JoinAccepted | JoinRefused = admit(room, request.join, request.link)
    except JoinRefused as exc:
        result = exc
    except Exception as exc:  # noqa: BLE001 - answered first, then re-raised to the room's fence
        result, failure = JoinRefused(Code.INTERNAL_ERROR, "the room failed while admitting you"), exc
    try:
        request.reply.send_nowait(result)
    except (trio.WouldBlock, trio.BrokenResourceError):
        # The connection gave up waiting: it never learns it joined, its
        # link gives no inputs and, once closed, is reaped like any other.
        pass
    if failure is not None:
        raise failure


def refuse_join(request: JoinRequest) -> None:
    """Answer ``request`` with ROOM_CLOSED (the room ended before seating it)."""
    try:
        request.reply.send_nowait(JoinRefused(Code.ROOM_CLOSED, "room closed"))
    except (trio.WouldBlock, trio.BrokenResourceError):
        pass


def admit(room: SeatingRoom, join: m.Join, link: ClientLink) -> JoinAccepted:
    """Seat ``join``'s player on ``link``, send it its welcome, and say how
    the connection reaches the room.

    Raises JoinRefused: SESSION_UNKNOWN (no such session), ROOM_FULL and
    JOIN_REJECTED (the game's refusals), INTERNAL_ERROR (the game's own
    ``join`` raised: the join is refused, the room plays on). Any other
    exception is a bug of ours and propagates to the room's fence.
    """
    if join.session is not None:
        player = _reseat(room, join.session, join, link)
    else:
        player = _seat_newcomer(room, join, link)
    player.wire_version = join.version
    link.send(encode_welcome(welcome_for(room, player, version=join.version)))
    if join.session is not None:  # what it missed, or lost in a broken connection (tickroom.server.rooms.game_mail)
        replay(player, link, room.game.tick, room.mail.keep_ticks)
    return JoinAccepted(
        room_id=room.room_id,
        player=player.id,
        input_fields=room.input_fields,
        tick_rate=room.config.tick_rate,
        room_tick=lambda: room.game.tick,
        message_types=room.message_types,
    )


def welcome_for(room: SeatingRoom, player: Player, *, version: int = m.PROTOCOL_VERSION) -> m.Welcome:
    """The welcome ``player`` gets in protocol ``version`` (its join's): its
    ids and session, the room's clock, schema, input fields and their row
    layout (version 2), players and options (docs/protocol.md, welcome)."""
    return m.Welcome(
        version=version,
        room=room.room_id,
        game=room.game.name,
        player=player.id,
        session=player.session,
        tick_rate=room.config.tick_rate,
        tick=room.game.tick,
        schema=room.schema.describe(),
        inputs=room.input_fields.describe(),
        players=[[p.id, p.name] for p in room.players],
        options=dict(room.game.config.options),
        messages=room.message_types.describe(),
        layout=row_layout(room.input_fields) if version >= 2 else [],
    )


def _reseat(room: SeatingRoom, session: str, join: m.Join, link: ClientLink) -> Player:
    """A returning player (session token) on its new connection."""
    player = room.players.by_session(session)
    if player is None:
        raise JoinRefused(Code.SESSION_UNKNOWN, "unknown or expired session token")
    if player.link is not None and not player.link.closed:
        player.link.kick(Code.SESSION_REPLACED, "this session joined on another connection")
    room.players.attach(player, link, room.game.tick)
    # Resume deltas from the newest world the client still holds, or at
    # least the events after it (a full snapshot carries them).
    held = room.history.holds(join.ack) or room.history.remembers(join.ack)
    player.acked = join.ack if held and join.ack <= room.game.tick else m.NO_TICK
    room.hooks.rejoined(player.id)
    return player


def _seat_newcomer(room: SeatingRoom, join: m.Join, link: ClientLink) -> Player:
    """A new player: the game gives it a seat (an entity id) or refuses."""
    try:
        pid = room.game.join(join.name)
    except GameFull:
        raise JoinRefused(Code.ROOM_FULL, f"room {room.room_id} is full") from None
    except JoinRejected as exc:
        raise JoinRefused(Code.JOIN_REJECTED, exc.reason) from None
    except Exception:  # the game's bug in join(): refuse this join, the room plays on
        log.exception(
            "room %s: the game's join() raised; join refused", room.room_id,
            extra={"room_id": room.room_id, "tick": room.game.tick, "game": room.game.name},
        )  # fmt: skip
        raise JoinRefused(Code.INTERNAL_ERROR, "the game failed to admit you; the room plays on") from None
    player = Player(id=pid, name=join.name or f"player-{pid}", session=secrets.token_urlsafe(SESSION_TOKEN_BYTES))
    room.players.add(player)
    room.players.attach(player, link, room.game.tick)
    room.record_event(["join", pid, player.name])
    log.info("room %s: %s joined as %d", room.room_id, player.name, pid)
    return player
