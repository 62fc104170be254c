"""Hand-written fakes for the collaborators that are not under test.

FakeLink stands in for a client connection (tickroom.server.rooms.link.ClientLink): it
decodes what the room sends with the real protocol.ClientSession, so a test
sees exactly what a client would, and can acknowledge snapshots the way a
well-behaved client does, synchronously, without sockets. What a test sends
as the client waits in the link until the room's tick reads it with
``take_inputs``, as a real connection's socket buffer does.
"""

from __future__ import annotations

from typing import Any

import trio

from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession
from tickroom.protocol.codec import encode_error, encode_pong
from tickroom.protocol.errors import Code, RemoteProtocolError
from tickroom.protocol.game_messages import GameMessage
from tickroom.server.rooms.room import JoinAccepted, Room


class FakeLink:
    """A client as the room sees it. ``auto_ack`` acks every snapshot at once."""

    def __init__(self, *, auto_ack: bool = True) -> None:
        self.closed = False
        self.left = False
        self.auto_ack = auto_ack
        self.session = ClientSession()
        self.session.join(name="fake")
        self.kicked: tuple[Code, str] | None = None
        self.snapshots: list[m.Snapshot] = []
        self.messages: list[Any] = []
        self.accepted: JoinAccepted | None = None
        self.received: list[m.ClientMessage | GameMessage] = []  # sent by the test, not yet read by the room

    # -- ClientLink --------------------------------------------------------
    def offer(self, payload: bytes) -> None:
        snap = self.session.receive(payload)
        assert isinstance(snap, m.Snapshot), snap  # offer carries snapshots only
        self.snapshots.append(snap)
        if self.auto_ack and self.accepted is not None and not self.closed:
            self.push(m.Ack(tick=snap.tick))

    def take_inputs(self) -> list[m.Input | m.Ack | GameMessage | bytes]:
        """As tickroom.server.transport.connection's: nothing before the join
        is answered or once the server closed us; a ping answered with a
        pong, a leave ending the link; the inputs and acks in order."""
        if self.accepted is None or self.kicked is not None:
            return []
        received, self.received = self.received, []
        out: list[m.Input | m.Ack | GameMessage | bytes] = []
        for msg in received:
            if isinstance(msg, m.Input | m.Ack | GameMessage | bytes):
                out.append(msg)
            elif isinstance(msg, m.Ping):
                self.send(encode_pong(m.Pong(id=msg.id, tick=self.accepted.room_tick())))
            elif isinstance(msg, m.Leave):
                self.drop(left=True)
                break
        return out

    def send(self, payload: bytes) -> None:
        self.messages.append(self.session.receive(payload))

    def refuse(self, refusal: RemoteProtocolError) -> None:
        """The room refused one of our input rows: the error a connection
        sends (strikes are the connection's, not under test here)."""
        self.send(encode_error(m.Error(code=refusal.code, message=refusal.message)))

    def kick(self, code: Code, reason: str) -> None:
        if self.kicked is None:
            self.kicked = (code, reason)
        self.closed = True

    # -- what a test does as the client -------------------------------------
    def push(self, msg: m.ClientMessage | GameMessage) -> None:
        """Send a message to the room (validated, as a connection passes it
        on); the room's next tick reads it."""
        assert self.accepted is not None
        self.received.append(msg)

    def drop(self, *, left: bool = False) -> None:
        """The connection goes away (``left``: after a "leave")."""
        self.left = left
        self.closed = True

    @property
    def player(self) -> int:
        assert self.accepted is not None
        return self.accepted.player


async def join(
    room: Room,
    *,
    name: str = "p",
    session: str | None = None,
    ack: int = m.NO_TICK,
    client: ClientSession | None = None,
    **link_opts,
) -> FakeLink:
    """Join through the room's real join path. ``client``: an existing
    ClientSession to continue (a rejoin by the same client)."""
    link = FakeLink(**link_opts)
    if client is not None:
        link.session = client
    link.accepted = await room.join(m.Join(version=m.PROTOCOL_VERSION, name=name, session=session, ack=ack), link)
    return link


async def run_ticks(room: Room, n: int) -> None:
    """Let the room run ``n`` more ticks (under an autojump MockClock)."""
    target = room.game.tick + n
    while room.game.tick < target:
        if room.closed:
            raise AssertionError(f"room closed at tick {room.game.tick}, before tick {target}")
        # Most of the way in one sleep, then half ticks, so that we stop
        # exactly at ``target`` without a wake-up per tick.
        await trio.sleep((max(target - room.game.tick - 1, 0) + 0.5) / room.config.tick_rate)


class CuttableStore:
    """Wraps a real store (memory or Redis) so that a test or benchmark can
    cut a node off from it: every call then raises StoreUnavailable, as when
    Redis is unreachable or the node has crashed."""

    def __init__(self, store, *, why: str = "cut off") -> None:
        self.store = store
        self.cut = False
        self.why = why

    def __getattr__(self, name: str):
        from tickroom.server.cluster.store.base import StoreUnavailable

        method = getattr(self.store, name)

        async def call(*args, **kwargs):
            if self.cut:
                await trio.lowlevel.checkpoint()
                raise StoreUnavailable(self.why)
            return await method(*args, **kwargs)

        return call
