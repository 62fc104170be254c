"""The room registry: creates, finds and closes rooms.

Each room runs as a task in the registry's nursery behind a fence: a room
that raises is logged with its id and tick, its clients are closed with
ROOM_CRASHED, and the other rooms and the process carry on. The wrapper's
``finally`` forgets the room, whatever ended it (structure, not callbacks).

Where rooms are shared with other nodes (tickroom.server.cluster.failover), the
registry is given a ``RoomHosting`` at construction: it wraps each room's run
and says where a room this node does not have is. ``LocalHosting`` is the
one-node default.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import trio

from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code
from tickroom.protocol.tickets import TicketError
from tickroom.server.rooms.admission import Admission
from tickroom.server.rooms.game_catalog import GameCatalog
from tickroom.server.rooms.link import ClientLink
from tickroom.server.rooms.log_context import ROOM_ID
from tickroom.server.rooms.room import JoinAccepted, JoinRefused, Room, RoomConfig
from tickroom.server.rooms.room_quota import MAX_ROOMS_PER_ADDRESS, UNJOINED_CLOSE_S, RoomQuota
from tickroom.server.rooms.step_batch import StepBatcher
from tickroom.server.rooms.tick_clock import TickClock
from tickroom.simulation.game import GameConfig
from tickroom.simulation.options import OptionError, resolve_options

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistryConfig:
    room: RoomConfig = RoomConfig()
    default_game: str = "arena"
    allow_client_rooms: bool = True  # clients may create/join rooms by name in "join"
    max_rooms: int = 1000
    ticket_secret: bytes | None = field(default=None, repr=False)  # joins need a signed ticket when set
    # Room spam (tickroom.server.rooms.room_quota): live client-created rooms
    # per source address (0: no limit), and how long such a room waits for
    # its first player.
    max_rooms_per_address: int = MAX_ROOMS_PER_ADDRESS
    unjoined_close_s: float = UNJOINED_CLOSE_S
    # Rooms of a game due at the same moment are stepped by one batched call
    # (tickroom.server.rooms.step_batch); False: each room steps its own game
    # (the same worlds, bit for bit; for A/B measurements).
    step_together: bool = True


@dataclass(frozen=True)
class RoomMeta:
    """What the registry knows of a room beyond the room itself."""

    labels: Mapping[str, str]
    created_at: float  # unix seconds


class RoomHosting(Protocol):
    """What the registry asks of where its rooms live (one node, or a cluster)."""

    def host(self, room: Room) -> AbstractAsyncContextManager[None]:
        """Wraps one room's whole run (claim before, hand over or forget after);
        does NOT guarantee the room survives this node, nor that its exit is awaited
        past a bounded time."""
        ...

    async def locate(self, room_id: str, *, rejoin: bool) -> None:
        """Raises JoinRefused (REDIRECT, ROOM_RECOVERING) when another node has or
        had the room; returning does NOT mean the room exists anywhere."""
        ...


class LocalHosting:
    """One node on its own: rooms run as they are and nothing is elsewhere."""

    @asynccontextmanager
    async def host(self, room: Room) -> AsyncIterator[None]:
        yield

    async def locate(self, room_id: str, *, rejoin: bool) -> None:
        return None


ENDED_ROOMS_KEPT = 256  # ended rooms' last statistics, until the metrics collector takes them


class RoomRegistry:
    """All rooms of this node. Use ``await nursery.start(registry.run)``.

    ``hosting`` wraps each room's run and locates rooms this node does not
    have (default: ``LocalHosting``, a node on its own). ``games``: the
    games this node runs (default: the built-in and installed ones, with
    ``config.default_game`` as the default; raises GameLoadError when that
    game cannot be loaded)."""

    def __init__(
        self, config: RegistryConfig, *, hosting: RoomHosting | None = None, games: GameCatalog | None = None
    ) -> None:
        self.games = games if games is not None else GameCatalog.discover(config.default_game)
        if config.default_game != self.games.default:
            config = dataclasses.replace(config, default_game=self.games.default)
        self.config = config
        self.hosting: RoomHosting = hosting if hosting is not None else LocalHosting()
        self._rooms: dict[str, Room] = {}
        self._nursery: trio.Nursery | None = None
        self.clock = TickClock()  # one timer wakes every room (tickroom.server.rooms.tick_clock)
        # ... and one stepper steps the rooms of a game due together (tickroom.server.rooms.step_batch).
        self.stepper = StepBatcher()
        self._taking_rooms = True
        self._empty = trio.Event()  # set while no room runs; the last room to end sets it
        self._empty.set()
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
        self.room_quota = RoomQuota(config.max_rooms_per_address)
        self._seated_once: set[str] = set()  # live rooms that have seated a player
        self._ticket_joins: set[tuple[str, str]] = set()  # (room, player) of ticket joins in flight

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Host the room tasks until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.clock.run, name="tick clock")
            nursery.start_soon(self.stepper.run, name="stepper")
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
        """Labels (as they are now: the game may change them) and creation
        time of a live room, or None."""
        meta = self._meta.get(room_id)
        room = self._rooms.get(room_id)
        if meta is None or room is None:
            return meta
        return dataclasses.replace(meta, labels=dict(room.labels))

    @property
    def taking_rooms(self) -> bool:
        """False once ``stop_taking_rooms()`` or ``close_all()`` was called."""
        return self._taking_rooms

    # -- lifecycle -------------------------------------------------------------

    def create(
        self,
        room_id: str | None = None,
        game: str | None = None,
        *,
        seed: int | None = None,
        config: RoomConfig | None = None,
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, object] | None = None,
    ) -> Room:
        """Start a new room task. ``config`` overrides the node's room
        defaults for this room (tick rate, max players); ``options`` are the
        game's room options (tickroom.simulation.options; the rest take
        their defaults). Raises JoinRefused when refused (not taking rooms,
        too many rooms, unknown game, id taken, INVALID_MESSAGE for options
        the game refuses)."""
        if self._nursery is None:
            raise RuntimeError("registry is not running")
        if not self._taking_rooms:
            raise JoinRefused(Code.SERVER_FULL, "server is shutting down; no new rooms")
        if len(self._rooms) >= self.config.max_rooms:
            raise JoinRefused(Code.SERVER_FULL, f"this node runs its maximum of {self.config.max_rooms} rooms")
        game_name = game or self.config.default_game
        try:
            game_cls = self.games.get(game_name)
        except KeyError as exc:
            raise JoinRefused(Code.UNKNOWN_GAME, str(exc.args[0])) from None
        room_id = room_id or f"{game_name}-{secrets.token_hex(4)}"
        if room_id in self._rooms:
            raise JoinRefused(Code.INVALID_MESSAGE, f"room {room_id!r} exists")
        try:
            resolved = resolve_options(game_cls, options)
        except OptionError as exc:
            raise JoinRefused(Code.INVALID_MESSAGE, exc.message) from None
        rc = config or self.config.room
        game_obj = game_cls(
            seed=secrets.randbits(63) if seed is None else seed,
            config=GameConfig(tick_rate=rc.tick_rate, max_players=rc.max_players, options=resolved),
        )
        room = Room(room_id, game_obj, rc, labels=labels)
        self._meta[room_id] = RoomMeta(labels=dict(labels or {}), created_at=time.time())
        self._start(room)
        log.info("room %s: created (%s)", room_id, game_name, extra={"room_id": room_id})
        return room

    def adopt(self, room: Room) -> None:
        """Run a room built elsewhere (restored from a checkpoint). Raises
        JoinRefused when not taking rooms or when the id is taken."""
        if self._nursery is None:
            raise RuntimeError("registry is not running")
        if not self._taking_rooms:
            raise JoinRefused(Code.SERVER_FULL, "server is shutting down; no new rooms")
        if room.room_id in self._rooms:
            raise JoinRefused(Code.INVALID_MESSAGE, f"room {room.room_id!r} exists")
        self._start(room)

    def _start(self, room: Room) -> None:
        assert self._nursery is not None
        if self._empty.is_set():
            self._empty = trio.Event()
        self._rooms[room.room_id] = room
        # A restored room brings its labels in its checkpoint (room.labels).
        self._meta.setdefault(room.room_id, RoomMeta(labels=dict(room.labels), created_at=time.time()))
        room.clock = self.clock
        room.stepper = self.stepper if self.config.step_together else None
        self._nursery.start_soon(self._run_room, room, name=f"room {room.room_id}")

    def close(self, room_id: str, code: Code = Code.ROOM_CLOSED, reason: str = "room closed") -> bool:
        """Ask a room to close its clients and end. False if no such room."""
        room = self._rooms.get(room_id)
        return room is not None and room.request_close(code, reason)

    def stop_taking_rooms(self) -> None:
        """Refuse new rooms from now on (created, adopted or joined by name);
        the rooms running now play on. There is no way back."""
        self._taking_rooms = False

    def close_all(self, code: Code = Code.GOING_AWAY, reason: str = "server shutting down") -> None:
        """Stop taking rooms and ask every room to close its clients with
        ``code`` and end. Returns at once: ``wait_empty()`` waits for the end."""
        self.stop_taking_rooms()
        for room in self.rooms():
            room.request_close(code, reason)

    async def wait_empty(self) -> None:
        """Return once no room runs (at once if none does). The room that
        ends last wakes it."""
        await self._empty.wait()

    # -- joining ---------------------------------------------------------------

    async def join(self, join: m.Join, link: ClientLink, *, address: str | None = None) -> JoinAccepted:
        """Find (or, when allowed, create) the room ``join`` names and join it.

        With tickets required (tickroom.server.rooms.admission), the ticket decides the
        room and the player's name, and only rooms that exist are joined.
        ``address``: the client's source address, which the room quota counts
        the rooms it creates against (None: not counted).
        Raises JoinRefused.
        """
        try:
            join, ticket = self.admission.check(join)  # reserves the ticket
        except TicketError as exc:
            raise JoinRefused(exc.code, exc.message) from None
        if ticket is None:
            return await self._join(join, link, address)
        admitted = False
        seat = (ticket.room, ticket.player)
        try:
            if join.room not in self._rooms:
                raise JoinRefused(Code.ROOM_NOT_FOUND, f"room {ticket.room!r} is not on this server")
            self._check_player_not_seated(seat)
            self._ticket_joins.add(seat)
            try:
                accepted = await self._join(join, link, address)
            finally:
                self._ticket_joins.discard(seat)
            admitted = True
            return accepted
        finally:
            if not admitted:
                # A full room or a cancelled join does not use the ticket up.
                self.admission.release(ticket)

    def _check_player_not_seated(self, seat: tuple[str, str]) -> None:
        """A ticket's player id is one player in its room (docs/protocol.md,
        3.9): a second ticket for a player who is in the room (connected, or
        waiting out its rejoin grace) or joining it now is refused, so two
        tickets for one ``p`` never seat two avatars of one name."""
        room_id, player = seat
        room = self._rooms.get(room_id)
        if seat in self._ticket_joins or (room is not None and any(p.name == player for p in room.players)):
            raise JoinRefused(
                Code.INVALID_TICKET,
                f"player {player!r} is in room {room_id!r} already: rejoin with its session token, "
                "or join after its rejoin grace",
            )

    async def _join(self, join: m.Join, link: ClientLink, address: str | None = None) -> JoinAccepted:
        room = self._rooms.get(join.room) if join.room else None
        if room is None and join.room:
            # Raises when another node has (or had) it. It may ask Redis: a
            # join for the same name may have created the room here meanwhile.
            await self.hosting.locate(join.room, rejoin=join.session is not None)
            room = self._rooms.get(join.room)
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
                room = self._create_for_client(join, address)
        elif join.game is not None and join.game != room.game.name:
            raise JoinRefused(Code.UNKNOWN_GAME, f"room {room.room_id!r} runs {room.game.name!r}, not {join.game!r}")
        accepted = await room.join(join, link)
        self._seated_once.add(room.room_id)
        return accepted

    def _create_for_client(self, join: m.Join, address: str | None) -> Room:
        """A room a client's ``join`` creates: counted against its address
        (TOO_MANY_ROOMS past the quota), and ended after
        ``unjoined_close_s`` if nobody took a seat in it by then."""
        self.room_quota.check(address)
        room = self.create(join.room, join.game)
        self.room_quota.created(room.room_id, address)
        assert self._nursery is not None  # create() checked
        self._nursery.start_soon(self._close_if_unjoined, room, name=f"unjoined {room.room_id}")
        return room

    async def _close_if_unjoined(self, room: Room) -> None:
        # A join the game or the room refused, or a client gone before its
        # join was answered, leaves a room nobody plays in: it must not hold a
        # slot of --max-rooms (and its creator's quota) for --idle-close.
        await trio.sleep(self.config.unjoined_close_s)
        if room.room_id not in self._seated_once and room.seats_taken == 0 and not room.closed:
            log.info("room %s: nobody joined in %g s, closing", room.room_id, self.config.unjoined_close_s)
            room.request_close(Code.ROOM_CLOSED, "nobody joined the room")

    def _quick_match(self, game: str | None) -> Room | None:
        """An open room of this game with a free seat, if any."""
        game = game or self.config.default_game
        for room in self._rooms.values():
            if room.game.name == game and not room.closed and room.seats_taken < room.config.max_players:
                return room
        return None

    # -- the fence -------------------------------------------------------------

    async def _run_room(self, room: Room) -> None:
        ROOM_ID.set(room.room_id)  # this task's lines carry the room id (tickroom.server.ops.logs)
        try:
            async with self.hosting.host(room):
                await room.run()
        except Exception:  # the per-room fence: one room's bug ends that room only
            self.crashes += 1
            # The record's room id, tick and game tag the error report (tickroom.server.ops.sentry).
            log.exception(
                "room %s crashed at tick %d", room.room_id, room.game.tick,
                extra={"room_id": room.room_id, "tick": room.game.tick, "game": room.game.name},
            )  # fmt: skip
            room.kick_all(Code.ROOM_CRASHED, "the room's simulation failed; it is closed")
        finally:
            room.closed = True
            self._rooms.pop(room.room_id, None)
            self._meta.pop(room.room_id, None)
            self.room_quota.ended(room.room_id)
            self._seated_once.discard(room.room_id)
            self.ended.append(room)
            if not self._rooms:
                self._empty.set()
            log.info("room %s: ended at tick %d", room.room_id, room.game.tick)
