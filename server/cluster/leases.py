"""The rooms a node holds leases on, and the writer's state per room.

``RoomLeases`` is the registry's ``RoomHosting`` (built first, handed to
``RoomRegistry(..., hosting=leases)``): the registry calls ``host(room)``
around each room's run (claim on creation, hand over/forget at the end) and
``locate(room_id)`` for joins that name a room it does not have. Each hosted
room's ``RoomKeeper`` is its TickObserver: every ``checkpoint_interval``
ticks it captures a checkpoint into a latest-wins slot, every other tick a
log entry into a bounded list, and wakes the node's writer
(tickroom.server.cluster.failover), which does the I/O. The tick never
awaits the store. With ``durable_acks`` the keeper also holds the room's
``DurableAcks`` (its SnapshotGate): snapshots wait for the writes of their
tick (tickroom.server.cluster.durable_acks).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from tickroom.protocol.errors import Code
from tickroom.server.cluster import checkpoint
from tickroom.server.cluster.durable_acks import DurableAcks
from tickroom.server.cluster.stats import FailoverStats
from tickroom.server.cluster.store.base import Store, StoreUnavailable
from tickroom.server.rooms.room import JoinRefused, Room
from tickroom.simulation.game import InputBatch

log = logging.getLogger(__name__)

LOG_BUFFER_TICKS = 512  # log entries waiting for the writer; past this the log has a hole until the next checkpoint
FINAL_WRITE_S = 2.0  # the last checkpoint and release of a room, at most


@dataclass(frozen=True)
class FailoverConfig:
    node_id: str
    lease_ttl_s: float = 3.0
    checkpoint_interval: int = 20  # ticks between checkpoints
    durable_acks: bool = (
        False  # snapshots acknowledge only inputs already written (tickroom.server.cluster.durable_acks)
    )

    @property
    def beat_s(self) -> float:
        return self.lease_ttl_s / 3


class RoomKeeper:
    """The TickObserver of one hosted room, and the state of its writer."""

    def __init__(
        self,
        room: Room,
        epoch: int | None,
        interval: int,
        wake: Callable[[], None],
        *,
        durable_acks: DurableAcks | None = None,
    ) -> None:
        self.room = room
        self.wake = wake  # the node's writer
        self.epoch = epoch  # None: not claimed yet (the store was down at creation)
        self.interval = interval
        self.pending_checkpoint: dict[str, Any] | None = None  # latest wins
        self.entries: list[tuple[int, dict[str, Any]]] = []
        self.hole = epoch is None  # no entries until a checkpoint is written after it
        self.lost = False
        self._written = trio.Event()  # set while no batch holding this room is in flight
        self._written.set()
        self.failures = 0
        self.written_tick = -1
        self.checkpoint_now = False  # set by the failover: capture on the next tick, whatever the interval
        self.durable_acks = durable_acks  # the room's SnapshotGate under --durable-acks, else None

    def written(self, tick: int) -> None:
        """A write of this room through ``tick`` landed (the writer calls it):
        with a checkpoint under it, the room's state through ``tick`` is
        stored and the snapshots that acknowledge it may leave."""
        if self.durable_acks is not None and self.written_tick >= 0:
            self.durable_acks.durable(tick)

    @property
    def writing(self) -> bool:
        """Part of the batch in flight."""
        return not self._written.is_set()

    def begin_write(self) -> None:
        self._written = trio.Event()

    def end_write(self) -> None:
        self._written.set()

    async def wait_written(self) -> None:
        """Return once no batch holding this room is in flight."""
        await self._written.wait()

    def ticked(self, room: Room, batch: InputBatch, room_events: list[list[Any]]) -> None:
        tick = room.game.tick
        if tick % self.interval == 0 or self.checkpoint_now:
            self.checkpoint_now = False
            self.pending_checkpoint = checkpoint.capture(room)
            self.entries.clear()
            self.hole = False
        elif not self.hole:
            if len(self.entries) >= LOG_BUFFER_TICKS:
                self.entries.clear()
                self.hole = True
            else:
                self.entries.append((tick, checkpoint.log_entry(room, batch, room_events)))
        self.wake()


class RoomLeases:
    """The rooms this node holds leases on: the registry's RoomHosting
    (tickroom.server.rooms.registry) when rooms are shared through ``store``."""

    def __init__(self, config: FailoverConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.keepers: dict[str, RoomKeeper] = {}
        self.stats = FailoverStats()  # shared with the Failover service
        self._handing_over = False
        self._dirty = trio.Event()  # some room has something to write

    @property
    def handing_over(self) -> bool:
        """True once ``hand_over_rooms()`` was called."""
        return self._handing_over

    def hand_over_rooms(self) -> None:
        """From now on a room that ends with players checkpoints and releases
        its lease (another node recovers it at once) instead of being
        forgotten. It ends no room itself."""
        self._handing_over = True

    def durable_acks_for(self, room: Room, *, durable_tick: int = -1) -> DurableAcks | None:
        """The room's SnapshotGate under ``durable_acks`` (None without it);
        ``durable_tick``: its state through that tick is stored already,
        with its players' input seqs as they are now (a restored room)."""
        if not self.config.durable_acks:
            return None
        seqs = {p.id: p.last_seq for p in room.players} if durable_tick >= 0 else {}
        return DurableAcks(room.config.tick_rate, self.stats, durable_tick=durable_tick, durable_seqs=seqs)

    def wake_writer(self) -> None:
        """Some room has something to write (a keeper's tick calls it)."""
        self._dirty.set()

    async def wait_for_writes(self) -> None:
        """Return once some room has something to write since the last return
        (the writer's one wait; a single waiter)."""
        await self._dirty.wait()
        self._dirty = trio.Event()

    @asynccontextmanager
    async def host(self, room: Room) -> AsyncIterator[None]:
        """Around one room's run: claim (a new room) or take over (a
        restored one, already claimed), write its checkpoints, and at the end
        hand it over (handing over), forget it (it ended) or do nothing (lost)."""
        keeper = self.keepers.get(room.room_id)
        if keeper is None or keeper.room is not room:
            keeper = RoomKeeper(
                room, None, self.config.checkpoint_interval, self.wake_writer, durable_acks=self.durable_acks_for(room)
            )
            try:
                keeper.epoch = await self.store.claim(room.room_id, self.config.node_id, self.config.lease_ttl_s)
            except StoreUnavailable as exc:
                log.error("room %s: cannot claim its lease (%s); running unprotected, retrying", room.room_id, exc)
            else:
                if keeper.epoch is None:
                    room.request_close(Code.ROOM_CLOSED, "a room with this id runs on another node")
                    yield
                    return
                keeper.hole = False
                # Under --durable-acks a new room's inputs are acknowledged
                # once a checkpoint anchors its log: write one on its first tick.
                keeper.checkpoint_now = self.config.durable_acks
            self.keepers[room.room_id] = keeper
        room.observer = keeper
        room.snapshot_gate = keeper.durable_acks
        try:
            yield
        finally:
            room.observer = None
            room.snapshot_gate = None
            self.keepers.pop(room.room_id, None)
            with trio.move_on_after(FINAL_WRITE_S, shield=True):
                await keeper.wait_written()  # its last batch must land before the final write
                await self._room_ended(keeper)

    async def locate(self, room_id: str, *, rejoin: bool) -> None:
        """For a join naming a room this node does not run: raise
        JoinRefused(REDIRECT, url=owner) or JoinRefused(ROOM_RECOVERING);
        return when the store knows no such room, or when it cannot be
        reached and this is not a rejoin (new rooms run without the store)."""
        try:
            lease = await self.store.lease(room_id)
            if lease is None:
                if await self.store.has_room(room_id):
                    raise JoinRefused(Code.ROOM_RECOVERING, "the room is moving to another node; retry")
                return
            if lease.node_id != self.config.node_id:
                for node in await self.store.nodes():
                    if node.node_id == lease.node_id and node.draining:
                        # Its owner is handing it over: sending the client back
                        # there would only bounce it between the two nodes.
                        raise JoinRefused(Code.ROOM_RECOVERING, "the room is moving to another node; retry")
                    if node.node_id == lease.node_id:
                        self.stats.redirects += 1
                        raise JoinRefused(Code.REDIRECT, f"room {room_id} is on {node.url}", url=node.url)
        except StoreUnavailable as exc:
            log.warning("locating room %s: %s", room_id, exc)
            if not rejoin:
                return
        raise JoinRefused(Code.ROOM_RECOVERING, "the room's owner is not known now; retry")

    async def _room_ended(self, keeper: RoomKeeper) -> None:
        room_id, epoch = keeper.room.room_id, keeper.epoch
        if keeper.lost or epoch is None:
            return
        try:
            if self._handing_over and len(keeper.room.players) > 0:
                snap = checkpoint.capture(keeper.room)
                if await self.store.write_checkpoint(
                    room_id, epoch, snap["tick"], checkpoint.pack(snap), node_id=self.config.node_id
                ):
                    await self.store.release(room_id, epoch, node_id=self.config.node_id)
                    log.info("room %s: handed over at tick %d", room_id, snap["tick"])
            else:
                await self.store.forget(room_id, epoch, node_id=self.config.node_id)
        except StoreUnavailable as exc:
            log.warning("room %s: could not hand over or forget it: %s", room_id, exc)
