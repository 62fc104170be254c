"""The room's read path: ``ServerWebSocket.receive_available`` over a real
socket pair, fed by a wsproto client (or hand-made frames where wsproto would
refuse to make them). The room calls it once per player per tick, without
waiting; whatever the socket holds comes back parsed, in order.

Each test waits for the bytes to be readable (trio.lowlevel.wait_readable on
the server's socket) before polling, never for a fixed time.
"""

from __future__ import annotations

import os
import socket

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Pong, Request

from tickroom.protocol.websocket_frames import MAX_FRAGMENTS, client_frame
from tickroom.server.transport.websocket import (
    ConnectionClosed,
    ControlFrames,
    MessageTooBig,
    ServerWebSocket,
    TextFrame,
)

MAX_MESSAGE = 1000  # bytes


def masked(payload: bytes) -> bytes:
    return client_frame(0x2, payload, os.urandom(4))


def unmasked(payload: bytes) -> bytes:
    return bytes((0x82, len(payload))) + payload


class Peer:
    """The client side: a wsproto client over the other end of the pair."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ws = WSConnection(ConnectionType.CLIENT)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def events(self) -> list:
        self.sock.setblocking(True)
        self.sock.settimeout(5)
        data = self.sock.recv(65536)
        self.ws.receive_data(data or None)
        return list(self.ws.events())


@pytest.fixture
async def opened():
    server_sock, client_sock = socket.socketpair()
    ws = ServerWebSocket(server_sock, max_message_bytes=MAX_MESSAGE)
    peer = Peer(client_sock)
    peer.send(peer.ws.send(Request(host="localhost", target="/")))
    with trio.fail_after(5):
        await ws.accept()
    assert any(isinstance(e, AcceptConnection) for e in peer.events())
    yield ws, peer
    server_sock.close()
    client_sock.close()


async def poll(ws: ServerWebSocket) -> list:
    """What one tick's read gets once the bytes have arrived."""
    with trio.fail_after(5):
        await trio.lowlevel.wait_readable(ws.sock)
    return ws.receive_available()


async def test_nothing_there_is_an_empty_list_without_waiting(opened):
    ws, _ = opened
    assert ws.receive_available() == []


async def test_several_frames_in_one_read_come_back_in_order(opened):
    ws, peer = opened
    peer.send(b"".join(peer.ws.send(Message(data=bytes([i]) * (i + 1))) for i in range(5)))
    assert await poll(ws) == [bytes([i]) * (i + 1) for i in range(5)]


async def test_a_frame_split_across_reads_waits_for_its_rest(opened):
    ws, peer = opened
    frame = peer.ws.send(Message(data=b"x" * 300))  # a 16-bit length header
    for cut in (1, 3, 7, 150):
        peer.send(frame[:cut])
        assert await poll(ws) == []
        peer.send(frame[cut:])
        assert await poll(ws) == [b"x" * 300]


async def test_a_fragmented_message_is_joined_and_a_ping_between_is_answered(opened):
    ws, peer = opened
    peer.send(peer.ws.send(Message(data=b"abc", message_finished=False)))
    peer.send(peer.ws.send(Ping(payload=b"hi")))
    # the message is not complete yet; the ping is reported and answered
    assert [type(item) for item in await poll(ws)] == [ControlFrames]
    peer.send(peer.ws.send(Message(data=b"def", message_finished=True)))
    assert await poll(ws) == [b"abcdef"]
    pongs = [e for e in peer.events() if isinstance(e, Pong)]
    assert [p.payload for p in pongs] == [b"hi"]


async def test_masked_frames_are_read_and_an_unmasked_one_is_a_protocol_error(opened):
    ws, peer = opened
    peer.send(masked(b"one") + client_frame(0x2, b"two", b"\x00\x00\x00\x00") + unmasked(b"three") + masked(b"never"))
    items = await poll(ws)
    assert items[:2] == [b"one", b"two"]
    assert len(items) == 3 and isinstance(items[2], ConnectionClosed) and items[2].code == 1002


async def test_a_close_frame_ends_the_read_and_is_answered_with_the_same_code(opened):
    ws, peer = opened
    peer.send(peer.ws.send(Message(data=b"last")) + peer.ws.send(CloseConnection(code=4321, reason="bye")))
    items = await poll(ws)
    assert items[0] == b"last"
    assert isinstance(items[1], ConnectionClosed) and (items[1].code, items[1].reason) == (4321, "bye")
    reply = [e for e in peer.events() if isinstance(e, CloseConnection)]
    assert reply and reply[0].code == 4321


async def test_a_text_message_is_reported_and_the_next_binary_one_still_read(opened):
    ws, peer = opened
    peer.send(peer.ws.send(Message(data="text")) + peer.ws.send(Message(data=b"binary")))
    items = await poll(ws)
    assert isinstance(items[0], TextFrame) and items[1:] == [b"binary"]


async def test_a_frame_over_the_limit_is_refused_from_its_header(opened):
    ws, peer = opened
    header = peer.ws.send(Message(data=b"y" * 100_000))[:14]  # header and mask only
    peer.send(header)
    items = await poll(ws)
    assert len(items) == 1 and isinstance(items[0], MessageTooBig)
    assert items[0].size > MAX_MESSAGE


async def test_the_peer_hanging_up_is_1006_after_what_it_sent(opened):
    ws, peer = opened
    peer.send(masked(b"bye"))
    peer.sock.shutdown(socket.SHUT_WR)
    items = await poll(ws)
    if items == [b"bye"]:  # data and EOF may come in two reads
        items += await poll(ws)
    assert items[0] == b"bye" and isinstance(items[1], ConnectionClosed) and items[1].code == 1006


async def test_frames_sent_with_the_upgrade_request_are_not_lost():
    """A client may send its first messages before our 101 arrives: the
    bytes after the request's blank line are frames, not HTTP."""
    server_sock, client_sock = socket.socketpair()
    try:
        ws = ServerWebSocket(server_sock, max_message_bytes=MAX_MESSAGE)
        peer = Peer(client_sock)
        peer.send(peer.ws.send(Request(host="localhost", target="/")) + masked(b"join") + masked(b"input"))
        with trio.fail_after(5):
            await ws.accept()
            assert await ws.receive_message() == b"join"
        assert ws.receive_available() == [b"input"]
    finally:
        server_sock.close()
        client_sock.close()


async def test_a_flood_of_empty_continuations_is_refused_at_the_cap(opened):
    ws, peer = opened
    first = client_frame(0x2, b"a", os.urandom(4))
    first = bytes((first[0] & 0x7F,)) + first[1:]  # FIN clear: a message begins
    empty = client_frame(0x0, b"", os.urandom(4))
    empty = bytes((empty[0] & 0x7F,)) + empty[1:]  # continuation, FIN clear
    peer.send(first + empty * (MAX_FRAGMENTS - 1))
    assert await poll(ws) == []  # at the cap: still a message in progress
    peer.send(empty * 10_000)
    items = await poll(ws)
    assert len(items) == 1 and isinstance(items[0], ConnectionClosed) and items[0].code == 1009
