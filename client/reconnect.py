"""The Python client's reconnecting mode (``connect(..., reconnect=True)``).

After a transient close (1001, 1006, 1011, 1012, 4105, 4202; or a server
silent for SILENCE_TIMEOUT_S) the client rejoins with its session token and
the newest tick it holds, with bounded exponential backoff: first at the URL
a ``redirect`` named, else (4105) the same node again, else the next of the
URLs it knows (a dead node is retried after the others), for at most its
reconnect window; then the close is final (``client.closed``). The rule is
docs/protocol.md, 3.10.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from tickroom.client.connection import (
    CONNECT_TIMEOUT_S,
    DISCONNECT_TIMEOUT_S,
    MAX_FIRST_REDIRECTS,
    MAX_SERVER_MESSAGE_BYTES,
    RECONNECT_FIRST_S,
    RECONNECT_MAX_S,
    Client,
    ClientClosed,
    JoinFailed,
)
from tickroom.protocol.errors import Code


@asynccontextmanager
async def reconnecting(client: Client, join: bytes, urls: list[str], window_s: float) -> AsyncIterator[Client]:
    """Join with ``join`` at ``urls[0]`` and keep the client joined; leave on exit.
    Raises JoinFailed (or the connection error) when the first join fails."""
    client.reconnect = True
    client.reconnect_window_s = window_s
    async with trio.open_nursery() as nursery:
        await nursery.start(keep_connected, client, join, urls)
        try:
            yield client
        finally:
            client._leaving = True
            if client.closed is None and client._dropped is None and client._ws is not None:
                with trio.move_on_after(2, shield=True):
                    try:
                        await client._ws.send_message(client.session.leave())
                        await client._closed_event.wait()  # the server closes after a leave
                    except ConnectionClosed:
                        pass
            nursery.cancel_scope.cancel()


async def keep_connected(client: Client, join: bytes, urls: list[str], *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Hold a joined connection; after a transient close, rejoin (see the
    module docstring). The first join's failure is raised to connect()."""
    first = True
    url = urls[0]
    while True:
        try:
            async with open_websocket_url(
                url,
                max_message_size=MAX_SERVER_MESSAGE_BYTES,
                connect_timeout=CONNECT_TIMEOUT_S,
                disconnect_timeout=DISCONNECT_TIMEOUT_S,
            ) as ws:
                with trio.fail_after(CONNECT_TIMEOUT_S):
                    await client._handshake(ws, join if first else client.session.rejoin())
                client.url, client._dropped, client._drop_started = url, None, None
                client._up.set()
                if first:
                    task_status.started()
                    first = False
                else:
                    client.reconnects += 1
                await client._read_loop()
        except (OSError, HandshakeError, ConnectionClosed, trio.TooSlowError, JoinFailed) as exc:
            if first and client._redirect_url is not None and client.redirects < MAX_FIRST_REDIRECTS:
                client.redirects += 1  # the named room is on another node: join there
                url, client._redirect_url, client._dropped = client._redirect_url, None, None
                continue
            if first:
                raise
            if client.closed is not None:
                return  # a final close: nothing to rejoin
            if not isinstance(exc, JoinFailed):  # a refused join already set it
                client._dropped = ClientClosed(1006, f"{type(exc).__name__}: {exc}")
        if client.closed is not None or client._leaving:
            return
        url = await _next_url(client, url, urls)
        if url is None:
            client.reconnect = False  # giving up: this close is final
            client._dropped, dropped = None, client._dropped
            client._set_closed(None, dropped or ClientClosed(1006, "could not rejoin"))
            client._up.set()
            return


async def _next_url(client: Client, failed: str, urls: list[str]) -> str | None:
    """Where to rejoin next, after the backoff; None past the window."""
    if client._redirect_url is not None:
        client.redirects += 1
        url, client._redirect_url = client._redirect_url, None
        if url not in urls:
            urls.append(url)  # a node we now know of, for later rotations
        return url
    now = trio.current_time()
    if client._drop_started is None:
        client._drop_started, client._backoff = now, RECONNECT_FIRST_S
    elif now - client._drop_started > client.reconnect_window_s:
        return None
    await trio.sleep(client._backoff)
    client._backoff = min(client._backoff * 2, RECONNECT_MAX_S)
    if client._dropped is not None and client._dropped.code == Code.ROOM_RECOVERING:
        return failed  # that node is alive and knows the room: ask it again
    # A URL that just failed (a dead node) is tried again only after the others.
    return urls[(urls.index(failed) + 1) % len(urls)] if failed in urls else urls[0]
