"""Failover end to end: real server processes sharing a real redis-server.

A client plays in a room on node A; A dies (SIGKILL), is paused past its
lease (SIGSTOP/SIGCONT) or drains (SIGTERM); node B takes the room over and
the client, reconnecting by itself, keeps its entity, its position and a
rising tick. Every wait polls a condition under a deadline."""

from __future__ import annotations

import os
import re
import signal
from contextlib import ExitStack

import pytest
import redis
import trio

from tests.redis_server import _free_port, redis_server_process
from tickroom.client import ClientClosed, connect
from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code

from .harness import eventually, raw_client, running_server

TTL_S = 1.5
CHECKPOINT_TICKS = 10
RATE = 20
SPEED = 12.0  # arena PLAYER_SPEED, units per second
RECOVERY_DEADLINE_S = TTL_S + 8.0  # lease expiry + a watcher round + restore + rejoin, with CI slack


def node(redis_url: str):
    return running_server(
        "--redis-url", redis_url, "--lease-ttl", str(TTL_S), "--checkpoint-interval", str(CHECKPOINT_TICKS),
        "--tick-rate", str(RATE), "--rejoin-grace", "20", "--idle-close", "30",
    )  # fmt: skip


def pos(client, world, entity) -> tuple[float, float]:
    """The entity's position in game units (the wire value over the schema's scale)."""
    found = world.entity(entity)
    assert found is not None, f"entity {entity} not in world at tick {world.tick}"
    scale = client.session.schema["pos"].scale or 1
    return tuple(v / scale for v in found["pos"])


async def play(client, ticks: int) -> None:
    for _ in range(ticks):
        await client.send_input(mx=1.0, my=0.0)
        await client.next_world()


def recovered_tick(log: str, room: str) -> int | None:
    found = re.search(rf"room {re.escape(room)}: recovered at tick (\d+)", log)
    return int(found.group(1)) if found else None


async def test_killed_node_room_resumes_on_the_other_node_and_the_client_follows(redis_url):
    with node(redis_url) as a, node(redis_url) as b:
        async with (
            connect(a.url, room="fo-kill-2", name="zed", reconnect=True, urls=[b.url]) as other,
            connect(a.url, room="fo-kill", name="ada", reconnect=True, urls=[b.url]) as client,
        ):
            player = client.player
            await play(client, 2 * CHECKPOINT_TICKS + 5)
            before = client.world
            x0, y0 = pos(client, before, player)

            a.proc.kill()  # SIGKILL: no drain, no last checkpoint
            killed_at = trio.current_time()
            # (A snapshot already in flight from A may still arrive: wait for
            # the move itself, then for a world newer than ``before``.)
            await eventually(lambda: client.url == b.url, timeout=RECOVERY_DEADLINE_S, what="the client to move")
            with trio.fail_after(RECOVERY_DEADLINE_S):
                after = await client.next_world(after=before.tick)
            unavailable_s = trio.current_time() - killed_at

            assert client.url == b.url and client.reconnects >= 1
            assert client.player == player and after.entity(player) is not None
            resumed = recovered_tick(b.log(), "fo-kill")
            assert resumed is not None, b.log()
            lost = before.tick - resumed
            print(f"failover: {lost} ticks lost, room unavailable {unavailable_s:.2f} s")
            assert lost <= CHECKPOINT_TICKS  # the input log covers all but the last few ticks
            assert unavailable_s < RECOVERY_DEADLINE_S
            # Continuous: the avatar kept moving right from where it was
            # (at most a tick of speed per tick elapsed), not respawned.
            x1, y1 = pos(client, after, player)
            assert abs(y1 - y0) < 0.5
            assert x0 - 1.0 <= x1 <= x0 + SPEED / RATE * (after.tick - resumed + lost + 2) + 1.0
            # And play goes on, on node B, with ticks rising.
            await play(client, 5)
            assert client.world.tick > after.tick
            # Every room of the dead node moved, with its client.
            await eventually(lambda: other.url == b.url, timeout=RECOVERY_DEADLINE_S, what="the other client to move")
            with trio.fail_after(RECOVERY_DEADLINE_S):
                await other.next_world(after=other.world.tick)
            assert recovered_tick(b.log(), "fo-kill-2") is not None


async def test_paused_node_cannot_overwrite_the_new_owner_and_hands_its_clients_over(redis_url):
    store = redis.Redis.from_url(redis_url)
    try:
        with node(redis_url) as a, node(redis_url) as b:
            async with connect(a.url, room="fo-stop", name="bo", reconnect=True, urls=[b.url]) as client:
                player = client.player
                await play(client, CHECKPOINT_TICKS + 5)
                os.kill(a.proc.pid, signal.SIGSTOP)
                try:
                    await eventually(lambda: recovered_tick(b.log(), "fo-stop") is not None,
                                     timeout=RECOVERY_DEADLINE_S, what="node B to recover the room")  # fmt: skip
                    await eventually(lambda: client.url == b.url, timeout=RECOVERY_DEADLINE_S, what="the move")
                    with trio.fail_after(RECOVERY_DEADLINE_S):
                        world = client.world  # None until the rejoin's full snapshot
                        await client.next_world(after=world.tick if world is not None else None)
                finally:
                    os.kill(a.proc.pid, signal.SIGCONT)
                # A wakes up past its lease: its fenced writes are refused and it
                # stops its copy of the room.
                await eventually(lambda: "room fo-stop: lease lost" in a.log(), timeout=10, what="A to notice")
                await eventually(lambda: "room fo-stop: ended" in a.log(), timeout=10, what="A to stop its copy")
                assert store.get("tickroom:{fo-stop}:epoch") == b"2"
                assert store.hget("tickroom:{fo-stop}:ckpt", "epoch") == b"2"
                assert store.get("tickroom:{fo-stop}:lease").decode().startswith("2|")
                await play(client, 5)
                assert client.player == player and client.url == b.url
    finally:
        store.close()


async def test_drained_node_hands_its_room_over_without_losing_a_tick(redis_url):
    with node(redis_url) as a, node(redis_url) as b:
        async with connect(a.url, room="fo-drain", name="cy", reconnect=True) as client:
            await play(client, CHECKPOINT_TICKS + 3)
            last = client.world.tick
            a.proc.send_signal(signal.SIGTERM)
            # A keeps ticking until the drain reaches the room: wait for the move.
            await eventually(lambda: client.url == b.url, timeout=RECOVERY_DEADLINE_S, what="the client to move")
            with trio.fail_after(RECOVERY_DEADLINE_S):
                await client.next_world(after=last)
            assert client.redirects == 1  # told where to go
            resumed = recovered_tick(b.log(), "fo-drain")
            assert resumed is not None and resumed >= last  # the final checkpoint holds every tick
            assert a.proc.wait(timeout=10) == 0
            assert "handed over" in a.log()


async def test_a_node_that_does_not_own_the_room_redirects_to_its_owner(redis_url):
    with node(redis_url) as a, node(redis_url) as b:
        async with connect(a.url, room="fo-where", name="di", reconnect=True) as owner:
            await play(owner, 3)
            # A rejoin at the wrong node: a redirect message, then close 4202.
            async with raw_client(b.url) as raw:
                raw.session.welcome = owner.welcome
                raw.session._join = m.Join(version=m.PROTOCOL_VERSION, name="di", room="fo-where")
                await raw.ws.send_message(raw.session.rejoin())
                msg = await raw.next_message()
                assert msg == m.Redirect(room="fo-where", url=a.url)
                await raw.expect_close(Code.REDIRECT)
            # The Python client follows it by itself, even for a first join.
            async with connect(b.url, room="fo-where", name="el", reconnect=True) as other:
                assert other.url == a.url and other.redirects == 1
                assert other.welcome.room == "fo-where" and other.player != owner.player


async def test_play_goes_on_while_redis_restarts_and_checkpoints_resume():
    port = _free_port()
    with ExitStack() as stack:
        url = stack.enter_context(redis_server_process(port))
        store = redis.Redis.from_url(url, socket_timeout=1)
        stack.callback(store.close)

        def checkpoint_tick() -> int:
            try:
                return int(store.hget("tickroom:{fo-redis}:ckpt", "tick") or -1)
            except redis.ConnectionError:
                return -1

        a = stack.enter_context(node(url))
        async with connect(a.url, room="fo-redis", name="fy", reconnect=True) as client:
            await play(client, CHECKPOINT_TICKS + 2)
            await eventually(lambda: checkpoint_tick() >= CHECKPOINT_TICKS, what="a first checkpoint")
            store.shutdown(nosave=True)  # Redis goes away, and its data with it
            await eventually(lambda: "checkpoint write failed" in a.log(), timeout=10, what="a failed write")
            down_tick = client.world.tick
            await play(client, 2 * RATE)  # two seconds of play without Redis
            assert client.world.tick >= down_tick + 2 * RATE
            stack.enter_context(redis_server_process(port))  # back, empty
            resumed_from = client.world.tick
            # The node claims its room again and checkpoints resume by themselves.
            await eventually(lambda: checkpoint_tick() > resumed_from, timeout=10, what="checkpoints to resume")
            await play(client, 3)
            assert client.reconnects == 0 and client.closed is None


async def test_a_node_whose_redis_is_unreachable_says_so_and_serves_anyway():
    url = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    with node(url) as a:
        await eventually(lambda: "cannot reach the store" in a.log(), timeout=10, what="the node to say so")
        async with connect(a.url, room="fo-noredis", name="gu") as client:
            await play(client, 5)
        assert a.proc.poll() is None


async def test_a_reconnecting_client_gives_up_after_its_window():
    with running_server() as a:
        async with connect(a.url, room="fo-gone", name="ha", reconnect=True, reconnect_window_s=1.0) as client:
            await play(client, 3)
            a.proc.kill()
            with trio.fail_after(10):
                closed = await client.wait_closed()
            assert closed.code == 1006 and client.reconnects == 0
            with pytest.raises(ClientClosed):
                await client.next_world(after=client.world.tick)
