"""One client connection: WebSocket upgrade, join, then inputs to the room.

A Connection is the room's ClientLink for one socket. Its task does the
upgrade and reads the join through the sans-IO ServerSession. Once the player
is in a room, the task only keeps the idle timer: the room's tick reads the
socket itself (``take_inputs``: one non-blocking recv, every frame in it
parsed and validated), so a player costs no task wake-up per message
(docs/benchmarks.md, "What changed": the reader task and its channel hop are
what saturate a core with stock trio-websocket). Snapshots from the room go
straight to the socket through the outbox; the outbox's flusher is the only
other task.

Every way out ends in ``_finish``: an error message when the close has a
4xxx code, the close frame, a bounded wait for the peer's, and the socket
closed. The room learns of it through ``closed`` at its next tick.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections import Counter
from dataclasses import dataclass
from typing import Protocol, cast

import trio

from tickroom.protocol import messages as m
from tickroom.protocol.codec import MAX_CLIENT_MESSAGE_BYTES, encode_error, encode_pong, encode_redirect
from tickroom.protocol.errors import Code, RemoteProtocolError
from tickroom.protocol.game_messages import GameMessage, GameMessageGate
from tickroom.protocol.session import RATE_PER_TICK, STRIKE_LIMIT, ServerSession
from tickroom.protocol.websocket_frames import binary_frame
from tickroom.server.rooms.log_context import ROOM_ID
from tickroom.server.rooms.registry import RoomRegistry
from tickroom.server.rooms.room import JoinAccepted, JoinRefused
from tickroom.server.transport.outbox import OutboxClosed, OutboxOverflow
from tickroom.server.transport.websocket import (
    ConnectionClosed,
    ControlFrames,
    HandshakeFailed,
    MessageTooBig,
    ServerWebSocket,
    TextFrame,
)

log = logging.getLogger(__name__)

_NOTHING: list = []  # take_inputs' answer when nothing came (shared: never mutated)


class JoinGate(Protocol):
    """Asked before each fresh join (tickroom.server.ops.overload.LoadGovernor)."""

    async def admit_join(self, link: object) -> tuple[Code, str] | None:
        """None lets the join on ``link`` (the connection) in, else the refusal's code and message.
        May wait (well under a second) for the node's next measure; cancelled, it admitted nothing."""
        ...

    def join_done(self, link: object) -> None:
        """The join admitted on ``link`` was answered (seated or refused)."""
        ...


@dataclass(frozen=True)
class ConnectionLimits:
    max_message_bytes: int = MAX_CLIENT_MESSAGE_BYTES  # per client frame
    handshake_timeout_s: float = 10.0  # from TCP accept to a valid "join"
    idle_timeout_s: float = 30.0  # nothing at all received for this long
    close_timeout_s: float = 2.0  # waiting for the peer's close frame
    rate_per_tick: float = RATE_PER_TICK  # client messages per tick, on average
    strike_limit: int = STRIKE_LIMIT  # recoverable errors in a burst before closing
    allowed_origins: frozenset[str] = frozenset()  # browser Origins let in; empty: all


class Connection:
    """A client socket from accept to close; the room's ClientLink.

    ``tls``: serve TLS on this socket (tickroom.server.transport.tls), the handshake bounded by
    the handshake timeout.
    """

    def __init__(self, sock: socket.socket, limits: ConnectionLimits, *, tls: ssl.SSLContext | None = None) -> None:
        self.ws = ServerWebSocket(
            sock,
            max_message_bytes=limits.max_message_bytes,
            tls=tls,
            allowed_origins=limits.allowed_origins,
        )
        self.limits = limits
        self.session = ServerSession(
            max_message_bytes=limits.max_message_bytes,
            rate_per_tick=limits.rate_per_tick,
            strike_limit=limits.strike_limit,
        )
        try:
            host, port = sock.getpeername()[:2]
            self.peer = f"{host}:{port}"
        except OSError:
            self.peer = "?"
        self.closed = False
        self.left = False
        self.inputs_dropped = 0  # metrics (room_busy): 0 since the room reads us itself and never drops
        self.messages_received = 0  # client messages read (for metrics)
        self.refusals: Counter[int] = Counter()  # error code -> messages refused (for metrics)
        self.join_refused: Code | None = None  # the registry refused the join with this code (for metrics)
        self.joined: JoinAccepted | None = None
        self._scope = trio.CancelScope()
        self._close: tuple[int, str] | None = None
        self._peer_closed = False
        self._error_sent = False
        self._heard_at = 0.0  # trio time of the last client message (idle timer)
        self._gate: JoinGate | None = None

    # -- ClientLink ------------------------------------------------------------

    def offer(self, payload: bytes) -> None:
        self.ws.outbox.offer(binary_frame(payload))

    def send(self, payload: bytes) -> None:
        try:
            self.ws.send_message(payload)
        except OutboxOverflow as exc:
            self.kick(Code.ACK_TIMEOUT, str(exc))
        except OutboxClosed:
            pass

    def kick(self, code: Code, reason: str) -> None:
        """Close with ``code``: the first reason given wins. Never blocks."""
        self._set_close(code, reason)
        self._scope.cancel()

    # -- the connection task ---------------------------------------------------

    async def serve(
        self, registry: RoomRegistry, *, refuse: tuple[Code, str] | None = None, gate: JoinGate | None = None
    ) -> None:
        """Run the connection to its end. Never raises (the per-connection
        fence), except trio.Cancelled.

        ``refuse``: complete the WebSocket upgrade, then send this error and
        close with its code (a connection limit was reached): a browser sees
        a reason instead of a failed handshake.

        ``gate``: asked before a fresh join (not a rejoin) goes to the
        registry; the code and message it answers refuse the join (4203:
        the node is over capacity, tickroom.server.ops.overload).
        """
        self._gate = gate
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._flush)
                    try:
                        if await self._join(registry, refuse):
                            await self._wait_in_room()
                    finally:
                        nursery.cancel_scope.cancel()
        except Exception:  # the fence: a bug here ends this connection only
            room_id = self.joined.room_id if self.joined is not None else ""
            # Sentry tags the event from these (tickroom.server.ops.sentry).
            log.exception("connection %s failed", self.peer, extra={"room_id": room_id, "tick": self._room_tick()})
            self._set_close(Code.INTERNAL_ERROR, "internal error")
        finally:
            await self._finish()

    async def _join(self, registry: RoomRegistry, refuse: tuple[Code, str] | None = None) -> bool:
        with trio.move_on_after(self.limits.handshake_timeout_s) as timer:
            try:
                await self.ws.accept()
            except HandshakeFailed as exc:
                log.debug("connection %s: not a WebSocket upgrade: %s", self.peer, exc)
                self._set_close(1002, "")
                return False
            if refuse is not None:
                self._set_close(*refuse)
                return False
            data = await self._receive()
            if data is None:
                return False
            try:
                # Before the join the session returns nothing but a Join (it raises for the rest).
                join = cast(m.Join, self.session.receive_message(data, trio.current_time()))
            except RemoteProtocolError as exc:
                self._refuse(exc)
                return False
        if timer.cancelled_caught:
            self._set_close(Code.HANDSHAKE_TIMEOUT, f"no 'join' within {self.limits.handshake_timeout_s:g} s")
            return False
        gate = self._gate if join.session is None else None  # a rejoin is a player held already
        if gate is not None and (refused := await gate.admit_join(self)) is not None:
            self.join_refused = refused[0]
            self._set_close(*refused)
            return False
        try:
            # The source address counts the rooms this client creates (room spam, 4012).
            self.joined = await registry.join(join, self, address=self.peer.rpartition(":")[0] or None)
        except JoinRefused as exc:
            if exc.url is not None:
                self.send(encode_redirect(m.Redirect(room=join.room or "", url=exc.url)))
            if exc.code != Code.REDIRECT:  # a redirect serves the client elsewhere: not a refusal
                self.join_refused = exc.code
            self._set_close(exc.code, exc.message)
            return False
        finally:
            if gate is not None:
                gate.join_done(self)
        self.session.joined(self.joined.input_fields, self.joined.tick_rate, trio.current_time())
        self.session.game_messages = GameMessageGate(self.joined.message_types, trio.current_time())
        ROOM_ID.set(self.joined.room_id)  # this task's lines carry the room id (tickroom.server.rooms.log_context)
        return True

    async def _wait_in_room(self) -> None:
        """In a room: the room's tick reads this socket (``take_inputs``);
        the task keeps the idle timer and waits for the end (a kick, or
        ``take_inputs`` finding the connection over, cancels ``_scope``)."""
        assert self.joined is not None
        idle = self.limits.idle_timeout_s
        self._heard_at = trio.current_time()
        while True:
            deadline = self._heard_at + idle
            if trio.current_time() >= deadline:
                self._set_close(Code.IDLE_TIMEOUT, f"nothing received for {idle:g} s")
                return
            await trio.sleep_until(deadline)

    def take_inputs(self) -> list:
        """What the client sent since the last tick: its inputs and acks,
        in order (acks and version 1 inputs validated, version 2 input rows
        as bytes of the room's row length: the room validates a tick's rows
        at once and answers a bad one through ``refuse``). Called by the
        room's tick; never blocks.

        Answers pings, refuses bad messages (a strike, or the close) and
        ends the connection on a close frame, a leave or a fatal error,
        exactly as the awaiting read path does before the join.
        """
        if self.joined is None or self._close is not None:
            return _NOTHING  # not ready (the join reply is on its way) or ending
        try:
            items = self.ws.receive_available()
        except OutboxOverflow as exc:  # WebSocket pings whose pongs pile up unread
            self._end(Code.ACK_TIMEOUT, str(exc))
            return _NOTHING
        if not items:
            return _NOTHING
        now = trio.current_time()
        out = []
        session = self.session
        for item in items:
            if type(item) is not bytes:
                if not self._receive_failed(item):
                    continue
                self._scope.cancel()
                break
            self.messages_received += 1
            self._heard_at = now
            try:
                msg = session.receive_message(item, now)
            except RemoteProtocolError as exc:
                self._refuse(exc)
                if exc.fatal:
                    self._scope.cancel()
                    break
                continue
            kind = type(msg)
            if kind is bytes or kind is m.Input or kind is m.Ack or kind is GameMessage:
                out.append(msg)  # a version 2 input row (bytes): the room's batch validates it
            elif isinstance(msg, m.Ping):
                self.send(encode_pong(m.Pong(id=msg.id, tick=self._room_tick())))
            elif isinstance(msg, m.Leave):
                self.left = True
                self._end(Code.NORMAL, "left")
                break
        return out

    def refuse(self, refusal: RemoteProtocolError) -> None:
        """The room refused one of our input rows: the strike (and, past
        the limit, the close) is counted as for any refusal of ours."""
        if self._close is not None:
            return
        refusal = self.session.refuse(refusal, trio.current_time())
        self._refuse(refusal)
        if refusal.fatal:
            self._scope.cancel()

    def _end(self, code: int, reason: str) -> None:
        self._set_close(code, reason)
        self._scope.cancel()

    async def _receive(self) -> bytes | None:
        """The next client message, or None when the connection is over
        (the close code is then set)."""
        while True:
            try:
                data = await self.ws.receive_message()
            except (ConnectionClosed, ControlFrames, MessageTooBig, TextFrame) as exc:
                if self._receive_failed(exc):
                    return None
                continue
            except OutboxOverflow as exc:
                # WebSocket pings from a peer that reads none of the pongs.
                self._set_close(Code.ACK_TIMEOUT, str(exc))
                return None
            self.messages_received += 1
            return data

    def _receive_failed(self, exc: Exception) -> bool:
        """Handle what the transport raised instead of a message; True if
        the connection is over (the close code is then set)."""
        if isinstance(exc, ConnectionClosed):
            self._set_close(exc.code, exc.reason, peer_closed=True)
            return True
        if isinstance(exc, ControlFrames):
            # Pings and pongs share the message budget: a flood of them is
            # refused and closed like a flood of messages (4006).
            try:
                self.session.control_frames(exc.count, trio.current_time())
            except RemoteProtocolError as refusal:
                self._refuse(refusal)
                return refusal.fatal
            return False
        if isinstance(exc, MessageTooBig):
            try:
                self.session.check_size(exc.size)
            except RemoteProtocolError as refusal:
                self._refuse(refusal)
            return True
        text_refusal = self.session.text_frame(trio.current_time())  # a TextFrame
        self._refuse(text_refusal)
        return text_refusal.fatal

    async def _flush(self) -> None:
        try:
            await self.ws.outbox.run()
        except OutboxClosed:
            self._set_close(1006, "socket error")
            self._scope.cancel()

    # -- the end ---------------------------------------------------------------

    def _refuse(self, exc: RemoteProtocolError) -> None:
        """Tell the client what was wrong; remember the close code if fatal."""
        self.refusals[int(exc.code)] += 1
        self.send(encode_error(m.Error(code=exc.code, message=exc.message)))
        if exc.fatal:
            self._set_close(exc.code, exc.message, error_sent=True)

    def _set_close(self, code: int, reason: str, *, peer_closed: bool = False, error_sent: bool = False) -> None:
        """Remember how the connection ends; the first cause wins."""
        if self._close is None:
            self._close = (int(code), reason)
            self._peer_closed = peer_closed
            self._error_sent = error_sent

    async def _finish(self) -> None:
        self.closed = True
        self.session.close()
        code, reason = self._close or (int(Code.NORMAL), "")
        upgraded = self.ws.request is not None  # before the upgrade, no frames at all
        if upgraded and code >= 4000 and not self._error_sent and not self._peer_closed:
            # The close reason is limited to 123 bytes and many client APIs
            # hide it; the error message carries the full text.
            self.send(encode_error(m.Error(code=code, message=reason)))
        await self.ws.aclose(code, reason, timeout=self.limits.close_timeout_s)
        if code not in (Code.NORMAL, 1006) and not self._peer_closed:
            # Debug, not info: one client looping connect/close would write
            # thousands of lines a second. The refusals by code are in
            # /metrics (tickroom_messages_refused_total) for the operator.
            log.debug("connection %s closed: %s %s", self.peer, code, reason)

    def _room_tick(self) -> int:
        if self.joined is None:
            return 0
        return self.joined.room_tick()
