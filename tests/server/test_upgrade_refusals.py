"""An upgrade request over 16 KiB gets the documented HTTP 400, whole, on a
real TCP socket (issue 16, item 10): the server drains what the client
still sends before closing, so the answer is never destroyed by a reset."""

from __future__ import annotations

import pytest
import trio

from tests.in_process import serving
from tickroom.server.config import ServerConfig
from tickroom.server.node import GameServer

DEADLINE_S = 10.0


async def _answer(port: int, request: bytes) -> bytes:
    """Send ``request`` at once, then read to EOF; a reset fails the test."""
    sock = trio.socket.socket()
    with sock:
        await sock.connect(("127.0.0.1", port))
        view = memoryview(request)
        while view:
            view = view[await sock.send(view) :]
        answer = b""
        while chunk := await sock.recv(65536):
            answer += chunk
        return answer


@pytest.mark.parametrize("trailing", [0, 256 * 2**10], ids=["alone", "with-256KiB-more"])
async def test_an_upgrade_request_over_16_kib_gets_400(trailing: int) -> None:
    server = GameServer(ServerConfig(host="127.0.0.1", port=0, stats_interval_s=0))
    async with serving(server):
        request = (
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + b"X-Padding: " + b"a" * (20 * 2**10) + b"\r\n\r\n" + b"b" * trailing
        )  # fmt: skip
        with trio.fail_after(DEADLINE_S):
            for _ in range(10):  # a reset shows up in a fraction of tries: try several
                answer = await _answer(server.ports[0], request)
                head, _, body = answer.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 400 "), answer[:200]
                assert body == b"the upgrade request is over 16 KiB long\r\n"
            while len(server.connections):  # each refused socket is let go, none held
                await trio.sleep(0.01)


def _upgrade(origin: bytes) -> bytes:
    return (
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Origin: " + origin + b"\r\n\r\n"
    )


async def _status(port: int, request: bytes) -> bytes:
    sock = trio.socket.socket()
    with sock:
        await sock.connect(("127.0.0.1", port))
        await sock.send(request)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := await sock.recv(4096)):
            answer += chunk
        return answer.partition(b"\r\n")[0]


async def test_an_allowed_origin_with_a_trailing_slash_is_let_in() -> None:
    config = ServerConfig(host="127.0.0.1", port=0, stats_interval_s=0, allowed_origins="https://play.example.com")
    async with serving(GameServer(config)) as server:
        with trio.fail_after(DEADLINE_S):
            port = server.ports[0]
            assert (await _status(port, _upgrade(b"https://play.example.com/"))).startswith(b"HTTP/1.1 101 ")
            assert (await _status(port, _upgrade(b"HTTPS://Play.Example.com"))).startswith(b"HTTP/1.1 101 ")
            assert (await _status(port, _upgrade(b"https://evil.example/"))).startswith(b"HTTP/1.1 403")


async def test_connections_that_come_and_go_write_no_info_lines(caplog) -> None:
    caplog.set_level("DEBUG", logger="tickroom")
    async with serving(GameServer(ServerConfig(host="127.0.0.1", port=0, stats_interval_s=0))) as server:
        with trio.fail_after(DEADLINE_S):
            for _ in range(20):  # not WebSocket at all: each is refused (400) and closed
                await _answer(server.ports[0], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            while len(server.connections):
                await trio.sleep(0.01)
    per_connection = [r for r in caplog.records if r.name == "tickroom.server.transport.connection"]
    assert len(per_connection) >= 20  # they are there, for whoever turns debug on ...
    assert all(r.levelname == "DEBUG" for r in per_connection)  # ... and only then
