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
is packed once and sent on each target's link with ``send``: reliable and
in order, never a snapshot's latest-wins slot, so a client that falls back
to a full snapshot loses none. Each player's messages are numbered (``n``:
1, 2, 3 ...) and kept in its ``mail_log`` for as long as events are (the
ack timeout plus the rejoin grace, ``keep_ticks``), at most MAX_LOGGED.
When the player rejoins, the whole log is sent again after its welcome
(``replay``): what it missed while away, and what went to a connection
already broken before the room noticed. The client keeps each ``n`` once
(docs/protocol.md, 5.6). A checkpoint keeps each player's last ``n`` and the
tick log the messages handed to the game (tickroom.server.cluster.checkpoint),
so a restored room replays the game's messages under the same numbers; the
log itself is not checkpointed.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from tickroom.protocol.game_messages import MAX_SERVER_MESSAGE_BYTES, finish_game_message, pack_game_message_shared
from tickroom.server.rooms.link import ClientLink
from tickroom.server.rooms.players import Player, PlayerTable
from tickroom.simulation.player_messages import PlayerMessage, SendMessage

log = logging.getLogger(__name__)

MAX_INBOX = 16  # game messages per player handed to the game per tick
MAX_QUEUED = 128  # ... queued per player: above the gate's deepest burst (2 x 60)
MAX_LOGGED = 256  # messages kept per player for a replay at its rejoin


class MessageGame(Protocol):
    def handle_messages(self, messages: list[PlayerMessage]) -> None: ...


class MailCounters:
    """What the room's statistics report of game messages, and how long
    (``keep_ticks``) each player's messages are kept for a replay."""

    def __init__(self, keep_ticks: int = 0) -> None:
        self.keep_ticks = keep_ticks
        self.received = 0  # handed to the game
        self.dropped = 0  # over MAX_QUEUED, or sent to a game without handle_messages
        self.sent = 0  # message copies sent, or logged for a player away
        self.held_dropped = 0  # out of the log while its player was away: maybe never delivered
        self.refused = 0  # the game's sends that could not be encoded (logged)


def collect(players: PlayerTable, game: Any, counters: MailCounters) -> list[PlayerMessage]:
    """Hand the players' queued messages to the game (if it takes them);
    returns what it was handed (the failover's tick log replays it)."""
    senders = players.with_messages()
    if not senders:
        return []
    handle = getattr(game, "handle_messages", None)
    batch: list[PlayerMessage] = []
    for player in senders:
        inbox = player.inbox
        batch.extend(PlayerMessage(player.id, msg.kind, msg.data) for msg in inbox[:MAX_INBOX])
        del inbox[:MAX_INBOX]  # the rest wait for the next ticks
    if handle is None:
        counters.dropped += len(batch)
        return []
    counters.received += len(batch)
    handle(batch)
    return batch


def deliver(players: PlayerTable, tick: int, request: SendMessage, counters: MailCounters, room_id: str) -> None:
    """Send ``request`` to its targets (every player when ``to`` is None),
    numbered per player and logged for a replay; unknown ids are ignored."""
    try:
        shared = pack_game_message_shared(tick, request.kind, request.data)
    except (TypeError, ValueError, OverflowError) as exc:
        shared, why = b"", str(exc)
    else:
        why = f"{len(shared)} bytes, over {MAX_SERVER_MESSAGE_BYTES}"
    if not shared or len(shared) > MAX_SERVER_MESSAGE_BYTES:
        counters.refused += 1
        log.warning("room %s: the game's message %r was not sent: %s", room_id, request.kind, why)
        return
    if request.to is None:
        targets = list(players)
    else:
        targets = [p for p in (players.by_id(pid) for pid in dict.fromkeys(request.to)) if p is not None]
    oldest = tick - counters.keep_ticks
    for player in targets:
        counters.sent += 1
        player.mail_n += 1
        payload = finish_game_message(shared, player.mail_n)
        mail_log = player.mail_log
        mail_log.append((tick, payload))
        while mail_log and (len(mail_log) > MAX_LOGGED or mail_log[0][0] < oldest):
            mail_log.popleft()
            if player.link is None:
                counters.held_dropped += 1
        if player.link is not None:
            player.link.send(payload)


def replay(player: Player, link: ClientLink, tick: int, keep_ticks: int) -> None:
    """Send ``player``'s logged messages again, in order, on its new link
    (after its welcome): the client keeps those it lacks (by ``n``)."""
    mail_log = player.mail_log
    while mail_log and mail_log[0][0] < tick - keep_ticks:
        mail_log.popleft()
    for _, payload in mail_log:
        link.send(payload)
