"""Connection limits against a real in-process server on 127.0.0.1: the
handshake and idle timeouts, and "leave".

Real sockets mean the real clock: the timeouts are a few tenths of a second
and every wait has a trio.fail_after deadline.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from tests.in_process import serving
from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession
from tickroom.protocol.errors import Code
from tickroom.server.config import ServerConfig
from tickroom.server.node import GameServer

SHORT = 0.3  # s: the timeout under test
LONG = 60.0  # s: the timeouts that must not interfere
DEADLINE = 5.0  # s: no wait in these tests should come near this


@asynccontextmanager
async def running_server(**overrides) -> AsyncIterator[GameServer]:
    """A GameServer on a free port; shut down (and run() must return) at exit."""
    config = ServerConfig(
        **{
            "host": "127.0.0.1",
            "port": 0,
            "handshake_timeout_s": LONG,
            "idle_timeout_s": LONG,
            "ack_timeout_s": LONG,
            "graceful_timeout_s": 2.0,
            "stats_interval_s": 0,
            **overrides,
        }
    )
    server = GameServer(config)
    async with serving(server, stop_deadline=DEADLINE):
        yield server
    assert server.connections == set()


async def wait_for(predicate: Callable[[], bool], what: str) -> None:
    """Poll a condition the real sockets bring about, under a deadline."""
    try:
        with trio.fail_after(DEADLINE):
            while not predicate():
                await trio.sleep(0.005)
    except trio.TooSlowError:
        raise AssertionError(f"timed out waiting for {what}") from None


def url(server: GameServer) -> str:
    return f"ws://127.0.0.1:{server.ports[0]}/"


async def read_until_closed(ws: WebSocketConnection, session: ClientSession) -> tuple[list, int]:
    """Every message until the server closes (never sending anything back),
    and the close code."""
    received = []
    with trio.fail_after(DEADLINE):
        try:
            while True:
                received.append(session.receive(await ws.get_message()))
        except ConnectionClosed as exc:
            return received, exc.reason.code


async def joined(ws: WebSocketConnection, session: ClientSession, room: str, name: str = "tester") -> m.Welcome:
    await ws.send_message(session.join(room=room, name=name))
    with trio.fail_after(DEADLINE):
        welcome = session.receive(await ws.get_message())
    assert isinstance(welcome, m.Welcome), welcome
    return welcome


async def silent_tcp_client(server: GameServer) -> trio.SocketStream:
    """A TCP connection that never sends a byte; returned once the server
    has given up on it (its handshake timer fired)."""
    stream = await trio.open_tcp_stream("127.0.0.1", server.ports[0])
    await wait_for(lambda: len(server.connections) == 1, "the server to accept")
    (conn,) = server.connections
    await wait_for(lambda: conn.closed, "the handshake timeout")
    return stream


async def receive_all(stream: trio.SocketStream, timeout: float) -> bytes:
    """Everything until EOF; fails if EOF does not come within ``timeout``."""
    data = b""
    with trio.fail_after(timeout):
        while chunk := await stream.receive_some():
            data += chunk
    return data


async def test_a_silent_tcp_client_is_dropped_after_the_handshake_timeout():
    async with running_server(handshake_timeout_s=SHORT) as server:
        stream = await silent_tcp_client(server)
        # The server lingers for a close reply; a client that hangs up its
        # side ends that at once.
        stream.socket.shutdown(socket.SHUT_WR)
        # Not a WebSocket yet: not one byte (no frame) before the EOF.
        assert await receive_all(stream, DEADLINE) == b""
        await wait_for(lambda: not server.connections, "the connection to end")
        await stream.aclose()


async def test_a_silent_tcp_client_gets_eof_right_after_the_handshake_timeout():
    async with running_server(handshake_timeout_s=SHORT) as server:
        stream = await silent_tcp_client(server)
        try:
            # Closing takes milliseconds; 0.5 s is far from both that and the
            # 2 s close timeout.
            assert await receive_all(stream, 0.5) == b""
        finally:
            await stream.aclose()  # so that a failure does not wait out the server


async def test_no_join_after_the_upgrade_is_handshake_timeout():
    async with running_server(handshake_timeout_s=SHORT) as server:
        async with open_websocket_url(url(server)) as ws:
            received, code = await read_until_closed(ws, ClientSession())
        assert code == Code.HANDSHAKE_TIMEOUT == 4005
        assert [(e.code, type(e)) for e in received] == [(4005, m.Error)]


async def test_a_joined_client_that_sends_nothing_is_idle_timeout():
    async with running_server(idle_timeout_s=SHORT, ack_timeout_s=LONG) as server:
        session = ClientSession()
        async with open_websocket_url(url(server)) as ws:
            welcome = await joined(ws, session, "idle-room")
            received, code = await read_until_closed(ws, session)
        assert code == Code.IDLE_TIMEOUT == 4113
        errors = [msg for msg in received if isinstance(msg, m.Error)]
        assert [e.code for e in errors] == [4113]
        # It was joined and served until then: snapshots came, unacked.
        assert any(isinstance(msg, m.Snapshot) for msg in received)
        assert welcome.room == "idle-room"


async def test_with_a_short_ack_timeout_the_room_drops_the_client_first():
    async with running_server(idle_timeout_s=LONG, ack_timeout_s=SHORT, tick_rate=20) as server:
        session = ClientSession()
        async with open_websocket_url(url(server)) as ws:
            await joined(ws, session, "ack-room")
            received, code = await read_until_closed(ws, session)
        assert code == Code.ACK_TIMEOUT == 4112
        assert [e.code for e in received if isinstance(e, m.Error)] == [4112]


async def test_leave_closes_normally_and_removes_the_player():
    async with running_server() as server:
        stay, go = ClientSession(), ClientSession()
        async with open_websocket_url(url(server)) as ws_stay, open_websocket_url(url(server)) as ws_go:
            await joined(ws_stay, stay, "leave-room", "stay")
            await joined(ws_go, go, "leave-room", "go")
            room = server.registry.get("leave-room")
            assert len(room.players) == 2
            await ws_go.send_message(go.leave())
            received, code = await read_until_closed(ws_go, go)
            assert code == 1000
            assert not any(isinstance(msg, m.Error) for msg in received)
            await wait_for(lambda: len(room.players) == 1, "the player's removal")
            assert [p.name for p in room.players] == ["stay"] and not room.closed
