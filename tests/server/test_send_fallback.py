"""The send path end to end: a real in-process server, a real room, and a
client on a raw socket that stops reading.

While the client reads, every snapshot is written straight to the socket
from the room's tick (the fast path). When it stops, the kernel's buffers
fill, the rest of a torn frame waits in the outbox and newer snapshots
replace each other in the latest-wins slot (the fallback). When it reads
again, the stream holds whole WebSocket frames only, every one decodes and
applies as a snapshot (no desync), and the newest snapshot arrives last.

The server's socket buffer is shrunk (the test reaches into the in-process
server for its connection) and the room ticks at 100 Hz, so the buffers fill
within a second or two rather than a minute. Every wait has a deadline.
"""

from __future__ import annotations

import os
import socket

import trio

from tests.in_process import serving
from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession
from tickroom.protocol.websocket_frames import FrameParser, client_frame
from tickroom.protocol.websocket_handshake import new_key, parse_upgrade_response, upgrade_request
from tickroom.server.config import ServerConfig
from tickroom.server.node import GameServer

DEADLINE = 10.0  # s
BUFFER = 4096  # bytes asked for the server's SO_SNDBUF and the client's SO_RCVBUF


class RawClient:
    """A blocking-free client socket driven from the test's trio loop."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)  # before connect: a small window
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.parser = FrameParser(16 * 2**20, client=True)
        self.session = ClientSession()
        self.buf = b""

    def send(self, payload: bytes) -> None:
        self.sock.sendall(client_frame(0x2, payload, os.urandom(4)))

    async def recv(self) -> bytes:
        with trio.fail_after(DEADLINE):
            await trio.lowlevel.wait_readable(self.sock)
        return self.sock.recv(65536)

    async def handshake_and_join(self, port: int) -> None:
        key = new_key()
        self.sock.sendall(upgrade_request("127.0.0.1", port, "/", key))
        head = b""
        while (end := parse_upgrade_response(head, key)) is None:
            head += await self.recv()
        self.buf = head[end:]
        self.send(self.session.join(room="fallback", name="slow"))

    def frames(self, data: bytes) -> list[m.ServerMessage]:
        """Parse (a torn stream fails the assertion) and apply (DeltaError on
        a desync) every whole frame in what arrived."""
        out = []
        for event in self.parser.receive(data):
            assert type(event) is bytes, f"{event!r}: only binary frames are expected"
            out.append(self.session.receive(event))
        return out


async def test_a_client_that_stops_reading_falls_back_to_the_slot_and_then_reads_valid_frames_only():
    config = ServerConfig(
        host="127.0.0.1", port=0, tick_rate=100, ack_timeout_s=60.0, idle_timeout_s=60.0, stats_interval_s=0,
        graceful_timeout_s=2.0,
    )  # fmt: skip
    server = GameServer(config)
    async with serving(server):
        port = server.ports[0]
        client = RawClient(port)
        await client.handshake_and_join(port)
        messages = client.frames(client.buf)
        with trio.fail_after(DEADLINE):
            while not any(isinstance(msg, m.Snapshot) for msg in messages):
                messages += client.frames(await client.recv())
        assert isinstance(messages[0], m.Welcome)
        (conn,) = server.connections
        conn.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
        outbox = conn.ws.outbox
        # Fast path so far: every frame went straight into the socket.
        assert outbox.statistics().pending_bytes == 0
        # Ack what we have, so that later snapshots are deltas against it.
        client.send(client.session.ack())

        # Stop reading until the fallback is in use: a torn frame pending
        # and newer snapshots replacing each other in the slot.
        with trio.fail_after(DEADLINE):
            while outbox.statistics().snapshots_replaced < 10:
                await trio.sleep(0.01)
        assert outbox.statistics().pending_bytes > 0
        stalled_at = conn.joined.room_tick()

        # Read again: whole frames only, every one applies, ticks ascend, and
        # the stream catches up past the stall.
        snapshots = [msg for msg in messages if isinstance(msg, m.Snapshot)]
        with trio.fail_after(DEADLINE):
            while not snapshots or snapshots[-1].tick <= stalled_at + 5:
                for msg in client.frames(await client.recv()):
                    assert isinstance(msg, m.Snapshot), msg
                    snapshots.append(msg)
        ticks = [snap.tick for snap in snapshots]
        assert ticks == sorted(set(ticks))
        assert client.session.desyncs == 0
        assert client.session.world is not None and client.session.world.tick == ticks[-1]
        # Some ticks were skipped while the client did not read: latest wins.
        assert ticks[-1] - ticks[0] + 1 > len(ticks)
        client.sock.close()
