"""``connect()`` and ``rejoin()``: open a joined Client.

    async with connect("ws://127.0.0.1:7350", room="lobby", name="ada") as client:
        await client.send_input(mx=1.0)
        async for world in client.worlds():
            print(world.tick, world.entity(client.player))

With ``reconnect=True`` the client survives its server: after a close that
leaves its session alive (protocol.errors.REJOIN_CODES: a drop, an ack or
idle timeout, a redirect, a room being recovered) it rejoins with its
session token, with bounded backoff, at the redirect's URL, else the URL it
used, else the other ``urls`` given, and resumes from the newest world it
holds (docs/protocol.md 3.10; tickroom.client.reconnect). Inputs sent while
it is reconnecting are dropped (``send_input`` returns 0 at once, and counts
them in ``client.inputs_dropped``); ``worlds()`` just waits. Every rejoin
attempt has its own deadline (REJOIN_ATTEMPT_S, never past the window), so
a paused node cannot hold the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from trio_websocket import open_websocket_url

from tickroom.client.connection import (
    CONNECT_TIMEOUT_S,
    DISCONNECT_TIMEOUT_S,
    MAX_SERVER_MESSAGE_BYTES,
    RECONNECT_WINDOW_S,
    Client,
)
from tickroom.client.reconnect import reconnecting
from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession


@asynccontextmanager
async def connect(
    url: str,
    *,
    room: str | None = None,
    game: str | None = None,
    name: str = "",
    ticket: str | None = None,
    auto_ack: bool = True,
    reconnect: bool = False,
    urls: list[str] | tuple[str, ...] = (),
    reconnect_window_s: float = RECONNECT_WINDOW_S,
    protocol: int = m.PROTOCOL_VERSION,
) -> AsyncIterator[Client]:
    """Connect, join a room and yield the Client; leave on exit.

    ``room`` None asks the server for any open room of ``game``. Raises
    JoinFailed when the server refuses (room full, unknown game, ...).
    ``reconnect``: rejoin by itself after a drop, a drain or a redirect, for
    up to ``reconnect_window_s``, trying ``url`` and then ``urls`` (other
    nodes) in turn; ``client.closed`` is set only when it gives up.
    ``protocol``: the protocol version to speak (1 is deprecated; for
    servers older than version 2).
    """
    session = ClientSession(version=protocol)
    join = session.join(room=room, game=game, name=name, ticket=ticket)
    client = Client(url, session, auto_ack=auto_ack)
    if not reconnect:
        async with _connected(client, join) as client:
            yield client
        return
    async with reconnecting(client, join, [url, *[u for u in urls if u != url]], reconnect_window_s) as client:
        yield client


@asynccontextmanager
async def rejoin(client: Client) -> AsyncIterator[Client]:
    """Open a new connection for ``client``'s session (after it dropped) and
    resume the same player, from the newest world it holds."""
    fresh = Client(client.url, client.session, auto_ack=client.auto_ack)
    async with _connected(fresh, client.session.rejoin()) as fresh:
        yield fresh


@asynccontextmanager
async def _connected(client: Client, join: bytes) -> AsyncIterator[Client]:
    """One connection, no reconnecting: join, read in a task, leave on exit."""
    async with open_websocket_url(
        client.url, max_message_size=MAX_SERVER_MESSAGE_BYTES, connect_timeout=CONNECT_TIMEOUT_S
    ) as ws:
        with trio.fail_after(CONNECT_TIMEOUT_S):
            await client.attach(ws, join)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.read_until_closed)
            try:
                yield client
            finally:
                # Stop reading first: trio-websocket's close handshake waits
                # on its reader, which a pending get_message() would hold.
                nursery.cancel_scope.cancel()
        if client.closed is None:
            with trio.move_on_after(DISCONNECT_TIMEOUT_S, shield=True):
                await client.leave()
