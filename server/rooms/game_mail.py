"""Game messages between a room's players and its game.

Inbound: each player's validated ``msg`` (tickroom.protocol.game_messages)
waits in its ``Player.inbox`` until the tick, which hands them all to the
game's ``handle_messages`` before ``step()`` (``collect``), ordered by
player id, then as each player sent them, so a replay sees the same order.
The game gets at most MAX_INBOX of a player's messages per tick; the rest
wait, in order, for the next ticks (a burst the gate admitted is spread,
not lost). A player queues at most MAX_QUEUED, more than the deepest burst
the gate admits; beyond that, messages are dropped (and counted).

Outbound: a game's ``requests.send(...)`` (tickroom.simulation.room_requests)
is encoded once and sent on each target's link with ``send``: reliable and
in order, never a snapshot's latest-wins slot, so a client that falls back
to a full snapshot loses none. A player away within its rejoin grace has
its messages held (at most MAX_HELD, the oldest dropped first) and sent
after its welcome when it returns (``flush_held``). Held is what was sent
after the room noticed the drop: what went to a connection already broken
is lost with it (messages carry no sequence number to resend by). Held
messages are not checkpointed: a failover loses them, like the snapshots
in flight.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from tickroom.protocol.game_messages import MAX_SERVER_MESSAGE_BYTES, encode_game_message
from tickroom.server.rooms.link import ClientLink
from tickroom.server.rooms.players import Player, PlayerTable
from tickroom.simulation.player_messages import PlayerMessage, SendMessage

log = logging.getLogger(__name__)

MAX_INBOX = 16  # game messages per player handed to the game per tick
MAX_QUEUED = 128  # ... queued per player: above the gate's deepest burst (2 x 60)
MAX_HELD = 256  # messages held for a player away, until it rejoins


class MessageGame(Protocol):
    def handle_messages(self, messages: list[PlayerMessage]) -> None: ...


class MailCounters:
    """What the room's statistics report of game messages."""

    def __init__(self) -> None:
        self.received = 0  # handed to the game
        self.dropped = 0  # over MAX_QUEUED, or sent to a game without handle_messages
        self.sent = 0  # message copies sent or held
        self.held_dropped = 0  # over MAX_HELD for a player away
        self.refused = 0  # the game's sends that could not be encoded (logged)


def collect(players: PlayerTable, game: Any, counters: MailCounters) -> None:
    """Hand the players' queued messages to the game (if it takes them)."""
    senders = players.with_messages()
    if not senders:
        return
    handle = getattr(game, "handle_messages", None)
    batch: list[PlayerMessage] = []
    for player in senders:
        inbox = player.inbox
        batch.extend(PlayerMessage(player.id, msg.kind, msg.data) for msg in inbox[:MAX_INBOX])
        del inbox[:MAX_INBOX]  # the rest wait for the next ticks
    if handle is None:
        counters.dropped += len(batch)
        return
    counters.received += len(batch)
    handle(batch)


def deliver(players: PlayerTable, tick: int, request: SendMessage, counters: MailCounters, room_id: str) -> None:
    """Send ``request`` to its targets (every player when ``to`` is None);
    unknown ids are ignored."""
    try:
        payload = encode_game_message(tick, request.kind, request.data)
    except (TypeError, ValueError, OverflowError) as exc:
        payload, why = b"", str(exc)
    else:
        why = f"{len(payload)} bytes, over {MAX_SERVER_MESSAGE_BYTES}"
    if not payload or len(payload) > MAX_SERVER_MESSAGE_BYTES:
        counters.refused += 1
        log.warning("room %s: the game's message %r was not sent: %s", room_id, request.kind, why)
        return
    if request.to is None:
        targets = list(players)
    else:
        targets = [p for p in (players.by_id(pid) for pid in dict.fromkeys(request.to)) if p is not None]
    for player in targets:
        counters.sent += 1
        link = player.link
        if link is not None:
            link.send(payload)
        else:
            player.held.append(payload)
            if len(player.held) > MAX_HELD:
                del player.held[0]
                counters.held_dropped += 1


def flush_held(player: Player, link: ClientLink) -> None:
    """Send what was held for ``player`` while it was away, in order."""
    held, player.held = player.held, []
    for payload in held:
        link.send(payload)
