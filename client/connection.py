"""The Python game client's connection: ``Client``, one joined player,
trio-websocket underneath, protocol.ClientSession for everything the wire
says. ``connect()`` and ``rejoin()`` (tickroom.client.connecting) open one.

One reader task per client applies every snapshot as it arrives and
acknowledges it (piggy-backed on the next input when the game sends one
before the next snapshot, else as a standalone "ack"). ``worlds()`` yields
the newest world each time the caller asks: a slow caller skips worlds, it
never builds a backlog.

With ``reconnect`` set (``connect(reconnect=True)``), a close that leaves the
session alive (protocol.errors.REJOIN_CODES: a drop, a timeout, a redirect,
a room being recovered) is not final: the client records it as ``dropped``
and its owner, tickroom.client.reconnect, rejoins through the public
connection hook below (``attach``, ``read_until_closed``, ``resumed``,
``connection_failed``, ``give_up``). Inputs sent while it is reconnecting
are dropped (``send_input`` returns 0 and counts them in ``inputs_dropped``);
``worlds()`` and ``ping()`` just wait.

"Up" is one thing (``Client.up``): joined on an open connection, no close
being recovered from. One Event mirrors it: it is replaced only when the
client goes from up to down, and set when it comes back up or closes for
good, so whoever waits for it is woken however many rejoin attempts fail in
between.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession, ClientState
from tickroom.protocol.delta import DeltaError, WorldState
from tickroom.protocol.errors import REJOIN_CODES
from tickroom.protocol.game_messages import RoomMessage

log = logging.getLogger(__name__)

MAX_SERVER_MESSAGE_BYTES = 16 * 2**20  # a full snapshot of a big world
CONNECT_TIMEOUT_S = 10.0
RECONNECT_WINDOW_S = 15.0  # give up after trying this long (the server's rejoin grace is 10 s)
SILENCE_TIMEOUT_S = 2.0  # with reconnect: no message for this long means the server is gone (paused, partitioned)
DISCONNECT_TIMEOUT_S = 2.0  # with reconnect: a close handshake with a dead server is not waited for longer


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
    """A connected, joined client. Create it with ``connect()``.

    The game uses the methods and properties under "what the game sees".
    Whoever owns the client's connection (connect(), rejoin(), the
    reconnecting mode) drives it through the hook under "the connection's
    owner": it opens each WebSocket, hands it to ``attach`` and runs
    ``read_until_closed``, and closes the WebSocket itself.
    """

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
        # When the last standalone ack left: after a stall (a busy event
        # loop), the snapshots that queued up meanwhile are applied back to
        # back, and an ack for each would be a burst the server's rate limit
        # closes (4006). Acks are cumulative, so one per half tick is enough.
        self._last_ack_at = -math.inf
        self.reconnect = False  # set by connect(reconnect=True)
        self.reconnects = 0  # successful rejoins after a drop
        self.redirects = 0
        self._leaving = False
        self._dropped: ClientClosed | None = None  # the transient close being recovered from
        self._redirect_url: str | None = None
        self._up = trio.Event()  # set while up (see ``up``) or closed for good
        self.reconnect_window_s = RECONNECT_WINDOW_S
        self.inputs_dropped = 0  # inputs sent while reconnecting, dropped

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
    def options(self) -> dict[str, Any]:
        """The room's game options, from the welcome (every declared one,
        defaults filled in; e.g. arena's ``size``)."""
        assert self.session.welcome is not None
        return dict(self.session.welcome.options)

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
        assert schema is not None  # a world exists only after the welcome gave the schema
        for name, value in found.items():
            scale = schema[name].scale
            if scale:
                found[name] = [v / scale for v in value] if isinstance(value, list) else value / scale
        return found

    def take_events(self) -> list[list[Any]]:
        """Game events received since the last call, each [tick, kind, ...]."""
        return self.session.take_events()

    def take_messages(self) -> list[RoomMessage]:
        """The game's messages to this player since the last call, in order
        (docs/protocol.md, 5.6): reliable, never dropped for a snapshot."""
        return self.session.take_messages()

    async def next_message(self) -> RoomMessage:
        """Wait for the game's next message to this player (the oldest not
        yet taken). Raises ClientClosed when the connection ends first."""
        while not self.session.room_messages:
            if self.closed is not None:
                raise self.closed
            await self._new_world.wait()
        return self.session.room_messages.pop(0)

    async def send_message(self, kind: str, **data: Any) -> bool:
        """Send a game message of a kind the welcome's "messages" lists
        (docs/protocol.md, 4.6); False when dropped because the client is
        reconnecting. Raises ClientClosed once closed for good."""
        if self.closed is not None:
            raise self.closed
        return self.up and await self._send_if_up(self.session.message(kind, **data))

    @property
    def up(self) -> bool:
        """Joined on an open connection: inputs sent now reach the server
        (unless the connection breaks on the way). False while rejoining in
        reconnect mode, and once closed."""
        return (
            self.closed is None
            and self._dropped is None
            and self._ws is not None
            and self.session.state is ClientState.JOINED
        )

    async def send_input(self, *, acting_on: int | None = None, **data: Any) -> int:
        """Send one input; returns its sequence number, or 0 when it was
        dropped because the client is reconnecting (reconnect mode; counted
        in ``inputs_dropped``). Never waits for a rejoin. ``acting_on``: the
        tick of the world the player was shown (a client that draws others
        in the past, docs/protocol.md section 9; default the newest world's).

        Raises ClientClosed once the client is closed for good (in reconnect
        mode: it gave up, or the close was final)."""
        if self.closed is not None:
            raise self.closed
        if not self.up:
            self.inputs_dropped += 1
            return 0
        seq = self.session.next_seq
        if not await self._send_if_up(self.session.input(acting_on=acting_on, **data)):
            self.inputs_dropped += 1
            return 0
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
        await self._send_when_up(payload)
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
        """Wait until the client is closed for good; returns why."""
        await self._closed_event.wait()
        assert self.closed is not None
        return self.closed

    # -- the connection's owner: connect(), rejoin(), tickroom.client.reconnect --

    @property
    def dropped(self) -> ClientClosed | None:
        """In reconnect mode, the close being recovered from (the client is
        rejoining); None while connected, or once closed for good."""
        return self._dropped

    @property
    def leaving(self) -> bool:
        """True once the owner began to leave: no close is recovered from."""
        return self._leaving

    @property
    def redirect_url(self) -> str | None:
        """Where the last ``redirect`` message said the room lives, until
        ``take_redirect()`` takes it."""
        return self._redirect_url

    def take_redirect(self) -> str | None:
        """The pending redirect URL (see ``redirect_url``), now forgotten."""
        url, self._redirect_url = self._redirect_url, None
        return url

    async def attach(self, ws: WebSocketConnection, join: bytes) -> None:
        """Make ``ws``, a WebSocket the caller just opened, this client's
        connection: send ``join`` (a first join, or ``session.rejoin()``)
        and wait for the welcome.

        The caller keeps owning ``ws`` and closes it. Raises JoinFailed when
        the server closes instead (in reconnect mode the close may only be
        recorded as ``dropped``, to be retried).
        """
        self._ws = ws
        await ws.send_message(join)
        while True:
            try:
                data = await ws.get_message()
            except ConnectionClosed as exc:
                closed = self._set_closed(exc)
                raise JoinFailed(closed.code, closed.reason) from None
            msg = self.session.receive(_binary(data))
            if isinstance(msg, m.Welcome):
                return
            if isinstance(msg, m.Redirect):
                self._redirect_url = msg.url
            if isinstance(msg, m.Error):
                self.errors.append(msg)

    def resumed(self, url: str) -> None:
        """The owner's ``attach`` at ``url`` succeeded after a drop (or for
        the first time): the client is up there, senders waiting resume."""
        self.url = url
        self._dropped = None
        self._up.set()

    def connection_failed(self, closed: ClientClosed) -> None:
        """In reconnect mode: an attempt to rejoin failed before the server
        said why (refused TCP connect, handshake error, timeout); ``closed``
        is recorded as the close being recovered from."""
        self._went_down(closed)

    def give_up(self) -> None:
        """End reconnect mode: the close being recovered from is final
        (``closed`` is set, waiters wake up)."""
        self.reconnect = False
        dropped, self._dropped = self._dropped, None
        self._set_closed(None, dropped or ClientClosed(1006, "could not rejoin"))
        self._up.set()

    async def leave_while_reading(self, timeout_s: float = DISCONNECT_TIMEOUT_S) -> None:
        """Leave when ``read_until_closed`` runs in another task (reconnect
        mode): send "leave" and wait up to ``timeout_s`` for the server's
        close, which the reader takes. No close is recovered from after it."""
        self._leaving = True
        ws = self._ws
        if self.closed is not None or self._dropped is not None or ws is None:
            return
        with trio.move_on_after(timeout_s, shield=True):
            try:
                await ws.send_message(self.session.leave())
                await self._closed_event.wait()  # the server closes after a leave
            except ConnectionClosed:
                pass

    def _ack_due(self) -> bool:
        """Whether a standalone ack may leave now: at most one per half tick
        (the welcome's tick rate), so a burst of queued snapshots costs one."""
        welcome = self.session.welcome
        spacing = 0.5 / welcome.tick_rate if welcome is not None and welcome.tick_rate > 0 else 0.0
        return trio.current_time() - self._last_ack_at >= spacing

    async def read_until_closed(self) -> None:
        """Apply every message of the attached connection until it closes,
        goes silent (reconnect mode: SILENCE_TIMEOUT_S) or desyncs; then
        ``closed`` (final) or ``dropped`` (reconnect mode) says why."""
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
                msg = self.session.receive(_binary(data))
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
                if self.auto_ack and not self._input_since_snapshot and not self._leaving and self._ack_due():
                    self._last_ack_at = trio.current_time()
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
            elif isinstance(msg, RoomMessage):
                self._new_world.set()  # wakes next_message too (a replayed one the session skipped, harmlessly)
                self._new_world = trio.Event()
            elif isinstance(msg, m.Redirect):
                self._redirect_url = msg.url  # a drain: rejoin there after the close
            elif isinstance(msg, m.Error):
                log.warning("server error %s: %s", msg.code, msg.message)
                self.errors.append(msg)

    # -- internals ---------------------------------------------------------------

    async def _send_when_up(self, payload: bytes) -> None:
        """Send ``payload`` once the client is up (waiting through a rejoin,
        bounded by the reconnect window). Raises ClientClosed once closed."""
        while not self.up:
            if self.closed is not None:
                raise self.closed
            if self._ws is None:
                raise ClientClosed(1006, "not connected")
            await self._up.wait()  # the current Event: woken by a rejoin or the final close
        if not await self._send_if_up(payload):
            if self.closed is not None:
                raise self.closed
            await self._send_when_up(payload)

    async def _send_if_up(self, payload: bytes) -> bool:
        """Send on the current connection; False if it broke on the way and
        the client is now rejoining (the payload is lost). Raises
        ClientClosed when the break was final."""
        assert self._ws is not None
        try:
            await self._ws.send_message(payload)
        except ConnectionClosed as exc:
            closed = self._set_closed(exc)
            if self.closed is None:
                return False
            raise closed from None
        return True

    def _went_down(self, dropped: ClientClosed) -> None:
        """Reconnect mode: record the close being recovered from. The up
        Event is replaced only on the way from up to down, never while
        already down, so nobody is left waiting on a stale one."""
        self._dropped = dropped
        if self._up.is_set():
            self._up = trio.Event()

    def _set_closed(self, exc: ConnectionClosed | None, closed: ClientClosed | None = None) -> ClientClosed:
        """Record the end of the connection; returns the close. In reconnect
        mode a close in REJOIN_CODES is only ``dropped`` (the owner rejoins);
        any other close is final: ``closed`` is set and every waiter wakes."""
        if self.closed is not None:
            return self.closed
        if closed is None:
            reason = exc.reason if exc is not None else None
            code = reason.code if reason is not None else 1006
            text = (reason.reason or "") if reason is not None else "connection lost"
            closed = ClientClosed(code, text)
        if self.reconnect and not self._leaving and closed.code in REJOIN_CODES:
            self._went_down(closed)
            return closed
        self.closed = closed
        self._up.set()  # waiters wake and find the client closed
        self._closed_event.set()
        self._new_world.set()
        for _, done, _ in self._pings.values():
            done.set()
        return closed


def _binary(data: str | bytes) -> bytes:
    """A message as bytes: the protocol is binary frames only, so a text
    frame (which the server never sends) goes to the decoder as its UTF-8
    bytes and fails there like any malformed message."""
    return data.encode() if isinstance(data, str) else data
