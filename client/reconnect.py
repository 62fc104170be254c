"""The Python client's reconnecting mode (``connect(..., reconnect=True)``).

After a close that leaves the session alive (protocol.errors.REJOIN_CODES,
or a server silent for SILENCE_TIMEOUT_S) the client rejoins with its
session token and the newest tick it holds, with bounded exponential
backoff: first at the URL a ``redirect`` named, else (4105) the same node
again, else the next of the URLs it knows (a dead node is retried after the
others), for at most its reconnect window; then the close is final
(``client.closed``). Any other close (protocol.errors.FRESH_CODES among
them: the session is gone) is final at once. The rule is docs/protocol.md,
3.10 and section 8.

This module owns the client's connections through Client's public hook
(``attach``, ``read_until_closed``, ``resumed``, ``connection_failed``,
``give_up``, ``leave_while_reading``).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from tickroom.client.connection import (
    CONNECT_TIMEOUT_S,
    DISCONNECT_TIMEOUT_S,
    MAX_SERVER_MESSAGE_BYTES,
    Client,
    ClientClosed,
    JoinFailed,
)
from tickroom.protocol.errors import Code

RECONNECT_FIRST_S = 0.1  # backoff after a failed rejoin, doubling ...
RECONNECT_MAX_S = 1.0  # ... up to this
#: One rejoin attempt, from the TCP connect to the welcome, takes at most
#: this long (and never ends past the reconnect window). A live node answers
#: in milliseconds, with a welcome, a redirect or 4105; a paused one accepts
#: the TCP connection (the kernel does) and then says nothing, and
#: trio-websocket's own connect timeout does not cover every step of that.
REJOIN_ATTEMPT_S = 3.0
MAX_FIRST_REDIRECTS = 3  # a first join follows at most this many redirects


@dataclass
class _Outage:
    """The current run of failed rejoins: when it began, the next backoff."""

    started: float
    backoff: float = RECONNECT_FIRST_S


@asynccontextmanager
async def reconnecting(client: Client, join: bytes, urls: list[str], window_s: float) -> AsyncIterator[Client]:
    """Join with ``join`` at ``urls[0]`` and keep the client joined; leave on exit.

    Raises JoinFailed (or the connection error) when the first join fails.
    The connections are opened and closed here; the client is left open
    to the caller only as long as the context lasts."""
    client.reconnect = True
    client.reconnect_window_s = window_s
    async with trio.open_nursery() as nursery:
        await nursery.start(keep_connected, client, join, urls)
        try:
            yield client
        finally:
            await client.leave_while_reading()
            nursery.cancel_scope.cancel()


async def keep_connected(
    client: Client, join: bytes, urls: list[str], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Hold a joined connection; after a transient close, rejoin (see the
    module docstring). The first join's failure is raised to connect()."""
    first = True
    url = urls[0]
    outage: _Outage | None = None
    while True:
        # Each attempt has its own deadline, up to the welcome; once joined
        # the connection lasts as long as it lasts.
        if first:
            attempt_end = trio.current_time() + CONNECT_TIMEOUT_S
        else:
            assert outage is not None
            attempt_end = min(trio.current_time() + REJOIN_ATTEMPT_S, outage.started + client.reconnect_window_s)
        try:
            with trio.CancelScope(deadline=attempt_end) as attempt:
                async with open_websocket_url(
                    url,
                    max_message_size=MAX_SERVER_MESSAGE_BYTES,
                    connect_timeout=CONNECT_TIMEOUT_S,
                    disconnect_timeout=DISCONNECT_TIMEOUT_S,
                ) as ws:
                    await client.attach(ws, join if first else client.session.rejoin())
                    attempt.deadline = math.inf
                    client.resumed(url)
                    outage = None
                    if first:
                        task_status.started()
                        first = False
                    else:
                        client.reconnects += 1
                    await client.read_until_closed()
            if attempt.cancelled_caught:
                raise trio.TooSlowError(f"no welcome from {url} before the attempt's deadline")
        except (OSError, HandshakeError, ConnectionClosed, trio.TooSlowError, JoinFailed) as exc:
            if first and client.redirect_url is not None and client.redirects < MAX_FIRST_REDIRECTS:
                client.redirects += 1  # the named room is on another node: join there
                url = client.take_redirect() or url
                continue
            if first:
                raise
            if client.closed is not None:
                return  # a final close: nothing to rejoin
            if not isinstance(exc, JoinFailed):  # a refused join already recorded why
                client.connection_failed(ClientClosed(1006, f"{type(exc).__name__}: {exc}"))
        if client.closed is not None or client.leaving:
            return
        if outage is None:
            outage = _Outage(trio.current_time())
        next_url = await _next_url(client, url, urls, outage)
        if next_url is None:
            client.give_up()
            return
        url = next_url


async def _next_url(client: Client, failed: str, urls: list[str], outage: _Outage) -> str | None:
    """Where to rejoin next, after the backoff; None past the window."""
    redirect = client.take_redirect()
    if redirect is not None:
        client.redirects += 1
        if redirect not in urls:
            urls.append(redirect)  # a node we now know of, for later rotations
        return redirect
    if trio.current_time() - outage.started > client.reconnect_window_s:
        return None
    await trio.sleep(outage.backoff)
    outage.backoff = min(outage.backoff * 2, RECONNECT_MAX_S)
    dropped = client.dropped
    if dropped is not None and dropped.code == Code.ROOM_RECOVERING:
        return failed  # that node is alive and knows the room: ask it again
    # A URL that just failed (a dead node) is tried again only after the others.
    return urls[(urls.index(failed) + 1) % len(urls)] if failed in urls else urls[0]
