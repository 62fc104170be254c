"""The server's WebSocket transport: wsproto for the HTTP upgrade, our own
frame parser (tickroom.protocol.websocket_frames) and framing for everything after it.

We own the socket (a non-blocking stdlib socket, waited on with
trio.lowlevel.wait_readable/wait_writable) instead of using trio-websocket's
server so that:
- a frame over the size limit is refused as soon as its header arrives, with
  our own error message and close code, before it is buffered;
- snapshots are framed once per baseline and written straight to the socket
  by the room's tick (tickroom.server.transport.outbox), never through a task hop;
- a player's frames are read by the room's tick itself (``receive_available``:
  one non-blocking recv, every complete message parsed from it), instead of by
  a reader task per connection. A reader task with wsproto events costs
  ~60 us per message; reading every socket once per tick amortises the
  scheduler, and the minimal parser costs about 1 us (docs/benchmarks.md,
  "What changed").

Before the join (and while closing) the connection's own task reads with the
awaiting ``receive_message``; both read paths share one parser, so bytes that
arrive with the upgrade request or the join are never lost.

Server frames are not masked (RFC 6455 5.1), so one frame's bytes fit every
client. We never fragment and never compress (no extensions negotiated).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections import deque

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, Request
from wsproto.utilities import RemoteProtocolError as WSProtocolError

from tickroom.protocol.websocket_frames import (
    CloseFrame,
    FrameParser,
    PingFrame,
    PongFrame,
    ProtocolViolation,
    TextMessage,
    binary_frame,
    close_frame,
    pong_frame,
)
from tickroom.protocol.websocket_frames import MessageTooBig as TooBigFrame
from tickroom.server.transport.fast_upgrade import fast_upgrade
from tickroom.server.transport.outbox import Outbox, OutboxClosed
from tickroom.server.transport.tls import TlsHandshakeFailed, TlsSocket

RECEIVE_BYTES = 64 * 2**10  # 64 KiB per recv: many small frames per syscall
MAX_HANDSHAKE_BYTES = 16 * 2**10  # 16 KiB of HTTP upgrade request, at most
CLOSE_DRAIN_BYTES = 2 * 2**20  # after our close frame, read and discard up to 2 MiB
HTTP_REFUSAL_LINGER_S = 1.0  # after an HTTP 400/403 answer, drain the peer's rest this long at most
_TOO_LONG_BODY = b"the upgrade request is over 16 KiB long\r\n"
_TOO_LONG_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    + f"Content-Length: {len(_TOO_LONG_BODY)}\r\n\r\n".encode()
    + _TOO_LONG_BODY
)
_END_OF_HEAD = b"\r\n\r\n"
_EMPTY_CLOSE = b"\x88\x00"  # a close frame without a status code (answers one)


class ConnectionClosed(Exception):
    """The peer closed (``code``, ``reason`` from its close frame, or 1006 for
    a dropped TCP connection), or broke the WebSocket protocol (1002, 1007)."""

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


class ControlFrames(Exception):
    """The peer sent ``count`` Ping/Pong frames in one read.

    Not an error by itself: the caller charges them to the connection's
    budget (tickroom.protocol.session.ServerSession.control_frames), so that
    a ping or pong flood is rate-limited and closed like a message flood.
    The newest Ping of the read has been answered already; older ones of the
    same read are not (RFC 6455 5.5.3 allows answering only the newest).
    """

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} control frames")
        self.count = count


class ServerWebSocket:
    """One accepted client socket, from the upgrade to the close.

    ``outbox`` writes to the same socket; only this class reads from it.
    The caller owns the socket's lifetime through ``aclose()``.

    With ``tls``, the socket is wrapped in a tickroom.server.transport.tls.TlsSocket (same
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
        self._handshake = WSConnection(ConnectionType.SERVER)
        self._parser = FrameParser(max_message_bytes)
        # Parsed, not yet taken: bytes (a message) or the exception that
        # receive_message raises for it, in arrival order.
        self._items: deque = deque()
        self._message_began = 0  # bytes_received when the message being read began
        self._eof = False
        self._close_sent = False
        self._close_received = False
        self._closed = False
        self._answered_http = False  # an HTTP refusal (400, 403) was sent instead of the upgrade

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
        # wsproto gets the request's bytes only: whatever follows them (a
        # client may send its join before our answer) is frames, and ours.
        head = bytearray()
        while (end := head.find(_END_OF_HEAD)) < 0:
            if len(head) > MAX_HANDSHAKE_BYTES:
                self._refuse_too_long()
            data = await self._recv()
            if not data:
                raise HandshakeFailed("no complete upgrade request")
            head += data
        end += len(_END_OF_HEAD)
        if end > MAX_HANDSHAKE_BYTES:
            self._refuse_too_long()
        fast = fast_upgrade(bytes(head[:end]))
        if fast is not None and self._origin_allowed(fast[0]):
            # The common upgrade, without wsproto (tickroom.server.transport.fast_upgrade).
            self.request, answer = fast
        else:
            answer = self._upgrade_with_wsproto(bytes(head[:end]))
        self.outbox.send(answer)
        self._message_began = self.bytes_received - (len(head) - end)
        if len(head) > end:
            self._parse(bytes(head[end:]))
        assert self.request is not None  # set by either path, or it raised
        return self.request

    def _upgrade_with_wsproto(self, head: bytes) -> bytes:
        """The 101 for ``head``, read by wsproto; raises HandshakeFailed
        after answering what is not an upgrade (400) or a refused Origin (403)."""
        try:
            self._handshake.receive_data(head)
            for event in self._handshake.events():
                if isinstance(event, Request):
                    self._check_origin(event)
                    self.request = event
            if self.request is None:
                raise WSProtocolError("incomplete upgrade request", event_hint=RejectConnection(status_code=400))
        except WSProtocolError as exc:
            hint = exc.event_hint or RejectConnection(status_code=400)
            # A best-effort answer to a peer that is not speaking
            # WebSocket; whatever goes wrong with it changes nothing.
            with contextlib.suppress(Exception):
                self.outbox.send(self._handshake.send(hint))
                self._answered_http = True
            raise HandshakeFailed(str(exc)) from None
        return self._handshake.send(AcceptConnection())

    def _refuse_too_long(self) -> None:
        """Answer an upgrade request over MAX_HANDSHAKE_BYTES with the
        documented 400 (wsproto never saw it, so the answer is ours), then
        raise HandshakeFailed; ``aclose`` drains the rest so that the answer
        is not destroyed by a reset."""
        with contextlib.suppress(Exception):
            self.outbox.send(_TOO_LONG_ANSWER)
            self._answered_http = True
        raise HandshakeFailed("upgrade request too long")

    # -- receiving ---------------------------------------------------------

    async def receive_message(self) -> bytes:
        """The next complete binary message.

        Raises ConnectionClosed, MessageTooBig (as soon as the frame header
        says the limit is passed, before the rest arrives), TextFrame,
        ControlFrames (Ping/Pong frames arrived: charge them, then call
        again), or OutboxOverflow (the pongs pile up unread).
        """
        while not self._items:
            if self._eof:
                raise ConnectionClosed(1006, "connection lost")
            data = await self._recv()
            if data:
                self._parse(data)
            else:
                self._eof = True
        item = self._items.popleft()
        if type(item) is bytes:
            return item
        raise item

    def receive_available(self) -> list:
        """Every message that has arrived, without waiting: the room's tick
        calls this once per player.

        One recv (64 KiB covers any burst the rate limit lets through; the
        rest waits in the kernel for the next tick, which is backpressure on
        a flooder). Returns, in order, bytes for each complete binary message
        and, for whatever receive_message would raise, the exception itself;
        after a ConnectionClosed or MessageTooBig nothing follows. Raises
        OutboxOverflow like receive_message.
        """
        if not self._eof:
            try:
                data = self.sock.recv(RECEIVE_BYTES)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data:
                self.bytes_received += len(data)
                self._parse(data)
            elif data is not None:
                self._eof = True
                self._items.append(ConnectionClosed(1006, "connection lost"))
        if not self._items:
            return []
        items = list(self._items)
        self._items.clear()
        return items

    def _parse(self, data: bytes) -> None:
        """Feed the parser; queue the messages, and one ControlFrames for
        the Ping/Pong frames among them (where the first one was), answering
        only the newest Ping: one pong per read, however many pings came."""
        items = self._items
        control: ControlFrames | None = None
        ping: bytes | None = None
        for event in self._parser.receive(data):
            if type(event) is bytes:
                items.append(event)
                self._message_began = self.bytes_received
            elif isinstance(event, (PingFrame, PongFrame)):
                if control is None:
                    control = ControlFrames(0)
                    items.append(control)
                control.count += 1
                if isinstance(event, PingFrame):
                    ping = event.payload
            elif isinstance(event, TextMessage):
                items.append(TextFrame())
                self._message_began = self.bytes_received
            elif isinstance(event, CloseFrame):
                self._close_received = True
                # Echo the peer's code (RFC 6455 5.5.1); none for none.
                if event.code == 1005:
                    self._send_control(_EMPTY_CLOSE, closing=True)
                else:
                    self._send_control(close_frame(event.code, event.reason), closing=True)
                items.append(ConnectionClosed(event.code, event.reason))
            elif isinstance(event, TooBigFrame):
                # What has arrived of it (at least the limit plus one), not
                # what its header claims: a liar's header proves nothing.
                seen = self.bytes_received - self._message_began
                items.append(MessageTooBig(max(self.max_message_bytes + 1, min(event.size, seen))))
            elif isinstance(event, ProtocolViolation):
                items.append(ConnectionClosed(event.code, f"WebSocket protocol error: {event.reason}"))
        if ping is not None:
            self._send_control(pong_frame(ping))

    # -- sending and closing -----------------------------------------------

    def send_message(self, payload: bytes) -> None:
        """Send a reliable message (welcome, pong, error)."""
        self.outbox.send(binary_frame(payload))

    async def aclose(self, code: int = 1000, reason: str = "", *, timeout: float = 2.0) -> None:
        """Close: our close frame, then read and drop what the peer sends until
        its close frame or its EOF, then close the socket; the reading is
        bounded by ``timeout`` seconds and CLOSE_DRAIN_BYTES. Idempotent; safe
        to call from a cancelled scope."""
        if self._closed:
            return
        self._closed = True
        if self.request is None:
            # Never upgraded: no WebSocket to close politely, and no close
            # reply to wait for; but an HTTP refusal must reach the client
            # whole, so the rest of its request is drained (briefly).
            timeout = min(timeout, HTTP_REFUSAL_LINGER_S) if self._answered_http else 0
        with trio.move_on_after(timeout, shield=True):
            if self.request is not None and not self._close_received:
                # Best effort: the socket may already be gone.
                with contextlib.suppress(Exception):
                    self._send_control(close_frame(code, reason), closing=True)
            self.outbox.close()
            await self.outbox.wait_drained()
            if self.request is None:
                await self._drain_after_http_refusal()
            else:
                await self._drain_until_peer_closes()
        self.outbox.close()
        if isinstance(self.sock, TlsSocket):
            self.sock.close_notify()
        trio.lowlevel.notify_closing(self.sock)
        self.sock.close()

    # -- internals -----------------------------------------------------------

    async def _drain_until_peer_closes(self) -> None:
        """Read and drop what the peer sends until its close frame or its
        EOF (the caller bounds the time; CLOSE_DRAIN_BYTES bounds the bytes).

        Why: closing a socket with unread data makes the kernel send RST,
        which can destroy our close frame before the client reads it (the
        client then sees 1006 instead of, say, 4002 for a refused frame).
        So this goes on after the parser has finished: after a refused
        frame, past that frame's payload to the peer's close; after a
        protocol violation (no frame boundary left) until its EOF."""
        closing: FrameParser | None = None  # the frames after a refused one
        data = b""
        drained = 0
        while not self._close_received:
            if self._parser.finished:
                rest = self._parser.after_refusal(data)
                if rest:
                    if closing is None:
                        closing = FrameParser(self.max_message_bytes)
                    events = closing.receive(rest)
                else:
                    events = []
            else:
                events = self._parser.receive(data)
            if any(isinstance(event, CloseFrame) for event in events):
                self._close_received = True
                break
            if self._eof or drained >= CLOSE_DRAIN_BYTES:
                break
            data = await self._recv()
            if not data:
                self._eof = True
                break
            drained += len(data)

    async def _drain_after_http_refusal(self) -> None:
        """After an HTTP refusal: say we are done writing, then read and
        drop what the peer still sends until its EOF (CLOSE_DRAIN_BYTES at
        most; the caller bounds the time), so that closing with unread data
        does not reset the connection before the client read our answer."""
        if not isinstance(self.sock, TlsSocket):
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
        drained = 0
        while not self._eof and drained < CLOSE_DRAIN_BYTES:
            data = await self._recv()
            if not data:
                self._eof = True
            drained += len(data)

    def _origin_allowed(self, request: Request) -> bool:
        try:
            self._check_origin(request)
        except WSProtocolError:
            return False  # wsproto reads the request again and answers 403
        return True

    def _check_origin(self, request: Request) -> None:
        if not self.allowed_origins:
            return
        for name, value in request.extra_headers:
            if name.lower() == b"origin":
                # As --allowed-origins is read: case and a trailing "/" do not count.
                origin = bytes(value).decode("latin-1").strip().rstrip("/").lower()
                if origin not in self.allowed_origins:
                    raise WSProtocolError(
                        f"origin {origin[:100]!r} not allowed", event_hint=RejectConnection(status_code=403)
                    )
                return

    def _send_control(self, frame: bytes, *, closing: bool = False) -> None:
        """Send a pong, or with ``closing`` our close frame. Raises
        OutboxOverflow (the peer does not read); after our close frame, or
        after the outbox closed (a dead socket), there is nobody to answer,
        which is not an error."""
        if self._close_sent:
            return
        self._close_sent = closing
        try:
            self.outbox.send(frame)
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
