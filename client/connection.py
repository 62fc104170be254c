"""The Python game client: trio-websocket underneath, protocol.ClientSession
for everything the wire says.

    async with connect("ws://127.0.0.1:7350", room="lobby", name="ada") as client:
        await client.send_input(mx=1.0)
        async for world in client.worlds():
            print(world.tick, world.entity(client.player))

One reader task per client applies every snapshot as it arrives and
acknowledges it (piggy-backed on the next input when the game sends one
before the next snapshot, else as a standalone "ack"). ``worlds()`` yields
the newest world each time the caller asks: a slow caller skips worlds, it
never builds a backlog.

With ``reconnect=True`` the client survives its server: when the connection
drops (1006), the server drains (1001), redirects (4202) or the room is being
recovered (4105), it rejoins with its session token, with bounded backoff,
at the redirect's URL, else the URL it used, else the other ``urls`` given,
and resumes from the newest world it holds (docs/protocol.md 3.10). Inputs
sent while it is reconnecting are dropped; ``worlds()`` just waits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession
from tickroom.protocol.delta import DeltaError, WorldState
from tickroom.protocol.errors import Code

log = logging.getLogger(__name__)

MAX_SERVER_MESSAGE_BYTES = 16 * 2**20  # a full snapshot of a big world
CONNECT_TIMEOUT_S = 10.0
RECONNECT_FIRST_S = 0.1  # backoff after a failed rejoin, doubling ...
RECONNECT_MAX_S = 1.0  # ... up to this
RECONNECT_WINDOW_S = 15.0  # give up after trying this long (the server's rejoin grace is 10 s)
SILENCE_TIMEOUT_S = 2.0  # with reconnect: no message for this long means the server is gone (paused, partitioned)
MAX_FIRST_REDIRECTS = 3  # a first join follows at most this many redirects
DISCONNECT_TIMEOUT_S = 2.0  # with reconnect: a close handshake with a dead server is not waited for longer
#: Close codes after which the session lives on elsewhere: rejoin.
RECONNECT_CODES = frozenset({1001, 1006, 1011, 1012, int(Code.ROOM_RECOVERING), int(Code.REDIRECT)})


class ClientClosed(Exception):
    """The connection ended; ``code`` and ``reason`` say why (the server's
    error code when it sent one, else the WebSocket close code)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


class Desynced(ClientClosed):
    """A snapshot could not be applied; ``rejoin(client)`` recovers with a
    full snapshot. The code is 1000: the client closed, normally."""

    def __init__(self, reason: str) -> None:
        super().__init__(1000, f"desync: {reason}")


class JoinFailed(ClientClosed):
    """The server refused the join."""


class Client:
    """A connected, joined client. Create it with ``connect()``."""

    def __init__(self, url: str, session: ClientSession, *, auto_ack: bool = True) -> None:
        self.url = url
        self.session = session
        self.auto_ack = auto_ack
        self.errors: list[m.Error] = []  # every error message the server sent
        self.closed: ClientClosed | None = None
        self.desyncs = 0
        self.bytes_received = 0
        self.snapshots_received = 0
        self._ws: WebSocketConnection | None = None
        self._new_world = trio.Event()
        self._closed_event = trio.Event()
        self._pings: dict[int, tuple[float, trio.Event, list]] = {}
        self._input_since_snapshot = False
        self.reconnect = False  # set by connect(reconnect=True)
        self.reconnects = 0  # successful rejoins after a drop
        self.redirects = 0
        self._leaving = False
        self._dropped: ClientClosed | None = None  # the transient close being recovered from
        self._redirect_url: str | None = None
        self._up = trio.Event()  # set while a joined connection is open
        self.reconnect_window_s = RECONNECT_WINDOW_S
        self._drop_started: float | None = None  # when the current outage began
        self._backoff = RECONNECT_FIRST_S

    # -- what the game sees ----------------------------------------------------

    @property
    def player(self) -> int:
        """This player's avatar entity id."""
        assert self.session.welcome is not None
        return self.session.welcome.player

    @property
    def welcome(self) -> m.Welcome:
        assert self.session.welcome is not None
        return self.session.welcome

    @property
    def world(self) -> WorldState | None:
        """The newest world received, or None before the first snapshot."""
        return self.session.world

    def entity(self, entity_id: int) -> dict[str, Any] | None:
        """An entity of the newest world in game units: components that the
        schema gives a ``scale`` are divided by it (``pos`` 3168 at scale 32
        is 99.0). None when the entity is not in the world."""
        world = self.session.world
        found = world.entity(entity_id) if world is not None else None
        if found is None:
            return None
        schema = self.session.schema
        for name, value in found.items():
            scale = schema[name].scale
            if scale:
                found[name] = [v / scale for v in value] if isinstance(value, list) else value / scale
        return found

    def take_events(self) -> list[list[Any]]:
        """Game events received since the last call, each [tick, kind, ...]."""
        return self.session.take_events()

    async def send_input(self, **data: Any) -> int:
        """Send one input; returns its sequence number. Raises ClientClosed."""
        seq = self.session.next_seq
        await self._send(self.session.input(**data))
        self._input_since_snapshot = True
        return seq

    async def next_world(self, *, after: int | None = None) -> WorldState:
        """Wait for a world newer than tick ``after`` (default: the current
        one). Raises ClientClosed when the connection ends first."""
        floor = self.session.acked_tick if after is None else after
        while self.session.world is None or self.session.world.tick <= floor:
            if self.closed is not None:
                raise self.closed
            await self._new_world.wait()
        return self.session.world

    async def worlds(self) -> AsyncIterator[WorldState]:
        """The newest world, each time one newer than the last arrives.
        Ends by raising ClientClosed."""
        last = m.NO_TICK
        while True:
            world = await self.next_world(after=last)
            last = world.tick
            yield world

    async def ping(self) -> float:
        """Round-trip time to the server in seconds."""
        payload = self.session.ping()
        done = trio.Event()
        result: list[float] = []
        self._pings[self.session.ping_id] = (trio.current_time(), done, result)
        await self._send(payload)
        await done.wait()
        if not result:
            raise self.closed or ClientClosed(1006, "connection lost")
        return result[0]

    async def leave(self) -> None:
        """Leave the room (the avatar is removed at once) and close."""
        if self.closed is None and self._ws is not None:
            ws = self._ws
            try:
                await ws.send_message(self.session.leave())
            except ConnectionClosed:
                return
            # trio-websocket completes the close handshake in its reader task,
            # which waits while a received message is not taken: keep taking
            # (and dropping) messages until the close is done.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._discard_until_closed, ws)
                await ws.aclose()
                nursery.cancel_scope.cancel()

    @staticmethod
    async def _discard_until_closed(ws: WebSocketConnection) -> None:
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed:
            pass

    async def wait_closed(self) -> ClientClosed:
        await self._closed_event.wait()
        assert self.closed is not None
        return self.closed

    # -- internals ---------------------------------------------------------------

    async def _send(self, payload: bytes) -> None:
        if self.reconnect and self.closed is None and self._dropped is not None:
            await self._up.wait()  # woken by a rejoin, or by giving up (closed)
        if self.closed is not None or self._ws is None:
            raise self.closed or ClientClosed(1006, "not connected")
        try:
            await self._ws.send_message(payload)
        except ConnectionClosed as exc:
            closed = self._set_closed(exc)
            if self.closed is None:
                return  # dropped; the client is rejoining: this input is lost
            raise closed from None

    async def _handshake(self, ws: WebSocketConnection, join: bytes) -> None:
        """Send the join and wait for the welcome (or the refusal)."""
        self._ws = ws
        await ws.send_message(join)
        while True:
            try:
                data = await ws.get_message()
            except ConnectionClosed as exc:
                closed = self._set_closed(exc)
                raise JoinFailed(closed.code, closed.reason) from None
            msg = self.session.receive(data)
            if isinstance(msg, m.Welcome):
                return
            if isinstance(msg, m.Redirect):
                self._redirect_url = msg.url
            if isinstance(msg, m.Error):
                self.errors.append(msg)

    async def _read_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        while True:
            try:
                with trio.move_on_after(SILENCE_TIMEOUT_S if self.reconnect else math.inf) as silence:
                    data = await ws.get_message()
                if silence.cancelled_caught:
                    # A paused or partitioned server sends nothing, not even a
                    # close: treat the silence as a lost connection.
                    self._set_closed(None, ClientClosed(1006, f"server silent for {SILENCE_TIMEOUT_S:g} s"))
                    return
            except ConnectionClosed as exc:
                self._set_closed(exc)
                return
            self.bytes_received += len(data)
            try:
                msg = self.session.receive(data)
            except DeltaError as exc:
                # Our copy of the world is wrong. The session marked itself
                # for a resync, so rejoin(client) starts from a full snapshot.
                self.desyncs += 1
                log.warning("desync (%s); closing, rejoin to resume", exc)
                self._set_closed(None, Desynced(str(exc)))
                await ws.aclose(code=1000, reason="desync")
                return
            if isinstance(msg, m.Snapshot):
                self.snapshots_received += 1
                self._new_world.set()
                self._new_world = trio.Event()
                if self.auto_ack and not self._input_since_snapshot and not self._leaving:
                    try:
                        await ws.send_message(self.session.ack())
                    except ConnectionClosed as exc:
                        self._set_closed(exc)
                        return
                self._input_since_snapshot = False
            elif isinstance(msg, m.Pong):
                pending = self._pings.pop(msg.id, None)
                if pending is not None:
                    sent, done, result = pending
                    result.append(trio.current_time() - sent)
                    done.set()
            elif isinstance(msg, m.Redirect):
                self._redirect_url = msg.url  # a drain: rejoin there after the close
            elif isinstance(msg, m.Error):
                log.warning("server error %s: %s", msg.code, msg.message)
                self.errors.append(msg)

    def _set_closed(self, exc: ConnectionClosed | None, closed: ClientClosed | None = None) -> ClientClosed:
        if self.closed is None:
            if closed is None:
                reason = exc.reason if exc is not None else None
                code = reason.code if reason is not None else 1006
                text = (reason.reason or "") if reason is not None else "connection lost"
                closed = ClientClosed(code, text)
            if self.reconnect and not self._leaving and closed.code in RECONNECT_CODES:
                # Transient: _keep_connected rejoins; readers and writers wait.
                self._dropped = closed
                self._up = trio.Event()
                return closed
            self.closed = closed
            self._closed_event.set()
            self._new_world.set()
            for _, done, _ in self._pings.values():
                done.set()
        return self.closed


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
) -> AsyncIterator[Client]:
    """Connect, join a room and yield the Client; leave on exit.

    ``room`` None asks the server for any open room of ``game``. Raises
    JoinFailed when the server refuses (room full, unknown game, ...).
    ``reconnect``: rejoin by itself after a drop, a drain or a redirect, for
    up to ``reconnect_window_s``, trying ``url`` and then ``urls`` (other
    nodes) in turn; ``client.closed`` is set only when it gives up.
    """
    session = ClientSession()
    join = session.join(room=room, game=game, name=name, ticket=ticket)
    client = Client(url, session, auto_ack=auto_ack)
    if not reconnect:
        async with _connected(client, join) as client:
            yield client
        return
    from tickroom.client.reconnect import reconnecting  # the reconnecting mode lives apart

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
    async with open_websocket_url(
        client.url, max_message_size=MAX_SERVER_MESSAGE_BYTES, connect_timeout=CONNECT_TIMEOUT_S
    ) as ws:
        with trio.fail_after(CONNECT_TIMEOUT_S):
            await client._handshake(ws, join)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client._read_loop)
            try:
                yield client
            finally:
                # Stop reading first: trio-websocket's close handshake waits
                # on its reader, which a pending get_message() would hold.
                nursery.cancel_scope.cancel()
        if client.closed is None:
            with trio.move_on_after(2, shield=True):
                await client.leave()
