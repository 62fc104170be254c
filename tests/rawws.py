"""A raw WebSocket client for attack tests: the upgrade through wsproto, then
hand-made frames (tickroom.protocol.websocket_frames in the client role), so a
test can send what no well-behaved library would: floods of pings, pongs or
empty continuation frames, at whatever rate it likes.

Every wait is bounded by a deadline; nothing here sleeps for a fixed time.
"""

from __future__ import annotations

import os
import ssl

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession
from tickroom.protocol.websocket_frames import CloseFrame, FrameParser, PongFrame, client_frame

DEADLINE_S = 10.0
OP_CONTINUATION, OP_BINARY, OP_PING, OP_PONG = 0x0, 0x2, 0x9, 0xA


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """One masked client frame (FIN clear when ``fin`` is False)."""
    data = client_frame(opcode, payload, os.urandom(4))
    return data if fin else bytes((data[0] & 0x7F,)) + data[1:]


class RawWebSocket:
    """One upgraded connection; ``messages`` and ``close_code`` fill in as
    ``read_until_closed`` (or ``read_some``) reads the server's frames."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.session = ClientSession()
        self.parser = FrameParser(16 * 2**20, client=True)
        self.messages: list[m.ServerMessage] = []
        self.close_code: int | None = None
        self.pongs = 0

    @classmethod
    async def connect(cls, host: str, port: int, *, tls: ssl.SSLContext | None = None) -> RawWebSocket:
        """Open the TCP (or TLS) connection and complete the upgrade."""
        with trio.fail_after(DEADLINE_S):
            stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
            if tls is not None:
                stream = trio.SSLStream(stream, tls, server_hostname="localhost")
            handshake = WSConnection(ConnectionType.CLIENT)
            await stream.send_all(handshake.send(Request(host=host, target="/")))
            raw = cls(stream)
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    raise ConnectionError("EOF during the upgrade")
                head, sep, rest = data.partition(b"\r\n\r\n")
                handshake.receive_data(head + sep)
                if any(isinstance(event, AcceptConnection) for event in handshake.events()):
                    raw._feed(rest)
                    return raw

    async def send(self, data: bytes) -> None:
        """Send bytes; a server that already closed is not an error here."""
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def join(self, room: str, name: str = "raw") -> m.Welcome:
        """Send a join and read until the welcome."""
        await self.send(frame(OP_BINARY, self.session.join(room=room, name=name)))
        with trio.fail_after(DEADLINE_S):
            while True:
                await self.read_some()
                for msg in self.messages:
                    if isinstance(msg, m.Welcome):
                        return msg
                if self.close_code is not None:
                    raise ConnectionError(f"closed {self.close_code} before the welcome")

    async def read_some(self) -> bool:
        """Read once; False at EOF."""
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            if self.close_code is None:
                self.close_code = 1006
            return False
        self._feed(data)
        return True

    async def read_until_closed(self, timeout: float = DEADLINE_S) -> int:
        """Read until the server's close frame or EOF; the close code
        (1006 without a close frame)."""
        with trio.fail_after(timeout):
            while self.close_code is None and await self.read_some():
                pass
        assert self.close_code is not None
        return self.close_code

    def errors(self) -> list[int]:
        return [msg.code for msg in self.messages if isinstance(msg, m.Error)]

    async def aclose(self) -> None:
        with trio.move_on_after(1):
            await self.stream.aclose()

    def _feed(self, data: bytes) -> None:
        for event in self.parser.receive(data):
            if type(event) is bytes:
                msg = self.session.receive(event)
                if not isinstance(msg, m.Snapshot):
                    self.messages.append(msg)
            elif isinstance(event, CloseFrame):
                self.close_code = event.code
            elif isinstance(event, PongFrame):
                self.pongs += 1


async def rtts_at_two_messages_per_tick(
    ws: RawWebSocket, seconds: float, tick_rate: int, ping_every: int
) -> list[tuple[float, float]]:
    """Send two messages every tick for ``seconds`` (an input, then a ping
    every ``ping_every`` ticks or a second input), stopping early if the
    server closes; the pings' round trips as (seconds since the start, round
    trip). A server that reads one message per tick builds a backlog here
    (the wss:// record bug of the hardening issue): the round trips grow."""
    sent: dict[int, float] = {}
    rtts: list[tuple[float, float]] = []
    t0 = trio.current_time()

    async def read() -> None:
        while await ws.read_some():
            while ws.messages:
                msg = ws.messages.pop(0)
                if isinstance(msg, m.Pong) and msg.id in sent:
                    now = trio.current_time()
                    rtts.append((now - t0, now - sent.pop(msg.id)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        tick = 0
        while trio.current_time() - t0 < seconds and ws.close_code is None:
            await ws.send(frame(OP_BINARY, ws.session.input(mx=1.0)))
            if tick % ping_every == 0:
                payload = ws.session.ping()
                sent[ws.session.ping_id] = trio.current_time()
                await ws.send(frame(OP_BINARY, payload))
            else:
                await ws.send(frame(OP_BINARY, ws.session.input(mx=0.5)))
            tick += 1
            await trio.sleep_until(t0 + tick / tick_rate)
        nursery.cancel_scope.cancel()
    return rtts
