"""Ping, pong and fragment floods against a real in-process server on
127.0.0.1 (raw frames from tests/rawws.py): control frames share the
connection's budget, so a flood of them is closed with 4006 (RATE_LIMITED)
before and after the join, each read answers at most its newest ping, and
a message may not come in more than MAX_FRAGMENTS frames (close 1009).

The floods are bounded in count; every wait has a deadline.
"""

from __future__ import annotations

import trio

from tests.rawws import OP_BINARY, OP_CONTINUATION, OP_PING, OP_PONG, RawWebSocket, frame
from tests.server.test_connection_limits import running_server
from tickroom.protocol.errors import Code
from tickroom.protocol.session import CONTROL_FRAMES_BEFORE_JOIN

BURST = 500  # control frames per send
MAX_BURSTS = 200  # the flood's bound: 100,000 frames at most


async def flood_until_closed(ws: RawWebSocket, data: bytes) -> int:
    """Send ``data`` up to MAX_BURSTS times while reading; the close code."""
    async with trio.open_nursery() as nursery:

        async def flood() -> None:
            for _ in range(MAX_BURSTS):
                if ws.close_code is not None:
                    return
                await ws.send(data)
                await trio.sleep(0)

        nursery.start_soon(flood)
        code = await ws.read_until_closed()
        nursery.cancel_scope.cancel()
    return code


async def test_pings_before_the_join_are_capped_and_closed_with_4006():
    async with running_server() as server:
        ws = await RawWebSocket.connect("127.0.0.1", server.ports[0])
        code = await flood_until_closed(ws, frame(OP_PING, b"p") * BURST)
        await ws.aclose()
    assert code == Code.RATE_LIMITED == 4006
    assert ws.errors() == [4006]
    # At most one pong per read, and none past the cap.
    assert ws.pongs <= CONTROL_FRAMES_BEFORE_JOIN


async def test_a_few_pings_before_the_join_are_answered_and_harmless():
    async with running_server() as server:
        ws = await RawWebSocket.connect("127.0.0.1", server.ports[0])
        for i in range(3):
            await ws.send(frame(OP_PING, b"%d" % i))
        welcome = await ws.join("calm-room")
        await ws.aclose()
    assert welcome.room == "calm-room" and ws.errors() == [] and ws.pongs >= 1


async def test_a_ping_flood_after_the_join_is_closed_with_4006():
    async with running_server() as server:
        ws = await RawWebSocket.connect("127.0.0.1", server.ports[0])
        await ws.join("ping-room")
        code = await flood_until_closed(ws, frame(OP_PING, b"p") * BURST)
        await ws.aclose()
    assert code == Code.RATE_LIMITED
    assert ws.errors()[-1] == 4006


async def test_a_pong_flood_after_the_join_is_closed_with_4006():
    async with running_server() as server:
        ws = await RawWebSocket.connect("127.0.0.1", server.ports[0])
        await ws.join("pong-room")
        code = await flood_until_closed(ws, frame(OP_PONG, b"q") * BURST)
        await ws.aclose()
    assert code == Code.RATE_LIMITED
    assert ws.pongs == 0


async def test_a_flood_of_empty_continuations_is_closed_with_1009():
    async with running_server() as server:
        ws = await RawWebSocket.connect("127.0.0.1", server.ports[0])
        await ws.join("fragment-room")
        await ws.send(frame(OP_BINARY, b"\x81", fin=False))
        code = await flood_until_closed(ws, frame(OP_CONTINUATION, fin=False) * BURST)
        await ws.aclose()
    assert code == 1009
