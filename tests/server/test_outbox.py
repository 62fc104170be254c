"""The outbox over a real socket pair: immediate writes, latest-wins
snapshots behind a partial write, the reliable backlog, close and failure.

The writer's send buffer is made small so the kernel refuses bytes after a few
KiB; the reader is read only when a test says so, waiting with
trio.lowlevel.wait_readable (no sleeps).
"""

from __future__ import annotations

import socket
import struct

import pytest
import trio

from tickroom.protocol.websocket_frames import binary_frame
from tickroom.server.transport.outbox import Outbox, OutboxClosed, OutboxOverflow

BUFFER = 4096  # bytes asked for SO_SNDBUF / SO_RCVBUF (the kernel may round up)
PAYLOAD = 1000  # bytes per test frame: a few frames fill the buffers


@pytest.fixture
def pair():
    writer, reader = socket.socketpair()
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
    writer.setblocking(False)
    reader.setblocking(False)
    yield writer, reader
    writer.close()
    reader.close()


def payload(kind: bytes, n: int, size: int = PAYLOAD) -> bytes:
    """``size`` bytes repeating one 5-byte tag, so a torn frame shows."""
    tag = kind + struct.pack("!I", n)
    return (tag * (size // len(tag) + 1))[:size]


def parse_frames(buf: bytearray) -> list[bytes]:
    """Take the complete frames off the front of ``buf``; return their payloads."""
    out = []
    while len(buf) >= 2:
        assert buf[0] == 0x82, f"not a FIN binary frame header: {bytes(buf[:2])!r}"
        n, start = buf[1], 2
        if n == 126:
            if len(buf) < 4:
                break
            (n,), start = struct.unpack("!H", buf[2:4]), 4
        elif n == 127:
            if len(buf) < 10:
                break
            (n,), start = struct.unpack("!Q", buf[2:10]), 10
        if len(buf) < start + n:
            break
        out.append(bytes(buf[start : start + n]))
        del buf[: start + n]
    return out


def tag_of(frame_payload: bytes) -> tuple[bytes, int]:
    """The frame's (kind, number); asserts the whole payload is that one tag."""
    kind, n = frame_payload[:1], struct.unpack("!I", frame_payload[1:5])[0]
    assert frame_payload == payload(kind, n, len(frame_payload)), "frame bytes interleaved"
    return kind, n


class Reader:
    """The peer: reads what arrives and parses it into frames."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.frames: list[tuple[bytes, int]] = []

    def read_available(self) -> int:
        got = 0
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                break
            if not data:
                break
            got += len(data)
            self.buf += data
        self.frames.extend(tag_of(p) for p in parse_frames(self.buf))
        return got

    async def read_until(self, done) -> None:
        with trio.fail_after(5):
            while True:
                self.read_available()
                if done():
                    return
                await trio.lowlevel.wait_readable(self.sock)


def fill_until_partial(outbox: Outbox) -> int:
    """Offer snapshots until the kernel refuses part of one; their count."""
    n = 0
    while outbox.statistics().pending_bytes == 0:
        outbox.offer(binary_frame(payload(b"s", n)))
        n += 1
        assert n < 10_000, "the socket never filled"
    return n


async def test_offer_writes_at_once_when_the_socket_takes_it(pair):
    writer, reader = pair
    outbox = Outbox(writer)
    frame = binary_frame(payload(b"s", 1))
    outbox.offer(frame)
    # No run() task: the bytes are already in the kernel.
    assert reader.recv(65536) == frame
    stats = outbox.statistics()
    assert (stats.frames_sent, stats.bytes_sent, stats.pending_bytes, stats.snapshots_replaced) == (
        1, len(frame), 0, 0,
    )  # fmt: skip


async def test_a_slow_peer_gets_whole_frames_and_the_newest_snapshot_last(pair, nursery):
    writer, reader = pair
    outbox = Outbox(writer)
    written = fill_until_partial(outbox)
    partial = outbox.statistics().pending_bytes
    assert 0 < partial <= len(binary_frame(payload(b"s", 0)))
    total = written + 500
    for n in range(written, total):
        outbox.offer(binary_frame(payload(b"s", n)))
        # One snapshot waits; the backlog is only the partial frame's rest.
        assert outbox.statistics().pending_bytes == partial
    assert outbox.statistics().snapshots_replaced == 500 - 1

    nursery.start_soon(outbox.run)
    peer = Reader(reader)
    await peer.read_until(lambda: peer.frames and peer.frames[-1] == (b"s", total - 1))
    numbers = [n for _, n in peer.frames]
    # Every frame whole (tag_of checked), in offer order, the skipped ones
    # gone, and the newest offered one is the last to arrive.
    assert numbers == sorted(set(numbers))
    assert numbers[:written] == list(range(written))
    assert numbers[written:] == [total - 1]
    await trio.testing.wait_all_tasks_blocked()
    assert peer.read_available() == 0 and outbox.statistics().pending_bytes == 0


async def test_reliable_frames_queue_in_order_behind_a_partial_write(pair, nursery):
    writer, reader = pair
    outbox = Outbox(writer)
    written = fill_until_partial(outbox)
    partial = outbox.statistics().pending_bytes
    reliable = [binary_frame(payload(b"r", i, 100)) for i in range(50)]
    for i, frame in enumerate(reliable):
        outbox.send(frame)
        outbox.offer(binary_frame(payload(b"s", written + i)))  # snapshots in between
    assert outbox.statistics().pending_bytes == partial + sum(map(len, reliable))

    nursery.start_soon(outbox.run)
    peer = Reader(reader)
    last_snapshot = (b"s", written + len(reliable) - 1)
    await peer.read_until(lambda: last_snapshot in peer.frames)
    assert [n for kind, n in peer.frames if kind == b"r"] == list(range(50))
    # The reliable frames were all sent before the one waiting snapshot.
    assert peer.frames[written:] == [(b"r", i) for i in range(50)] + [last_snapshot]
    with trio.fail_after(5):
        await outbox.wait_drained()


async def test_a_reliable_backlog_over_the_limit_overflows(pair):
    writer, _reader = pair
    outbox = Outbox(writer, max_pending_bytes=8192)
    fill_until_partial(outbox)
    frame = binary_frame(payload(b"r", 0, 500))
    with pytest.raises(OutboxOverflow):
        for _ in range(100):
            outbox.send(frame)
    assert outbox.statistics().pending_bytes <= 8192
    assert not outbox.closed  # the caller decides what to do with the client


async def test_close_drops_the_waiting_snapshot_and_flushes_the_rest(pair, nursery):
    writer, reader = pair
    outbox = Outbox(writer)
    written = fill_until_partial(outbox)
    outbox.send(binary_frame(payload(b"r", 0, 100)))
    outbox.offer(binary_frame(payload(b"s", 9999)))  # waits in the slot
    outbox.close()
    outbox.close()  # idempotent
    with pytest.raises(OutboxClosed):
        outbox.send(binary_frame(payload(b"r", 1, 100)))
    before = outbox.statistics()
    outbox.offer(binary_frame(payload(b"s", 10_000)))  # a no-op now
    assert outbox.statistics() == before

    run_returned = trio.Event()

    async def run() -> None:
        await outbox.run()
        run_returned.set()

    nursery.start_soon(run)
    peer = Reader(reader)
    await peer.read_until(run_returned.is_set)
    peer.read_available()
    assert peer.frames == [(b"s", n) for n in range(written)] + [(b"r", 0)]
    assert not peer.buf  # nothing torn, nothing after


async def test_the_peer_closing_makes_run_raise(pair):
    writer, reader = pair
    outbox = Outbox(writer)
    fill_until_partial(outbox)
    reader.close()
    with trio.fail_after(5):
        with pytest.raises(OutboxClosed):
            await outbox.run()
    assert isinstance(outbox.error, OSError)
    assert outbox.closed and outbox.statistics().pending_bytes == 0
    with pytest.raises(OutboxClosed):
        outbox.send(b"x")
    with trio.fail_after(1):
        await outbox.wait_drained()  # nobody waits forever on a dead socket


async def test_the_peer_closing_while_idle_fails_the_next_write(pair, nursery):
    writer, reader = pair
    outbox = Outbox(writer)
    failed = trio.Event()

    async def run() -> None:
        with pytest.raises(OutboxClosed):
            await outbox.run()
        failed.set()

    nursery.start_soon(run)
    await trio.testing.wait_all_tasks_blocked()
    reader.close()
    outbox.offer(binary_frame(b"late"))  # the write finds the socket gone
    with trio.fail_after(5):
        await failed.wait()
    assert isinstance(outbox.error, OSError)
