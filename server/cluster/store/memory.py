"""The embedded store: one process, the same semantics as Redis (leases,
epochs, fencing, TTLs), kept in dicts. Time is trio's clock, so MockClock
tests can expire leases without waiting."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from tickroom.server.cluster.store.base import FENCED, WRITTEN, Checkpoint, Lease, NodeInfo, Write


@dataclass
class _Room:
    epoch: int = 0  # survives lease expiry: the fencing token only grows
    lease_node: str | None = None
    lease_until: float = 0.0
    checkpoint: tuple[int, int, bytes] | None = None  # (epoch, tick, data)
    log: list[tuple[int, bytes]] = field(default_factory=list)


class MemoryStore:
    """Implements tickroom.server.cluster.store.base.Store. Share one instance between
    several in-process "nodes" to test failover without Redis."""

    def __init__(self) -> None:
        self._rooms: dict[str, _Room] = {}
        self._retired: dict[str, int] = {}  # forgotten rooms' epochs: a reused id keeps counting up
        self._nodes: dict[str, tuple[NodeInfo, float]] = {}
        self._keys: dict[str, tuple[bytes, float]] = {}  # idempotency key -> (value, expiry)
        # What generation() answers: nothing here is ever lost, so it only
        # changes when a test says so (to play a Redis promotion).
        self.generation_id = "memory"

    def _holds(self, room: _Room | None, epoch: int, node_id: str | None) -> bool:
        """The write fence: the room's epoch is ``epoch`` and no live lease
        names another node than ``node_id`` (None: the epoch alone)."""
        if room is None or room.epoch != epoch:
            return False
        return node_id is None or not self._live(room) or room.lease_node == node_id

    def _live(self, room: _Room) -> bool:
        return room.lease_node is not None and room.lease_until > trio.current_time()

    async def claim(self, room_id: str, node_id: str, ttl_s: float) -> int | None:
        await trio.lowlevel.checkpoint()
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = _Room(epoch=self._retired.pop(room_id, 0))
        if self._live(room):
            return None
        room.epoch += 1
        room.lease_node, room.lease_until = node_id, trio.current_time() + ttl_s
        return room.epoch

    async def renew(self, room_id: str, node_id: str, epoch: int, ttl_s: float) -> bool:
        await trio.lowlevel.checkpoint()
        room = self._rooms.get(room_id)
        if room is None or room.epoch != epoch:
            return False
        if self._live(room) and room.lease_node != node_id:
            return False  # as in Redis: the same epoch claimed by another node
        room.lease_node, room.lease_until = node_id, trio.current_time() + ttl_s
        return True

    async def renew_many(self, node_id: str, leases: list[tuple[str, int]], ttl_s: float) -> list[bool | None]:
        return [await self.renew(room_id, node_id, epoch, ttl_s) for room_id, epoch in leases]

    async def release(self, room_id: str, epoch: int, *, node_id: str | None = None) -> bool:
        await trio.lowlevel.checkpoint()
        room = self._rooms.get(room_id)
        if room is None or not self._holds(room, epoch, node_id):
            return False
        room.lease_node = None
        return True

    async def lease(self, room_id: str) -> Lease | None:
        await trio.lowlevel.checkpoint()
        room = self._rooms.get(room_id)
        if room is None or not self._live(room):
            return None
        assert room.lease_node is not None
        return Lease(room_id, room.lease_node, room.epoch)

    async def current_epoch(self, room_id: str) -> int:
        await trio.lowlevel.checkpoint()
        room = self._rooms.get(room_id)
        return room.epoch if room is not None else self._retired.get(room_id, 0)

    async def write_checkpoint(
        self, room_id: str, epoch: int, tick: int, data: bytes, *, node_id: str | None = None
    ) -> bool:
        await trio.lowlevel.checkpoint()
        room = self._rooms.get(room_id)
        if room is None or not self._holds(room, epoch, node_id):
            return False
        room.checkpoint = (epoch, tick, bytes(data))
        room.log = []
        return True

    async def append_log(
        self, room_id: str, epoch: int, entries: list[tuple[int, bytes]], *, node_id: str | None = None
    ) -> bool:
        await trio.lowlevel.checkpoint()
        room = self._rooms.get(room_id)
        if room is None or not self._holds(room, epoch, node_id):
            return False
        room.log.extend((int(t), bytes(e)) for t, e in entries)
        return True

    async def write_many(self, writes: list[Write]) -> list[str]:
        results = []
        for w in writes:
            ok = w.checkpoint is None or await self.write_checkpoint(
                w.room_id, w.epoch, *w.checkpoint, node_id=w.node_id
            )
            ok = ok and (not w.entries or await self.append_log(w.room_id, w.epoch, w.entries, node_id=w.node_id))
            results.append(WRITTEN if ok else FENCED)
        return results

    async def read_checkpoint(self, room_id: str) -> Checkpoint | None:
        await trio.lowlevel.checkpoint()
        room = self._rooms.get(room_id)
        if room is None or room.checkpoint is None:
            return None
        epoch, tick, data = room.checkpoint
        return Checkpoint(room_id, epoch, tick, data, [(t, e) for t, e in room.log if t > tick])

    async def room_ids(self) -> list[str]:
        await trio.lowlevel.checkpoint()
        return sorted(self._rooms)

    async def has_room(self, room_id: str) -> bool:
        await trio.lowlevel.checkpoint()
        return room_id in self._rooms

    async def unowned_rooms(self) -> list[str]:
        await trio.lowlevel.checkpoint()
        return sorted(room_id for room_id, room in self._rooms.items() if not self._live(room))

    async def next_expiry_s(self) -> float | None:
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        live = [room.lease_until - now for room in self._rooms.values() if self._live(room)]
        return min(live, default=None)

    async def forget(self, room_id: str, epoch: int, *, node_id: str | None = None) -> bool:
        await trio.lowlevel.checkpoint()
        room = self._rooms.get(room_id)
        if room is None or not self._holds(room, epoch, node_id):
            return False
        del self._rooms[room_id]
        self._retired[room_id] = epoch
        return True

    async def heartbeat(self, info: NodeInfo, ttl_s: float) -> None:
        await trio.lowlevel.checkpoint()
        self._nodes[info.node_id] = (info, trio.current_time() + ttl_s)

    async def remove_node(self, node_id: str) -> None:
        await trio.lowlevel.checkpoint()
        self._nodes.pop(node_id, None)

    async def nodes(self) -> list[NodeInfo]:
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        return [info for info, until in self._nodes.values() if until > now]

    async def reserve_key(self, key: str, value: bytes, ttl_s: float) -> bytes | None:
        await trio.lowlevel.checkpoint()
        held = self._keys.get(key)
        if held is not None and held[1] > trio.current_time():
            return held[0]
        self._keys[key] = (bytes(value), trio.current_time() + ttl_s)
        return None

    async def put_key(self, key: str, value: bytes, ttl_s: float) -> None:
        await trio.lowlevel.checkpoint()
        self._keys[key] = (bytes(value), trio.current_time() + ttl_s)

    async def drop_key(self, key: str) -> None:
        await trio.lowlevel.checkpoint()
        self._keys.pop(key, None)

    async def generation(self) -> str:
        await trio.lowlevel.checkpoint()
        return self.generation_id

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()
