"""tickroom.server.transport.tls.TlsSocket under the outbox, over a real socket pair: frames
stay whole and ordered through TLS, a reader that does not read makes the
outbox replace its pending snapshot (only frames not yet fed to TLS), and
at most about one frame's ciphertext is ever buffered."""

from __future__ import annotations

import socket
import struct

import pytest
import trio

from tests.certs import make_self_signed
from tickroom.server.transport.outbox import Outbox
from tickroom.server.transport.tls import TlsSocket, load_server_context

FRAME_BYTES = 64 * 2**10


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_self_signed(tmp_path_factory.mktemp("tls-unit"))


def frame(index: int, size: int = FRAME_BYTES) -> bytes:
    body = bytes([index % 251]) * (size - 8)
    return struct.pack("!II", index, size) + body


def split_frames(data: bytes) -> list[int]:
    """Frame indexes in ``data``; fails on a torn or corrupt frame."""
    out, pos = [], 0
    while pos < len(data):
        index, size = struct.unpack_from("!II", data, pos)
        assert data[pos + 8 : pos + size] == bytes([index % 251]) * (size - 8), f"frame {index} corrupt"
        out.append(index)
        pos += size
    assert pos == len(data)
    return out


async def tls_pair(cert) -> tuple[TlsSocket, trio.SSLStream, socket.socket]:
    a, b = socket.socketpair()
    server = TlsSocket(a, load_server_context(str(cert.cert_file), str(cert.key_file)))
    client = trio.SSLStream(
        trio.SocketStream(trio.socket.from_stdlib_socket(b)), cert.client_context(), server_hostname="localhost"
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        nursery.start_soon(client.do_handshake)
    return server, client, a


async def read_exactly_until_eof(stream: trio.SSLStream) -> bytes:
    data = bytearray()
    try:
        while chunk := await stream.receive_some():
            data += chunk
    except trio.BrokenResourceError:
        pass
    return bytes(data)


async def test_frames_stay_whole_and_ordered_and_a_slow_reader_keeps_one_snapshot(cert):
    server, client, raw = await tls_pair(cert)
    outbox = Outbox(server)  # type: ignore[arg-type]
    outbox.send(frame(0, 100))  # a reliable frame first
    for i in range(1, 200):
        outbox.offer(frame(i))
        # Never more than about one frame of ciphertext waits in TLS.
        assert len(server._cipher) <= FRAME_BYTES + 4096
    stats = outbox.statistics()
    assert stats.snapshots_replaced > 150  # nobody read: latest wins
    assert stats.pending_bytes <= FRAME_BYTES

    received = []
    async with trio.open_nursery() as nursery:

        async def reader() -> None:
            received.append(await read_exactly_until_eof(client))

        nursery.start_soon(reader)
        outbox.close()
        with trio.fail_after(5):
            await outbox.run()
            await outbox.wait_drained()
        raw.shutdown(socket.SHUT_WR)
    indexes = split_frames(received[0])
    assert indexes[0] == 0 and indexes == sorted(indexes)
    # the newest snapshot was offered after the socket filled: it was
    # pending, and close() drops a pending snapshot by design; what was sent
    # is a prefix of the offers, in order, with gaps where frames were replaced.
    assert len(indexes) < 200
    server.close()
    await client.transport_stream.aclose()


async def test_reading_plaintext_through_tls(cert):
    server, client, raw = await tls_pair(cert)
    with pytest.raises(BlockingIOError):
        server.recv(1024)
    await client.send_all(b"hello " * 1000)
    got = bytearray()
    with trio.fail_after(5):
        while len(got) < 6000:
            try:
                got += server.recv(65536)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(server)
    assert bytes(got) == b"hello " * 1000
    await client.aclose()  # close_notify, then EOF
    with trio.fail_after(5):
        while True:
            try:
                if server.recv(1024) == b"":
                    break
            except BlockingIOError:
                await trio.lowlevel.wait_readable(server)
    server.close()


async def test_one_recv_returns_every_buffered_record(cert):
    """A client sends each WebSocket message in a TLS record of its own; the
    room reads each player once per tick, so one recv must return all of
    them (up to its size), not the first record only."""
    server, client, raw = await tls_pair(cert)
    for i in range(50):
        await client.send_all(b"record %02d;" % i)  # one record per send
    wanted = b"".join(b"record %02d;" % i for i in range(50))
    # (A socket pair's send puts the bytes straight into the peer's receive
    # queue: all 50 records are there once send_all returned.)
    assert server.recv(65536) == wanted
    # Bounded by bufsize: the rest stays for the next call.
    for i in range(50):
        await client.send_all(b"record %02d;" % i)
    first = server.recv(100)
    assert first == wanted[:100] and server.recv(65536) == wanted[100:]
    server.close()
    await client.transport_stream.aclose()


async def test_close_notify_ends_the_stream_cleanly_for_the_client(cert):
    server, client, raw = await tls_pair(cert)
    assert server.send(b"bye") == 3
    server.close_notify()
    with trio.fail_after(5):
        assert await client.receive_some() == b"bye"
        assert await client.receive_some() == b""  # close_notify, not a ragged EOF
    server.close()
    await client.transport_stream.aclose()
