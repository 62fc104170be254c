"""The Python client through every move, sending all along: real server
processes sharing a real redis-server; a node dies (SIGKILL), drains
(SIGTERM) or is paused with a long lease (SIGSTOP), or the redis-server
itself restarts, while the client keeps calling ``send_input()`` once per
tick.

What must hold (issue 16, item 6): ``send_input()`` always returns, at
once (an input sent while the client is rejoining is dropped: it returns 0),
it raises ClientClosed only once the client gives up; inputs sent after the
move are applied by the new owner (the snapshots' ``seq`` passes them); and
no client hangs past its reconnect window. Every wait has a deadline.
"""

from __future__ import annotations

import os
import signal
from contextlib import ExitStack
from typing import Any

import pytest
import redis
import trio
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.redis_server import _free_port, redis_server_process
from tickroom.client import ClientClosed, connect
from tickroom.client.connection import RECONNECT_WINDOW_S
from tickroom.client.reconnect import REJOIN_ATTEMPT_S
from tickroom.server.cli.status import collect
from tickroom.server.cluster.store.base import StoreUnavailable
from tickroom.server.cluster.store.redis import RedisStore

from .harness import eventually, running_server

pytestmark = pytest.mark.integration

RATE = 20
SEND_BOUND_S = 1.0  # one send_input() call; a live send takes microseconds
MOVE_DEADLINE_S = RECONNECT_WINDOW_S + REJOIN_ATTEMPT_S  # the window, plus the last attempt


def node(redis_url: str, lease_ttl: float = 1.5):
    return running_server(
        "--redis-url", redis_url, "--lease-ttl", str(lease_ttl), "--checkpoint-interval", "10",
        "--tick-rate", str(RATE), "--rejoin-grace", "30", "--idle-close", "30",
    )  # fmt: skip


class Sender:
    """Calls send_input() once per tick until stopped; records what came back."""

    def __init__(self, client) -> None:
        self.client = client
        self.sent: list[int] = []  # sequence numbers of inputs sent
        self.dropped = 0
        self.slowest_s = 0.0
        self.stop = False
        self.gave_up: ClientClosed | None = None

    async def run(self) -> None:
        for _ in range(int(60 * RATE)):  # bounded: a minute of ticks at most
            if self.stop:
                return
            started = trio.current_time()
            try:
                with trio.fail_after(SEND_BOUND_S):
                    seq = await self.client.send_input(mx=1.0, my=0.0)
            except ClientClosed as exc:
                self.gave_up = exc
                return
            self.slowest_s = max(self.slowest_s, trio.current_time() - started)
            if seq:
                self.sent.append(seq)
            else:
                self.dropped += 1
            await trio.sleep(1 / RATE)


async def through_a_move(client, move, *, new_url: str) -> Sender:
    """Send all along while ``move()`` happens; return once the client is
    up at ``new_url`` and the new owner applied an input sent after it."""
    sender = Sender(client)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender.run)
        await eventually(lambda: len(sender.sent) >= 10, what="inputs before the move")
        move()
        await eventually(
            lambda: client.url == new_url and client.up, timeout=MOVE_DEADLINE_S, what="the client to move"
        )
        after_move = len(sender.sent)
        await eventually(lambda: len(sender.sent) > after_move, what="an input sent after the move")
        first_after = sender.sent[after_move]
        await eventually(
            lambda: client.session.last_processed_seq >= first_after,
            timeout=5,
            what="the new owner to apply an input sent after the move",
        )
        sender.stop = True
    assert sender.slowest_s < SEND_BOUND_S and client.closed is None and sender.gave_up is None
    return sender


async def test_inputs_keep_flowing_through_a_sigkill_failover(redis_url):
    with node(redis_url) as a, node(redis_url) as b:
        async with connect(a.url, room="mv-kill", name="ada", reconnect=True, urls=[b.url]) as client:
            sender = await through_a_move(client, a.proc.kill, new_url=b.url)
        # While the room moved, inputs were dropped rather than waited on.
        assert sender.dropped >= 1 and client.inputs_dropped == sender.dropped
        assert client.reconnects >= 1


async def test_inputs_keep_flowing_through_a_drain(redis_url):
    with node(redis_url) as a, node(redis_url) as b:
        async with connect(a.url, room="mv-drain", name="bo", reconnect=True, urls=[b.url]) as client:
            await through_a_move(client, lambda: a.proc.send_signal(signal.SIGTERM), new_url=b.url)
        assert a.proc.wait(timeout=10) == 0


async def test_a_paused_owner_with_a_long_lease_never_hangs_the_client(redis_url):
    with node(redis_url, lease_ttl=8) as a, node(redis_url, lease_ttl=8) as b:
        async with connect(a.url, room="mv-stop", name="cy", reconnect=True, urls=[b.url]) as client:
            os_pid = a.proc.pid
            try:
                await through_a_move(client, lambda: os.kill(os_pid, signal.SIGSTOP), new_url=b.url)
            finally:
                os.kill(os_pid, signal.SIGCONT)


async def test_send_input_raises_client_closed_only_once_the_client_gives_up():
    with running_server() as a:
        async with connect(a.url, room="mv-gone", name="di", reconnect=True, reconnect_window_s=1.0) as client:
            sender = Sender(client)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender.run)
                await eventually(lambda: len(sender.sent) >= 5, what="inputs before the kill")
                a.proc.kill()
                with trio.fail_after(1.0 + REJOIN_ATTEMPT_S + 2):
                    closed = await client.wait_closed()
                await eventually(lambda: sender.gave_up is not None, what="send_input to raise")
    assert sender.gave_up is closed and closed.code == 1006
    assert sender.dropped >= 1 and sender.slowest_s < SEND_BOUND_S


def shut_down_redis(port: int) -> None:
    """SHUTDOWN NOSAVE, once: redis-py's default retries would reconnect to
    a server that is gone and back off for seconds."""
    admin = redis.Redis(port=port, socket_timeout=1, retry=Retry(NoBackoff(), 0))
    try:
        admin.shutdown(nosave=True)
    finally:
        admin.close()


async def cluster_state(url: str) -> dict[str, Any] | None:
    """What ``tickroom status --json`` shows of the cluster; None while its
    Redis cannot be reached."""
    store = RedisStore(url)
    try:
        return await collect(store)
    except StoreUnavailable:
        return None
    finally:
        await store.aclose()


async def until_cluster(url: str, check, *, timeout: float, what: str) -> dict[str, Any]:
    """Poll the cluster's status until ``check(state)`` holds, under a deadline."""
    state = None
    with trio.move_on_after(timeout):
        while True:
            state = await cluster_state(url)
            if state is not None and check(state):
                return state
            await trio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}: last status {state}")


def rooms_durable_on_their_owners(owners: dict[str, str], after: dict[str, int]):
    """A status check: each room is leased by the node in ``owners`` (room
    -> node url) and durable past the tick in ``after``."""

    def check(state: dict[str, Any]) -> bool:
        url_of = {n["node_id"]: n["url"] for n in state["nodes"]}
        rooms = {r["room_id"]: r for r in state["rooms"]}
        return all(
            room in rooms
            and url_of.get(rooms[room]["node_id"]) == owner
            and (rooms[room]["durable_tick"] or -1) > after[room]
            for room, owner in owners.items()
        )

    return check


async def test_inputs_keep_flowing_through_a_redis_restart():
    """The redis-server restarts, empty, on the same port while two nodes
    run a room each and their clients keep sending. Play never stops: no
    client notices (no rejoin, no drop), inputs sent after the restart are
    applied, each node claims its own room again (no room moves between
    live nodes), and the store is whole again: a SIGKILL of a node after
    the restart still moves its room, and its client, to the other node."""
    port = _free_port()
    with ExitStack() as stack:
        url = stack.enter_context(redis_server_process(port))
        a, b = stack.enter_context(node(url)), stack.enter_context(node(url))
        async with (
            connect(a.url, room="mv-redis-a", name="ev", reconnect=True, urls=[b.url]) as on_a,
            connect(b.url, room="mv-redis-b", name="fa", reconnect=True, urls=[a.url]) as on_b,
        ):
            clients = {"mv-redis-a": on_a, "mv-redis-b": on_b}
            owners = {"mv-redis-a": a.url, "mv-redis-b": b.url}
            senders = [Sender(on_a), Sender(on_b)]
            async with trio.open_nursery() as nursery:
                for sender in senders:
                    nursery.start_soon(sender.run)
                await until_cluster(
                    url, rooms_durable_on_their_owners(owners, {r: 0 for r in owners}), timeout=10,
                    what="a first checkpoint of each room",
                )  # fmt: skip
                sent_before = [len(s.sent) for s in senders]
                # Redis goes away, and its data with it. Off the event loop: a
                # loop blocked here would starve the clients (their silence
                # timeout), which is not what this test is about.
                await trio.to_thread.run_sync(shut_down_redis, port)
                # Past the lease TTL without Redis: every lease in it would have expired.
                await eventually(
                    lambda: all(len(s.sent) >= n + 2 * RATE for s, n in zip(senders, sent_before, strict=True)),
                    timeout=10, what="two seconds of inputs without Redis",
                )  # fmt: skip
                # Back on the same port, empty (started off the loop, as above).
                await trio.to_thread.run_sync(stack.enter_context, redis_server_process(port))
                ticks_back = {room: c.world.tick for room, c in clients.items()}
                sent_back = [len(s.sent) for s in senders]
                await until_cluster(
                    url, rooms_durable_on_their_owners(owners, ticks_back), timeout=10,
                    what="each room claimed again by its own node and checkpointed",
                )  # fmt: skip
                # Inputs sent after the restart are applied by the same owners.
                await eventually(
                    lambda: all(len(s.sent) > n for s, n in zip(senders, sent_back, strict=True)),
                    what="inputs sent after the restart",
                )
                firsts_after = [s.sent[n] for s, n in zip(senders, sent_back, strict=True)]
                await eventually(
                    lambda: all(
                        s.client.session.last_processed_seq >= first
                        for s, first in zip(senders, firsts_after, strict=True)
                    ),
                    what="the owners to apply inputs sent after the restart",
                )
                for sender in senders:
                    sender.stop = True
            for sender in senders:
                assert sender.gave_up is None and sender.slowest_s < SEND_BOUND_S
                assert sender.dropped == 0 and sender.client.inputs_dropped == 0
            for room, client in clients.items():
                assert client.url == owners[room] and client.up and client.closed is None
                assert client.reconnects == 0, f"{room}: the client had to rejoin through a Redis restart"
            # The store holds the rooms again: a node's death still moves its room.
            await through_a_move(on_a, a.proc.kill, new_url=b.url)
            assert on_a.reconnects >= 1 and on_b.reconnects == 0
