"""The narrow interface between a room and the transport.

A room hands encoded messages to its clients' links and, once per tick,
reads what each link received (``take_inputs``): the real connection reads
its socket then, so no task wakes per message (docs/benchmarks.md). The room
knows nothing of sockets, frames or WebSockets.
tickroom.server.transport.connection implements it over our WebSocket
transport; the tests implement it in memory (tests/fakes.py).
"""

from __future__ import annotations

from typing import Protocol

from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code, RemoteProtocolError
from tickroom.protocol.game_messages import GameMessage


class ClientLink(Protocol):
    """One client as a room sees it. Every method is sync and never blocks."""

    #: Set once the connection is gone (for any reason); the room notices at
    #: its next tick.
    closed: bool
    #: Set with ``closed`` when the client said "leave": the room removes the
    #: player now instead of keeping it for the rejoin grace period.
    left: bool

    def offer(self, payload: bytes) -> None:
        """A snapshot: sent now if the socket takes it, else it replaces the
        client's pending snapshot (latest wins)."""

    def send(self, payload: bytes) -> None:
        """A message that must arrive (welcome, error), in order."""

    def kick(self, code: Code, reason: str) -> None:
        """Close the connection with an error message and this close code."""

    def take_inputs(self) -> list[m.Input | m.Ack | GameMessage | bytes]:
        """The inputs, acks and game messages (tickroom.protocol.game_messages) received since the last call, in order: acks
        and version 1 inputs validated (tickroom.protocol.messages), version
        2 input rows as bytes of the room's row length, their values not yet
        validated (the room validates a tick's rows in one batch,
        tickroom.server.rooms.input_rows_batch); empty before the join is
        answered and once the connection is ending. Never blocks; the room's
        tick calls it once per tick for each player. The link handles every
        other message itself (answers a ping, refuses a bad message, ends on
        a leave)."""

    def refuse(self, refusal: RemoteProtocolError) -> None:
        """One of the rows ``take_inputs`` gave was refused by the room's
        validation: answer it as the link answers its own refusals (an
        error message and a strike; past the limit, the close)."""
