"""A live-socket fuzz run against a real server process on 127.0.0.1:
thousands of malformed msgpack frames over several joined connections (the
strike limit and rate limit raised so that every frame is decoded and
validated instead of the connection being closed after a few), plus raw
TCP connections sending WebSocket-level garbage. Afterwards the server still
serves a new client, and a bystander in the fuzzed room kept its avatar and
its snapshots throughout. Bounded: a fixed count of frames, and deadlines.
"""

from __future__ import annotations

import random

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request

from tests.fuzzing import mutate
from tickroom.client import connect
from tickroom.protocol.client_session import ClientSession

from .harness import running_server

pytestmark = pytest.mark.integration

ROOM = "fuzz-room"
WORKERS = 4
FRAMES = 3000  # malformed msgpack frames in all
RAW_CONNECTIONS = 60  # raw TCP connections with WebSocket-level garbage
DEADLINE_S = 60


async def fuzz_worker(url: str, rng: random.Random, frames: int, stats: dict) -> None:
    """Send ``frames`` malformed frames on joined connections, reconnecting
    whenever the server closes one (some mutations are fatal by design)."""
    while frames > 0:
        session = ClientSession()
        async with open_websocket_url(url) as ws:
            await ws.send_message(session.join(room=ROOM, name="fuzzer"))
            async with trio.open_nursery() as nursery:

                async def drain() -> None:
                    # Read the server's answers, or its outbox would fill.
                    try:
                        while True:
                            await ws.get_message()
                    except ConnectionClosed as exc:
                        stats["closes"][exc.reason.code] = stats["closes"].get(exc.reason.code, 0) + 1
                    nursery.cancel_scope.cancel()

                nursery.start_soon(drain)
                try:
                    while frames > 0:
                        await ws.send_message(mutate(rng))
                        frames -= 1
                        stats["frames"] += 1
                    await ws.aclose()
                except ConnectionClosed:
                    await trio.sleep_forever()  # drain() records the code


def _upgrade_request() -> bytes:
    client = WSConnection(ConnectionType.CLIENT)
    return client.send(Request(host="127.0.0.1", target="/"))


async def raw_garbage(port: int, rng: random.Random, stats: dict) -> None:
    """An upgrade, then WebSocket-level garbage: random opcodes and flags,
    unmasked frames, lying lengths, random bytes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        try:
            if rng.random() < 0.8:
                await stream.send_all(_upgrade_request())
                await stream.receive_some()
            for _ in range(rng.randint(1, 5)):
                head = bytes([rng.randrange(256), rng.randrange(256)])
                await stream.send_all(head + bytes(rng.randrange(256) for _ in range(rng.randrange(40))))
            with trio.move_on_after(3):
                while await stream.receive_some():
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the server hung up on the garbage: fine
        finally:
            stats["raw"] += 1


async def test_the_server_survives_thousands_of_malformed_frames():
    with running_server("--strike-limit", "1000000", "--rate-per-tick", "1000", "--max-players", "64") as server:
        port = int(server.url.rsplit(":", 1)[1])
        async with connect(server.url, room=ROOM, name="bystander") as bystander:
            await bystander.next_world()
            start_tick = bystander.world.tick
            stats = {"frames": 0, "raw": 0, "closes": {}}
            with trio.fail_after(DEADLINE_S):
                async with trio.open_nursery() as nursery:
                    for i in range(WORKERS):
                        nursery.start_soon(fuzz_worker, server.url, random.Random(i), FRAMES // WORKERS, stats)
                async with trio.open_nursery() as nursery:
                    rng = random.Random(99)
                    for _ in range(RAW_CONNECTIONS):
                        nursery.start_soon(raw_garbage, port, random.Random(rng.random()), stats)
            assert stats["frames"] == FRAMES and stats["raw"] == RAW_CONNECTIONS

            # The bystander: still there, never desynced, snapshots kept coming.
            with trio.fail_after(10):
                world = await bystander.next_world(after=bystander.world.tick + 5)
            assert bystander.closed is None and bystander.desyncs == 0 and not bystander.errors
            assert world.entity(bystander.player) is not None
            ticks = world.tick - start_tick
            assert bystander.snapshots_received >= 0.8 * ticks

            # A new client joins the same room and plays.
            async with connect(server.url, room=ROOM, name="newcomer") as newcomer:
                await newcomer.send_input(mx=1.0)
                with trio.fail_after(10):
                    await newcomer.next_world()
                    await newcomer.next_world()
                assert newcomer.entity(newcomer.player) is not None
                assert newcomer.entity(bystander.player) is not None
    log = server.log()
    assert "Traceback" not in log and " failed" not in log, log[-3000:]
    print(f"\nlive fuzz: {stats}")
