"""The server's WebSocket transport: wsproto for the handshake and parsing,
our own framing for what we send.

We own the socket (a non-blocking stdlib socket, waited on with
trio.lowlevel.wait_readable/wait_writable) instead of using trio-websocket's
server so that:
- a frame over the size limit is refused while it arrives, with our own
  error message and close code, before it is buffered;
- snapshots are framed once per baseline and written straight to the socket
  by the room's tick (server.outbox), never through a task hop.

Server frames are not masked (RFC 6455 5.1), so one frame's bytes fit every
client. We never fragment and never compress (no extensions negotiated).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections import deque

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError as WSProtocolError

from .outbox import Outbox, OutboxClosed
from .tls import TlsHandshakeFailed, TlsSocket

RECEIVE_BYTES = 64 * 2**10  # 64 KiB per recv: many small frames per syscall
MAX_HANDSHAKE_BYTES = 16 * 2**10  # 16 KiB of HTTP upgrade request, at most
CLOSE_DRAIN_BYTES = 2 * 2**20  # after our close frame, read and discard up to 2 MiB


class ConnectionClosed(Exception):
    """The peer closed (``code``, ``reason`` from its close frame, or 1006 for
    a dropped TCP connection)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


class HandshakeFailed(Exception):
    """The peer did not send a valid WebSocket upgrade request (or failed
    the TLS handshake, or came from an origin we do not allow)."""


class MessageTooBig(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"message of at least {size} bytes")
        self.size = size


class TextFrame(Exception):
    """The peer sent a text message; ours is a binary protocol."""


def binary_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented binary frame (FIN + opcode 0x2)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x82, n))
    elif n < 65536:
        header = struct.pack("!BBH", 0x82, 126, n)
    else:
        header = struct.pack("!BBQ", 0x82, 127, n)
    return header + payload


class ServerWebSocket:
    """One accepted client socket, from the upgrade to the close.

    ``outbox`` writes to the same socket; only this class reads from it.
    The caller owns the socket's lifetime through ``aclose()``.

    With ``tls``, the socket is wrapped in a server.tls.TlsSocket (same
    interface) and ``accept()`` runs the TLS handshake first. With
    ``allowed_origins``, an upgrade whose Origin header is not in the set is
    refused with HTTP 403 (a request without Origin is not from a browser,
    and the allowlist is a browser protection, so it passes).
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        max_message_bytes: int,
        tls: ssl.SSLContext | None = None,
        allowed_origins: frozenset[str] | None = None,
    ) -> None:
        sock.setblocking(False)
        if tls is not None:
            sock = TlsSocket(sock, tls)  # type: ignore[assignment]
        self.sock = sock
        self.allowed_origins = allowed_origins
        self.outbox = Outbox(sock)
        self.max_message_bytes = max_message_bytes
        self.request: Request | None = None
        self.bytes_received = 0
        self._ws = WSConnection(ConnectionType.SERVER)
        self._events: deque = deque()
        self._message = bytearray()
        self._message_is_text = False
        self._eof = False
        self._closed = False

    # -- handshake ---------------------------------------------------------

    async def accept(self) -> Request:
        """Read the HTTP upgrade request and accept it.

        Raises HandshakeFailed (after answering 400, or 403 for a refused
        Origin) for anything else. Callers bound this with a timeout
        (slowloris), which covers the TLS handshake too.
        """
        if isinstance(self.sock, TlsSocket):
            try:
                await self.sock.do_handshake()
            except TlsHandshakeFailed as exc:
                raise HandshakeFailed(f"TLS: {exc}") from None
        received = 0
        while self.request is None:
            data = await self._recv()
            received += len(data)
            if not data or received > MAX_HANDSHAKE_BYTES:
                raise HandshakeFailed("no complete upgrade request")
            try:
                self._ws.receive_data(data)
                for event in self._ws.events():
                    if isinstance(event, Request):
                        self._check_origin(event)
                        self.request = event
                    else:
                        self._events.append(event)
            except WSProtocolError as exc:
                hint = exc.event_hint or RejectConnection(status_code=400)
                # A best-effort answer to a peer that is not speaking
                # WebSocket; whatever goes wrong with it changes nothing.
                with contextlib.suppress(Exception):
                    self.outbox.send(self._ws.send(hint))
                raise HandshakeFailed(str(exc)) from None
        self.outbox.send(self._ws.send(AcceptConnection()))
        return self.request

    # -- receiving ---------------------------------------------------------

    async def receive_message(self) -> bytes:
        """The next complete binary message.

        Raises ConnectionClosed, MessageTooBig (as soon as the limit is
        passed, before the rest arrives), TextFrame, or OutboxOverflow
        (pings keep coming and their pongs pile up unread).
        """
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, (BytesMessage, TextMessage)):
                    if not self._message:
                        self._message_is_text = isinstance(event, TextMessage)
                    chunk = event.data.encode() if isinstance(event, TextMessage) else event.data
                    if len(self._message) + len(chunk) > self.max_message_bytes:
                        size = len(self._message) + len(chunk)
                        self._message.clear()
                        raise MessageTooBig(size)
                    self._message += chunk
                    if event.message_finished:
                        data, is_text = bytes(self._message), self._message_is_text
                        self._message.clear()
                        if is_text:
                            raise TextFrame()
                        return data
                elif isinstance(event, Ping):
                    self._send_control(event.response())
                elif isinstance(event, CloseConnection):
                    if self._ws.state is ConnectionState.REMOTE_CLOSING:
                        self._send_control(event.response())
                    raise ConnectionClosed(event.code, event.reason or "")
                # Pong and anything else: nothing to do.
            if self._eof:
                raise ConnectionClosed(1006, "connection lost")
            data = await self._recv()
            if not data:
                self._eof = True
            try:
                self._ws.receive_data(data or None)
                self._events.extend(self._ws.events())
            except WSProtocolError as exc:
                raise ConnectionClosed(1002, f"WebSocket protocol error: {exc}") from None

    # -- sending and closing -----------------------------------------------

    def send_message(self, payload: bytes) -> None:
        """Send a reliable message (welcome, pong, error)."""
        self.outbox.send(binary_frame(payload))

    async def aclose(self, code: int = 1000, reason: str = "", *, timeout: float = 2.0) -> None:
        """Close: our close frame, then wait (bounded) for the peer's, then
        the socket. Idempotent; safe to call from a cancelled scope."""
        if self._closed:
            return
        self._closed = True
        if self.request is None:
            # Never upgraded: no WebSocket to close politely, and no close
            # reply to wait for.
            timeout = 0
        with trio.move_on_after(timeout, shield=True):
            if self._ws.state is ConnectionState.OPEN:
                # Best effort: the socket may already be gone.
                with contextlib.suppress(Exception):
                    self._send_control(CloseConnection(code=code, reason=reason[:120]))
            self.outbox.close()
            await self.outbox.wait_drained()
            # Read (and drop) until the peer answers or hangs up, so that the
            # kernel does not reset the connection over unread data and
            # destroy our close frame before the client reads it.
            drained = 0
            while not self._eof and self._ws.state is not ConnectionState.CLOSED and drained < CLOSE_DRAIN_BYTES:
                data = await self._recv()
                drained += len(data)
                if not data:
                    break
                try:
                    self._ws.receive_data(data)
                    for _ in self._ws.events():
                        pass
                except WSProtocolError:
                    break
        self.outbox.close()
        if isinstance(self.sock, TlsSocket):
            self.sock.close_notify()
        trio.lowlevel.notify_closing(self.sock)
        self.sock.close()

    # -- internals -----------------------------------------------------------

    def _check_origin(self, request: Request) -> None:
        if not self.allowed_origins:
            return
        for name, value in request.extra_headers:
            if name.lower() == b"origin":
                origin = bytes(value).decode("latin-1").strip().lower()
                if origin not in self.allowed_origins:
                    raise WSProtocolError(
                        f"origin {origin[:100]!r} not allowed", event_hint=RejectConnection(status_code=403)
                    )
                return

    def _send_control(self, event) -> None:
        """Answer a ping or a close. Raises OutboxOverflow (the peer does not
        read); after the outbox closed (our close, a dead socket) there is
        nobody to answer, which is not an error."""
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            try:
                self.outbox.send(self._ws.send(event))
            except OutboxClosed:
                pass

    async def _recv(self) -> bytes:
        while True:
            try:
                data = self.sock.recv(RECEIVE_BYTES)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self.sock)
                continue
            except OSError:
                return b""
            self.bytes_received += len(data)
            # Give others a turn even when data keeps coming (trio's rule:
            # async functions always checkpoint).
            await trio.lowlevel.checkpoint()
            return data
