"""The room registry: creates, finds, closes and drains rooms.

Each room runs as a task in the registry's nursery behind a fence: a room
that raises is logged with its id and tick, its clients are closed with
ROOM_CRASHED, and the other rooms and the process carry on. The wrapper's
``finally`` forgets the room, whatever ended it (structure, not callbacks).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field

import trio

from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code
from tickroom.protocol.tickets import TicketError
from tickroom.server.ops import logs, sentry
from tickroom.server.rooms.admission import Admission
from tickroom.server.rooms.link import ClientLink
from tickroom.server.rooms.room import JoinAccepted, JoinRefused, Room, RoomConfig
from tickroom.server.rooms.tick_clock import TickClock
from tickroom.simulation.game import GameConfig
from tickroom.simulation.games import get_game

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistryConfig:
    room: RoomConfig = RoomConfig()
    default_game: str = "arena"
    allow_client_rooms: bool = True  # clients may create/join rooms by name in "join"
    max_rooms: int = 1000
    ticket_secret: bytes | None = field(default=None, repr=False)  # joins need a signed ticket when set


@dataclass(frozen=True)
class RoomMeta:
    """What the registry knows of a room beyond the room itself."""

    labels: Mapping[str, str]
    created_at: float  # unix seconds


ENDED_ROOMS_KEPT = 256  # ended rooms' last statistics, until the metrics collector takes them


class RoomRegistry:
    """All rooms of this node. Use ``await nursery.start(registry.run)``."""

    def __init__(self, config: RegistryConfig) -> None:
        self.config = config
        self._rooms: dict[str, Room] = {}
        self._nursery: trio.Nursery | None = None
        self.clock = TickClock()  # one timer wakes every room (tickroom.server.rooms.tick_clock)
        self.draining = False
        self.crashes = 0
        # With a secret, tickets are required unless client rooms were
        # explicitly allowed (a development setup): then a join without a
        # ticket takes the client-rooms path, and one with a ticket is checked.
        self.admission = Admission(config.ticket_secret, required=not config.allow_client_rooms)
        self._meta: dict[str, RoomMeta] = {}
        # Rooms that ended since the last metrics scrape, so their final
        # counters are not lost (see tickroom.server.ops.metrics). Bounded: without a
        # scraper the oldest are dropped.
        self.ended: deque[Room] = deque(maxlen=ENDED_ROOMS_KEPT)
        # Set by tickroom.server.cluster.failover when rooms are shared through a store: an
        # async context manager around each room's run, and a lookup that
        # raises JoinRefused (REDIRECT / ROOM_RECOVERING) for rooms elsewhere.
        self.host: Callable[[Room], AbstractAsyncContextManager[None]] | None = None
        self.locate: Callable[..., Awaitable[None]] | None = None

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Host the room tasks until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.clock.run, name="tick clock")
            self._nursery = nursery
            task_status.started(self)
            await trio.sleep_forever()

    # -- lookups ---------------------------------------------------------------

    def get(self, room_id: str) -> Room | None:
        """The live room with this id, or None."""
        return self._rooms.get(room_id)

    def rooms(self) -> list[Room]:
        """A snapshot of the live rooms."""
        return list(self._rooms.values())

    def meta(self, room_id: str) -> RoomMeta | None:
        """Labels and creation time of a live room, or None."""
        return self._meta.get(room_id)

    # -- lifecycle -------------------------------------------------------------

    def create(
        self,
        room_id: str | None = None,
        game: str | None = None,
        *,
        seed: int | None = None,
        config: RoomConfig | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Room:
        """Start a new room task. ``config`` overrides the node's room
        defaults for this room (tick rate, max players). Raises JoinRefused
        when refused (draining, too many rooms, unknown game, id taken)."""
        if self._nursery is None:
            raise RuntimeError("registry is not running")
        if self.draining:
            raise JoinRefused(Code.SERVER_FULL, "server is shutting down; no new rooms")
        if len(self._rooms) >= self.config.max_rooms:
            raise JoinRefused(Code.SERVER_FULL, f"this node runs its maximum of {self.config.max_rooms} rooms")
        game_name = game or self.config.default_game
        try:
            game_cls = get_game(game_name)
        except KeyError:
            raise JoinRefused(Code.UNKNOWN_GAME, f"no game named {game_name!r}") from None
        room_id = room_id or f"{game_name}-{secrets.token_hex(4)}"
        if room_id in self._rooms:
            raise JoinRefused(Code.INVALID_MESSAGE, f"room {room_id!r} exists")
        rc = config or self.config.room
        game_obj = game_cls(
            seed=secrets.randbits(63) if seed is None else seed,
            config=GameConfig(tick_rate=rc.tick_rate, max_players=rc.max_players),
        )
        room = Room(room_id, game_obj, rc)
        self._meta[room_id] = RoomMeta(labels=dict(labels or {}), created_at=time.time())
        self._start(room)
        log.info("room %s: created (%s)", room_id, game_name, extra={"room_id": room_id})
        return room

    def adopt(self, room: Room) -> None:
        """Run a room built elsewhere (restored from a checkpoint). Raises
        JoinRefused when draining or when the id is taken."""
        if self._nursery is None:
            raise RuntimeError("registry is not running")
        if self.draining:
            raise JoinRefused(Code.SERVER_FULL, "server is shutting down; no new rooms")
        if room.room_id in self._rooms:
            raise JoinRefused(Code.INVALID_MESSAGE, f"room {room.room_id!r} exists")
        self._start(room)

    def _start(self, room: Room) -> None:
        assert self._nursery is not None
        self._rooms[room.room_id] = room
        # A restored room keeps no labels: they live with its allocation.
        self._meta.setdefault(room.room_id, RoomMeta(labels={}, created_at=time.time()))
        room.clock = self.clock
        self._nursery.start_soon(self._run_room, room, name=f"room {room.room_id}")

    def close(self, room_id: str, code: Code = Code.ROOM_CLOSED, reason: str = "room closed") -> bool:
        """Ask a room to close its clients and end. False if no such room."""
        room = self._rooms.get(room_id)
        return room is not None and room.request_close(code, reason)

    def drain(self, code: Code = Code.GOING_AWAY, reason: str = "server shutting down") -> None:
        """Refuse new rooms and ask every room to close."""
        self.draining = True
        for room in self.rooms():
            room.request_close(code, reason)

    async def wait_empty(self) -> None:
        """Return once every room has ended."""
        while self._rooms:
            await trio.sleep(0.05)

    # -- joining ---------------------------------------------------------------

    async def join(self, join: m.Join, link: ClientLink) -> JoinAccepted:
        """Find (or, when allowed, create) the room ``join`` names and join it.

        With tickets required (tickroom.server.rooms.admission), the ticket decides the
        room and the player's name, and only rooms that exist are joined.
        Raises JoinRefused.
        """
        try:
            join, ticket = self.admission.check(join)  # reserves the ticket
        except TicketError as exc:
            raise JoinRefused(exc.code, exc.message) from None
        if ticket is None:
            return await self._join(join, link)
        admitted = False
        try:
            if join.room not in self._rooms:
                raise JoinRefused(Code.ROOM_NOT_FOUND, f"room {ticket.room!r} is not on this server")
            accepted = await self._join(join, link)
            admitted = True
            return accepted
        finally:
            if not admitted:
                # A full room or a cancelled join does not use the ticket up.
                self.admission.release(ticket)

    async def _join(self, join: m.Join, link: ClientLink) -> JoinAccepted:
        room = self._rooms.get(join.room) if join.room else None
        if room is None and join.room and self.locate is not None:
            await self.locate(join.room, rejoin=join.session is not None)  # raises when another node has (or had) it
        if join.session is not None:
            if room is None:
                raise JoinRefused(Code.SESSION_UNKNOWN, "the session's room is not on this server")
            return await room.join(join, link)
        if room is None:
            if not self.config.allow_client_rooms:
                raise JoinRefused(Code.UNAUTHORIZED, "this server does not let clients create rooms")
            if join.room is None:
                room = self._quick_match(join.game)
            if room is None:
                room = self.create(join.room, join.game)
        elif join.game is not None and join.game != room.game.name:
            raise JoinRefused(Code.UNKNOWN_GAME, f"room {room.room_id!r} runs {room.game.name!r}, not {join.game!r}")
        return await room.join(join, link)

    def _quick_match(self, game: str | None) -> Room | None:
        """An open room of this game with a free seat, if any."""
        game = game or self.config.default_game
        for room in self._rooms.values():
            if room.game.name == game and not room.closed and room.seats_taken < room.config.max_players:
                return room
        return None

    # -- the fence -------------------------------------------------------------

    async def _run_room(self, room: Room) -> None:
        logs.ROOM_ID.set(room.room_id)  # this task's lines carry the room id (tickroom.server.ops.logs)
        try:
            async with self.host(room) if self.host is not None else nullcontext():
                await room.run()
        except Exception:  # the per-room fence: one room's bug ends that room only
            self.crashes += 1
            with sentry.tagged(room_id=room.room_id, tick=room.game.tick, game=room.game.name):
                log.exception("room %s crashed at tick %d", room.room_id, room.game.tick)
            room.kick_all(Code.ROOM_CRASHED, "the room's simulation failed; it is closed")
        finally:
            room.closed = True
            self._rooms.pop(room.room_id, None)
            self._meta.pop(room.room_id, None)
            self.ended.append(room)
            log.info("room %s: ended at tick %d", room.room_id, room.game.tick)
