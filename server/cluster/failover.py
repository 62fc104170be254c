"""Failover: this node's part in a cluster sharing one Store (Redis).

``Failover.run`` hosts four kinds of tasks:
- the heartbeat: registers the node (id, public URL, capacity, load) every
  TTL/3 under a TTL, so a dead node disappears from the registry;
- the lease renewer: renews every hosted room's lease every TTL/3; a refused
  renewal (another node claimed the room: a newer epoch) stops the room and
  sends its clients off with REDIRECT;
- the writer: each room's tick hands its ``RoomKeeper`` a capture every
  ``checkpoint_interval`` ticks through a latest-wins slot and each tick's
  log entry through a bounded list, and wakes the node's one writer task,
  which encodes what every room has pending and writes it all in one
  round trip (``Store.write_many``), each room fenced by its epoch. The tick
  never awaits the store;
- the recovery watcher: every TTL/3 it looks for rooms whose lease expired,
  claims them (exactly one node wins the atomic claim), restores them from
  checkpoint + log and hands them to the registry. Up to RESTORE_CONCURRENCY
  rooms are claimed and restored at once (their store round trips overlap);
  a room whose restore fails is logged and counted and spares the others.

A store that lost acknowledged writes (Redis Sentinel promoted a replica that
had not received them, or Redis restarted) shows a new ``generation()``; the
heartbeat reads it. On a change every hosted room re-asserts its lease at
once and checkpoints on its next tick, so what the new master lacks (the
last checkpoints, log entries, renewals) is written again within a tick and
a round trip. After any store outage a node recovers no room for one lease
TTL: the owners, cut off by the same outage, renew first, so a Redis
promotion does not move rooms between live nodes.

``RoomLeases`` (tickroom.server.cluster.leases) is the registry's
``RoomHosting``; ``Failover`` is the service around the same leases and the
registry.

Handing rooms over (``Failover.hand_over_rooms()``, a draining node) only
changes what happens when a room ends: it checkpoints and releases its lease
instead of forgetting it, so that another node recovers it at once. Ending
the rooms is the registry's ``close_all``.
"""

from __future__ import annotations

import logging
import os
import random

import trio

from tickroom.percentiles import percentiles
from tickroom.protocol.errors import Code
from tickroom.server.cluster import checkpoint
from tickroom.server.cluster.leases import FINAL_WRITE_S, RoomKeeper, RoomLeases
from tickroom.server.cluster.store.base import FENCED, WRITTEN, NodeInfo, StoreUnavailable, Write
from tickroom.server.rooms.registry import RoomRegistry
from tickroom.server.rooms.room import JoinRefused

log = logging.getLogger(__name__)

RETRY_S = 0.5  # after a store failure, a writer waits this long before trying again
EXPIRY_MARGIN_S = 0.05  # scan this long after the soonest lease expiry (clock skew, jitter)
MIN_SCAN_S = 0.1  # never scan more often than this
RESTORE_CONCURRENCY = 16  # rooms claimed and restored at once (matches the store's threads)


class Failover:
    """The node's failover service over ``leases`` (also the ``registry``'s
    hosting) and ``registry``; ``public_url`` is registered with the heartbeat."""

    def __init__(self, leases: RoomLeases, registry: RoomRegistry, *, public_url: str) -> None:
        self.leases = leases
        self.config = leases.config
        self.store = leases.store
        self.registry = registry
        self.public_url = public_url
        self.keepers = leases.keepers  # the same dict: the leases add and drop, the loops read
        self.stats = leases.stats
        self._nursery: trio.Nursery | None = None
        self._restoring: set[str] = set()  # queued or being restored
        self._restore_limiter = trio.CapacityLimiter(RESTORE_CONCURRENCY)
        self._generation: str | None = None  # the store's, as last read
        self._recover_after = 0.0  # trio time before which no room is recovered (after an outage)
        self.control_url: str | None = None  # registered with the heartbeat once the control API is bound

    # -- the service -------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Heartbeat, renew, write and recover until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._heartbeat_loop)
            nursery.start_soon(self._renew_loop)
            nursery.start_soon(self._watch_loop)
            nursery.start_soon(self._write_loop)
            task_status.started(self)

    def summary(self) -> str:
        """One log fragment: rooms recovered here, checkpoint write failures."""
        return f"recovered={self.stats.rooms_recovered} checkpoint_failures={self.stats.checkpoint_failures}"

    @property
    def recovered(self) -> int:
        """Rooms this node recovered from another node's lease."""
        return self.stats.rooms_recovered

    @property
    def handing_over(self) -> bool:
        """True once ``hand_over_rooms()`` was called (the node is draining)."""
        return self.leases.handing_over

    def hand_over_rooms(self) -> None:
        """Recover no more rooms here; hosted rooms checkpoint and release
        their lease as they end (see RoomLeases.hand_over_rooms)."""
        self.leases.hand_over_rooms()

    async def successor_url(self) -> str | None:
        """The least loaded other live node that is not draining, for the
        clients of a draining node; None if there is none (or no store)."""
        with trio.move_on_after(FINAL_WRITE_S):
            try:
                nodes = [n for n in await self.store.nodes() if n.node_id != self.config.node_id and not n.draining]
            except StoreUnavailable:
                return None
            if nodes:
                return min(nodes, key=lambda n: (n.rooms / max(n.capacity, 1), n.players)).url
        return None

    async def leave_cluster(self) -> None:
        with trio.move_on_after(FINAL_WRITE_S, shield=True):
            try:
                await self.store.remove_node(self.config.node_id)
            except StoreUnavailable as exc:
                log.warning("could not unregister node: %s", exc)

    # -- per room ------------------------------------------------------------------

    async def _write_loop(self) -> None:
        """The node's writer: everything the rooms have pending, in one batch."""
        while True:
            await self.leases.wait_for_writes()
            batch: list[tuple[RoomKeeper, int | None, int, Write]] = []
            for keeper in list(self.keepers.values()):
                if keeper.lost or keeper.epoch is None:
                    continue  # the renewer claims an unclaimed room; nothing is kept meanwhile
                snap, keeper.pending_checkpoint = keeper.pending_checkpoint, None
                entries, keeper.entries = keeper.entries, []
                floor = snap["tick"] if snap is not None else keeper.written_tick
                packed = [(t, checkpoint.pack(e)) for t, e in entries if t > floor]
                if snap is None and not packed:
                    continue
                ckpt = (snap["tick"], checkpoint.pack(snap)) if snap is not None else None
                # The newest tick this write covers: its snapshots may leave once it lands (--durable-acks).
                top = packed[-1][0] if packed else floor
                batch.append(
                    (
                        keeper,
                        ckpt[0] if ckpt else None,
                        top,
                        Write(keeper.room.room_id, keeper.epoch, ckpt, packed, node_id=self.config.node_id),
                    )
                )
            if not batch:
                continue
            for keeper, *_ in batch:
                keeper.begin_write()
            began = trio.current_time()
            try:
                results = await self.store.write_many([w for *_, w in batch])
            except StoreUnavailable as exc:
                results = [str(exc)] * len(batch)
                self._store_failed()
            finally:
                for keeper, *_ in batch:
                    keeper.end_write()
            took = trio.current_time() - began
            if any(w.checkpoint is not None for *_, w in batch):
                self.stats.checkpoint_write.observe(took)
            else:
                self.stats.log_append.observe(took)
            failed = False
            for (keeper, tick, top, _), result in zip(batch, results, strict=True):
                if result == WRITTEN:
                    if tick is not None:
                        keeper.written_tick = tick
                    keeper.written(top)
                elif result == FENCED:
                    self.stats.writes_fenced += 1
                    try:
                        await self._refused(keeper, "its checkpoint or log write was refused")
                    except StoreUnavailable as exc:
                        log.warning("room %s: cannot check its epoch: %s", keeper.room.room_id, exc)
                else:
                    failed = True
                    keeper.failures += 1
                    self.stats.checkpoint_failures += 1
                    log.warning(
                        "room %s: checkpoint write failed (%d so far): %s", keeper.room.room_id, keeper.failures, result
                    )
                    if keeper.pending_checkpoint is None:
                        keeper.hole = True  # what was not written leaves a hole; wait for the next checkpoint
                        keeper.entries.clear()
            if failed:
                await trio.sleep(RETRY_S)

    async def _refused(self, keeper: RoomKeeper, why: str) -> None:
        """A fenced write or renewal was refused: another node owns the room
        (lost), or the store lost its data (restarted empty): claim it anew."""
        if await self.store.current_epoch(keeper.room.room_id) != 0:
            self._lost(keeper, why)
            return
        epoch = await self.store.claim(keeper.room.room_id, self.config.node_id, self.config.lease_ttl_s)
        if epoch is None:
            self._lost(keeper, why)
            return
        log.warning(
            "room %s: the store had lost it (%s); claimed it again as epoch %d", keeper.room.room_id, why, epoch
        )
        keeper.epoch, keeper.written_tick = epoch, -1
        keeper.hole, keeper.entries = True, []  # nothing is logged until the next checkpoint anchors it

    def _lost(self, keeper: RoomKeeper, why: str) -> None:
        if not keeper.lost:
            keeper.lost = True
            self.stats.leases_lost += 1
            log.warning(
                "room %s: lease lost (%s); stopping this copy, clients go to the new owner", keeper.room.room_id, why
            )
            keeper.room.request_close(Code.REDIRECT, "the room moved to another node; rejoin")

    # -- node-wide loops -------------------------------------------------------------

    def node_info(self) -> NodeInfo:
        """This node as the registry shows it: capacity and load now."""
        rooms = self.registry.rooms()
        durations = [d for room in rooms for d in room.tick_durations]
        p50, p99 = (p * 1e3 for p in percentiles(durations, (50, 99))) if durations else (0.0, 0.0)
        lags = [k.room.game.tick - k.written_tick for k in self.keepers.values() if k.written_tick >= 0]
        return NodeInfo(
            node_id=self.config.node_id,
            url=self.public_url,
            capacity=self.registry.config.max_rooms,
            rooms=len(rooms),
            players=sum(r.players.connected_count() for r in rooms),
            draining=self.handing_over or not self.registry.taking_rooms,
            control_url=self.control_url,
            tick_ms_p50=round(p50, 3),
            tick_ms_p99=round(p99, 3),
            overruns=sum(r.statistics().overruns for r in rooms),
            checkpoint_lag=max(lags, default=0),
            pid=os.getpid(),
        )

    async def heartbeat_now(self) -> None:
        """Register the current load at once (after a room was placed here),
        so that the next placement decision anywhere sees it."""
        try:
            await self.store.heartbeat(self.node_info(), self.config.lease_ttl_s)
        except StoreUnavailable as exc:
            log.warning("could not register the node's load: %s", exc)

    async def _heartbeat_loop(self) -> None:
        reachable = True
        while True:
            info = self.node_info()
            try:
                await self.store.heartbeat(info, self.config.lease_ttl_s)
                if not reachable:
                    log.info("store reachable again")
                reachable = True
                await self._check_generation()
            except StoreUnavailable as exc:
                self._store_failed()
                if reachable:
                    log.error(
                        "cannot reach the store (%s); rooms keep running, retrying every %g s", exc, self.config.beat_s
                    )
                reachable = False
            await trio.sleep(self.config.beat_s)

    def _store_failed(self) -> None:
        """A store call failed: recover nothing for one lease TTL from now,
        so owners cut off by the same outage renew their leases first."""
        self._recover_after = trio.current_time() + self.config.lease_ttl_s

    async def _check_generation(self) -> None:
        """Re-anchor every hosted room when the store's master changed."""
        generation = await self.store.generation()
        previous, self._generation = self._generation, generation
        if previous is None or previous == generation:
            return
        self.stats.master_changes += 1
        log.warning(
            "the store's master changed (%s -> %s): writes acknowledged by the old one may be lost; "
            "renewing every lease and checkpointing every room (%d) now",
            previous[:8] or "?", generation[:8] or "?", len(self.keepers),
        )  # fmt: skip
        self._store_failed()
        for keeper in self.keepers.values():
            keeper.checkpoint_now = True
        await self.renew_all()

    async def renew_all(self) -> None:
        """Renew every hosted room's lease now, all in one round trip (one
        by one, a thousand rooms' renewals could outlast the renewal
        period); rooms not claimed yet try their claim, concurrently."""
        live = [k for k in list(self.keepers.values()) if not (k.lost or k.room.closed)]
        claimed = [k for k in live if k.epoch is not None]
        async with trio.open_nursery() as nursery:
            for keeper in live:
                if keeper.epoch is None:
                    nursery.start_soon(self._renew, keeper)
            if not claimed:
                return
            try:
                renewed = await self.store.renew_many(
                    self.config.node_id,
                    [(k.room.room_id, k.epoch) for k in claimed if k.epoch is not None],
                    self.config.lease_ttl_s,
                )
            except StoreUnavailable as exc:
                self.stats.lease_renewal_failures += len(claimed)
                self._store_failed()
                log.warning("lease renewal of %d rooms failed: %s", len(claimed), exc)
                return
            for keeper, ok in zip(claimed, renewed, strict=True):
                if ok is None:
                    self.stats.lease_renewal_failures += 1
                    log.warning("room %s: lease renewal failed", keeper.room.room_id)
                elif not ok:
                    nursery.start_soon(self._refused_or_unknown, keeper, f"epoch {keeper.epoch} is stale")

    async def _refused_or_unknown(self, keeper: RoomKeeper, why: str) -> None:
        try:
            await self._refused(keeper, why)
        except StoreUnavailable as exc:
            log.warning("room %s: cannot check its epoch: %s", keeper.room.room_id, exc)

    async def _renew_loop(self) -> None:
        while True:
            await trio.sleep(self.config.beat_s)
            await self.renew_all()

    async def _renew(self, keeper: RoomKeeper) -> None:
        room_id, node = keeper.room.room_id, self.config.node_id
        try:
            if keeper.epoch is None:
                keeper.epoch = await self.store.claim(room_id, node, self.config.lease_ttl_s)
                if keeper.epoch is None:
                    self._lost(keeper, "another node claimed its id")
            elif not await self.store.renew(room_id, node, keeper.epoch, self.config.lease_ttl_s):
                await self._refused(keeper, f"epoch {keeper.epoch} is stale")
        except StoreUnavailable as exc:
            self.stats.lease_renewal_failures += 1
            self._store_failed()
            log.warning("room %s: lease renewal failed: %s", room_id, exc)

    async def _watch_loop(self) -> None:
        wait_s = self.config.beat_s
        while True:
            # Jitter: nodes that started together do not race for every room.
            jitter = random.uniform(0.5, 1.0)  # noqa: S311  # nosec B311 - jitter, not security
            await trio.sleep(min(self.config.beat_s * jitter, wait_s + EXPIRY_MARGIN_S * jitter))
            wait_s = self.config.beat_s
            if self.handing_over or trio.current_time() < self._recover_after:
                continue
            try:
                await self.recover_expired()
                # Wake when the soonest lease runs out (a dead node's leases,
                # renewed together, expire together), not up to TTL/3 later.
                soonest = await self.store.next_expiry_s()
                if soonest is not None:
                    wait_s = max(soonest + EXPIRY_MARGIN_S, MIN_SCAN_S)
            except StoreUnavailable as exc:
                self._store_failed()
                log.warning("recovery scan failed: %s", exc)

    async def recover_expired(self) -> None:
        """Start claiming and restoring the rooms whose lease expired, up to
        this node's room capacity, in the service's nursery: at most
        RESTORE_CONCURRENCY at once node-wide, so the next scan (a lease
        that expired a little later) does not wait for this one's restores.
        A failure is logged and counted and spares the other rooms. Raises
        StoreUnavailable when the rooms cannot be listed."""
        assert self._nursery is not None, "Failover.run is not running"
        for room_id in await self.store.unowned_rooms():
            if self.handing_over:
                break
            if len(self.registry.rooms()) + len(self._restoring) >= self.registry.config.max_rooms:
                break
            if self.registry.get(room_id) is not None or room_id in self._restoring:
                continue
            self._restoring.add(room_id)
            self._nursery.start_soon(self._claim_and_restore, room_id)

    async def _claim_and_restore(self, room_id: str) -> None:
        # Claimed only once a slot is free: a claimed room is not renewed
        # until it is restored, so it must not wait in the queue.
        try:
            async with self._restore_limiter:
                epoch = await self.store.claim(room_id, self.config.node_id, self.config.lease_ttl_s)
                if epoch is None:
                    return  # another node won the claim
                began = trio.current_time()
                if await self._restore(room_id, epoch):
                    self.stats.restore.observe(trio.current_time() - began)
                else:
                    self.stats.restore_failures += 1
        except StoreUnavailable as exc:
            self.stats.restore_failures += 1
            log.warning("room %s: restore interrupted (%s); it waits for the next scan", room_id, exc)
        except Exception:  # one room's bad state must not stop the others' restores
            self.stats.restore_failures += 1
            log.exception("room %s: restore failed", room_id)
        finally:
            self._restoring.discard(room_id)

    async def _restore(self, room_id: str, epoch: int) -> bool:
        """Rebuild a claimed room and hand it to the registry; False when it
        could not be (and was forgotten or released)."""
        began = trio.current_time()
        ckpt = await self.store.read_checkpoint(room_id)
        if ckpt is None:
            log.warning("room %s: claimed (epoch %d) but it has no checkpoint; forgetting it", room_id, epoch)
            await self.store.forget(room_id, epoch, node_id=self.config.node_id)
            return False
        try:
            restored = checkpoint.restore_room(ckpt.data, ckpt.log, self.registry.config.room, self.registry.games)
        except Exception:  # a checkpoint we cannot read must not stop the watcher
            log.exception("room %s: cannot restore its checkpoint; forgetting it", room_id)
            await self.store.forget(room_id, epoch, node_id=self.config.node_id)
            return False
        room = restored.room
        # Anchor the restored state under the new epoch at once (and empty the log).
        snap = checkpoint.capture(room)
        if not await self.store.write_checkpoint(
            room_id, epoch, snap["tick"], checkpoint.pack(snap), node_id=self.config.node_id
        ):
            log.warning("room %s: lost it again while restoring", room_id)
            return False
        keeper = RoomKeeper(
            room,
            epoch,
            self.config.checkpoint_interval,
            self.leases.wake_writer,
            durable_acks=self.leases.durable_acks_for(room, durable_tick=snap["tick"]),
        )
        keeper.written_tick = snap["tick"]
        self.keepers[room_id] = keeper
        try:
            self.registry.adopt(room)
        except JoinRefused as exc:
            self.keepers.pop(room_id, None)
            await self.store.release(room_id, epoch, node_id=self.config.node_id)
            log.warning("room %s: restored but not adopted (%s); released", room_id, exc.message)
            return False
        self.stats.rooms_recovered += 1
        log.info(
            "room %s: recovered at tick %d (checkpoint %d + %d logged ticks), epoch %d, %d players, in %.3f s",
            room_id, room.game.tick, restored.checkpoint_tick, restored.replayed, epoch,
            len(room.players), trio.current_time() - began,
        )  # fmt: skip
        return True
