"""The Python client through every move, sending all along: real server
processes sharing a real redis-server; a node dies (SIGKILL), drains
(SIGTERM) or is paused with a long lease (SIGSTOP), while the client keeps
calling ``send_input()`` once per tick.

What must hold (issue 16, item 6): ``send_input()`` always returns, at
once (an input sent while the client is rejoining is dropped: it returns 0),
it raises ClientClosed only once the client gives up; inputs sent after the
move are applied by the new owner (the snapshots' ``seq`` passes them); and
no client hangs past its reconnect window. Every wait has a deadline.
"""

from __future__ import annotations

import os
import signal

import pytest
import trio

from tickroom.client import ClientClosed, connect
from tickroom.client.connection import RECONNECT_WINDOW_S
from tickroom.client.reconnect import REJOIN_ATTEMPT_S

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
