"""ServerWebSocket over a socket pair, with a sans-IO wsproto client on the
other end driven by the test (wsproto's own tests: ``remote.receive_data``)."""

from __future__ import annotations

import socket

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    Pong,
    Request,
)

from tickroom.server.transport.websocket import (
    ConnectionClosed,
    ControlFrames,
    HandshakeFailed,
    MessageTooBig,
    ServerWebSocket,
    TextFrame,
)

MAX_MESSAGE = 1000  # bytes


class Client:
    """The test's side: a wsproto client over a trio socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = trio.socket.from_stdlib_socket(sock)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.eof = False

    async def send(self, event) -> None:
        await self.send_bytes(self.ws.send(event))

    async def send_bytes(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[await self.sock.send(view) :]

    async def events(self) -> list:
        """The events in the next bytes the server sent ([] at EOF)."""
        with trio.fail_after(5):
            data = await self.sock.recv(65536)
        if not data:
            self.eof = True
        self.ws.receive_data(data or None)
        return list(self.ws.events())

    async def next_event(self, kind: type):
        """Read until an event of ``kind`` arrives; return it."""
        while True:
            for event in await self.events():
                if isinstance(event, kind):
                    return event
            assert not self.eof, f"EOF before a {kind.__name__}"


@pytest.fixture
async def pair():
    server_sock, client_sock = socket.socketpair()
    ws = ServerWebSocket(server_sock, max_message_bytes=MAX_MESSAGE)
    client = Client(client_sock)
    yield ws, client
    server_sock.close()
    client.sock.close()


@pytest.fixture
async def opened(pair):
    """A pair past the handshake."""
    ws, client = pair
    await client.send(Request(host="localhost", target="/play"))
    with trio.fail_after(5):
        await ws.accept()
    await client.next_event(AcceptConnection)
    return pair


async def test_the_handshake_is_accepted_and_the_request_returned(pair):
    ws, client = pair
    await client.send(Request(host="localhost", target="/play?x=1"))
    with trio.fail_after(5):
        request = await ws.accept()
    assert isinstance(request, Request) and request.target == "/play?x=1"
    assert ws.request is request
    accepted = await client.next_event(AcceptConnection)
    assert isinstance(accepted, AcceptConnection)
    assert ws.bytes_received > 0


async def test_plain_http_is_answered_400_and_fails_the_handshake(pair):
    ws, client = pair
    await client.send_bytes(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    with trio.fail_after(5), pytest.raises(HandshakeFailed):
        await ws.accept()
    with trio.fail_after(5):
        answer = await client.sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400")


async def test_a_peer_that_hangs_up_during_the_handshake_fails_it(pair):
    ws, client = pair
    await client.send_bytes(b"GET / HTTP/1.1\r\n")
    client.sock.close()
    with trio.fail_after(5), pytest.raises(HandshakeFailed):
        await ws.accept()


async def test_a_fragmented_message_is_reassembled(opened):
    ws, client = opened
    await client.send(Message(data=b"abc", message_finished=False))
    await client.send(Message(data=b"def", message_finished=False))
    await client.send(Message(data=b"ghi", message_finished=True))
    await client.send(Message(data=b"next"))
    with trio.fail_after(5):
        assert await ws.receive_message() == b"abcdefghi"
        assert await ws.receive_message() == b"next"


async def test_a_message_over_the_limit_is_refused_before_it_all_arrives(opened):
    ws, client = opened
    frame = client.ws.send(Message(data=b"x" * 100_000))
    await client.send_bytes(frame[: 2 * MAX_MESSAGE])  # the rest never comes
    with trio.fail_after(5), pytest.raises(MessageTooBig) as too_big:
        await ws.receive_message()
    assert MAX_MESSAGE < too_big.value.size <= 2 * MAX_MESSAGE


async def test_a_message_over_the_limit_in_fragments_is_refused(opened):
    ws, client = opened
    for _ in range(3):
        await client.send(Message(data=b"y" * (MAX_MESSAGE // 2), message_finished=False))
    with trio.fail_after(5), pytest.raises(MessageTooBig):
        await ws.receive_message()


async def test_a_message_at_the_limit_is_accepted(opened):
    ws, client = opened
    await client.send(Message(data=b"z" * MAX_MESSAGE))
    with trio.fail_after(5):
        assert await ws.receive_message() == b"z" * MAX_MESSAGE


async def test_a_text_message_raises_text_frame(opened):
    ws, client = opened
    await client.send(Message(data="hello"))
    with trio.fail_after(5), pytest.raises(TextFrame):
        await ws.receive_message()


async def receive_skipping_control(ws: ServerWebSocket) -> tuple[bytes, int]:
    """The next message, and how many Ping/Pong frames came before it."""
    control = 0
    while True:
        try:
            return await ws.receive_message(), control
        except ControlFrames as frames:
            control += frames.count


async def test_a_ping_is_answered_with_a_pong_and_reported(opened):
    ws, client = opened
    await client.send(Ping(payload=b"are you there"))
    await client.send(Message(data=b"after"))
    with trio.fail_after(5):
        assert await receive_skipping_control(ws) == (b"after", 1)
    pong = await client.next_event(Pong)
    assert pong.payload == b"are you there"


async def test_pings_in_one_read_get_one_pong_for_the_newest(opened):
    ws, client = opened
    burst = b"".join(client.ws.send(Ping(payload=b"%d" % i)) for i in range(200))
    await client.send_bytes(burst + client.ws.send(Pong(payload=b"unsolicited")) + client.ws.send(Message(data=b"end")))
    with trio.fail_after(5):
        message, control = await receive_skipping_control(ws)
    assert (message, control) == (b"end", 201)
    ws.outbox.close()
    await client.send(Message(data=b"more"))  # something to read after the pongs
    with trio.fail_after(5):
        await receive_skipping_control(ws)
    pongs = [event.payload for event in await client.events() if isinstance(event, Pong)]
    # One pong per read, for the newest ping of that read: never one per ping.
    assert 1 <= len(pongs) < 20 and pongs[-1] == b"199"


async def test_a_client_close_is_reported_and_answered(opened):
    ws, client = opened
    await client.send(CloseConnection(code=4321, reason="bye"))
    with trio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
        await ws.receive_message()
    assert (closed.value.code, closed.value.reason) == (4321, "bye")
    reply = await client.next_event(CloseConnection)
    assert reply.code == 4321


async def test_aclose_sends_our_code_and_reason_then_closes_the_socket(opened, nursery):
    ws, client = opened
    done = trio.Event()

    async def close() -> None:
        await ws.aclose(4102, "room closed")
        done.set()

    nursery.start_soon(close)
    closing = await client.next_event(CloseConnection)
    assert (closing.code, closing.reason) == (4102, "room closed")
    assert not done.is_set()  # it waits for our reply
    await client.send(closing.response())
    with trio.fail_after(5):
        await done.wait()
    assert ws.sock.fileno() == -1
    with trio.fail_after(5):
        assert await client.sock.recv(65536) == b""  # EOF: the socket is closed
    await ws.aclose()  # idempotent


async def test_the_peer_vanishing_is_1006(opened):
    ws, client = opened
    await client.send(Message(data=b"last"))
    client.sock.close()
    with trio.fail_after(5):
        assert await ws.receive_message() == b"last"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive_message()
    assert closed.value.code == 1006


async def test_received_text_and_bytes_are_not_mixed_up(opened):
    """A binary message right after a refused text one arrives intact."""
    ws, client = opened
    await client.send(Message(data="text"))
    await client.send(Message(data=b"binary"))
    with trio.fail_after(5):
        with pytest.raises(TextFrame):
            await ws.receive_message()
        assert await ws.receive_message() == b"binary"


async def test_a_ping_after_the_outbox_closed_is_not_an_error(opened):
    # Found by the live fuzz run: a ping arriving after our side stopped
    # sending (a dead socket, a close under way) escaped as OutboxClosed.
    ws, client = opened
    ws.outbox.close()
    await client.send(Ping(b"late"))
    await client.send(Message(b"still read"))
    with trio.fail_after(5):
        assert (await receive_skipping_control(ws))[0] == b"still read"


async def test_a_ping_flood_costs_one_pong_per_read_not_one_per_ping(opened):
    """50,000 pings whose pongs nobody reads: the backlog stays small,
    because each read answers only its newest ping (the budget that closes
    the flooder is the session's: tests/server/test_connection_limits.py)."""
    ws, client = opened
    ping = client.ws.send(Ping(b"x" * 125))
    pings = 0

    async def flood() -> None:
        for _ in range(500):
            await client.send_bytes(ping * 100)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            while pings < 50_000:
                try:
                    await ws.receive_message()
                except ControlFrames as frames:
                    pings += frames.count
    stats = ws.outbox.statistics()
    assert pings == 50_000
    assert stats.frames_sent < pings / 20
