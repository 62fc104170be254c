"""The store interface: one Protocol with three parts.

- Leases: a room has at most one owner, named by a lease {node, epoch} with a
  time to live. The epoch is the fencing token: it only grows (it survives
  the lease's expiry), and every write for the room (checkpoint, input log,
  renewal) succeeds only while the room's current epoch is the writer's. A
  node that was presumed dead and wakes up therefore cannot overwrite the new
  owner's state, whatever its clock says. Writers also name themselves
  (``node_id``): a live lease naming another node refuses the write even at
  the same epoch (after a Redis promotion lost a claim, the next claim hands
  the same epoch number out again). ``node_id=None`` fences by the epoch
  alone (tools and tests); the node's own writers always pass it.
- Checkpoints and input logs: the latest checkpoint of a room (its tick and
  an opaque blob) and the per-tick input entries logged after it; writing a
  checkpoint empties the log.
- Nodes: each node's NodeInfo under a heartbeat TTL; a node that stops
  heartbeating disappears.
- Idempotency keys: what an allocation with a matchmaker's key made, for
  every node to answer a retry with (tickroom.server.cluster.placement).

Every method is async and may raise StoreUnavailable (the backend cannot be
reached); a refusal for a stale epoch is a False return, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class StoreUnavailable(Exception):
    """The store cannot be reached now; the caller retries later."""


@dataclass(frozen=True)
class Lease:
    room_id: str
    node_id: str
    epoch: int


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    url: str  # public WebSocket URL clients are redirected to
    capacity: int  # rooms this node may run
    rooms: int = 0
    players: int = 0
    draining: bool = False
    control_url: str | None = None  # http://HOST:PORT of its control API, for cluster placement
    # Figures for ``tickroom status`` (server/cli/status.py); 0 when unknown.
    tick_ms_p50: float = 0.0
    tick_ms_p99: float = 0.0
    overruns: int = 0  # ticks that finished after the next tick's deadline, all rooms
    checkpoint_lag: int = 0  # ticks since the oldest last durable write of a hosted room
    pid: int = 0  # the node's process id on its machine


@dataclass(frozen=True)
class Write:
    """One room's share of a batched write: a checkpoint (tick, data) and/or
    log entries after it, fenced by ``epoch``."""

    room_id: str
    epoch: int
    checkpoint: tuple[int, bytes] | None = None
    entries: list[tuple[int, bytes]] = field(default_factory=list)
    node_id: str | None = None  # the writer: a live lease naming another node refuses it


WRITTEN, FENCED, FAILED = "written", "fenced", "failed"


@dataclass(frozen=True)
class Checkpoint:
    room_id: str
    epoch: int  # epoch of the owner that wrote it
    tick: int
    data: bytes
    log: list[tuple[int, bytes]] = field(default_factory=list)  # (tick, entry) after ``tick``, in order


class Store(Protocol):
    # -- leases ------------------------------------------------------------------

    async def claim(self, room_id: str, node_id: str, ttl_s: float) -> int | None:
        """Take the room if nobody holds its lease: the epoch becomes the
        previous one plus 1 (1 for a new room) and is returned. None when a
        live lease exists. Atomic: of concurrent claimers exactly one wins."""

    async def renew(self, room_id: str, node_id: str, epoch: int, ttl_s: float) -> bool:
        """Extend the lease for ``ttl_s``. False when ``epoch`` is no longer
        the room's epoch (somebody claimed it): the caller lost the room."""

    async def renew_many(self, node_id: str, leases: list[tuple[str, int]], ttl_s: float) -> list[bool | None]:
        """``renew`` for several (room id, epoch) pairs in one round trip.
        Per pair: True (renewed), False (stale: the caller lost the room) or
        None (that renewal hit an error). Raises StoreUnavailable for the batch."""

    async def release(self, room_id: str, epoch: int, *, node_id: str | None = None) -> bool:
        """Drop the lease now (graceful hand-over) so another node can claim
        it without waiting for the TTL. False for a stale epoch."""

    async def lease(self, room_id: str) -> Lease | None:
        """The live lease of the room, or None."""

    async def current_epoch(self, room_id: str) -> int:
        """The room's epoch; 0 when the store has never heard of the room
        (or lost its data: a Redis restarted without persistence)."""

    # -- checkpoints ---------------------------------------------------------------

    async def write_checkpoint(
        self, room_id: str, epoch: int, tick: int, data: bytes, *, node_id: str | None = None
    ) -> bool:
        """Store the room's checkpoint and empty its input log (a writer logs
        only ticks after its last checkpoint, so every entry is older).
        Fenced: False (and nothing written) when ``epoch`` is stale."""

    async def append_log(
        self, room_id: str, epoch: int, entries: list[tuple[int, bytes]], *, node_id: str | None = None
    ) -> bool:
        """Append input-log entries (tick, blob). Fenced like checkpoints."""

    async def write_many(self, writes: list[Write]) -> list[str]:
        """Several rooms' writes in one round trip (checkpoint first, then
        entries, per room). Per write: WRITTEN; FENCED (a stale epoch,
        nothing of it written); FAILED (that room's write hit an error, e.g.
        a log entry out of order). Raises StoreUnavailable for the batch."""

    async def read_checkpoint(self, room_id: str) -> Checkpoint | None:
        """The latest checkpoint with the log entries after it, or None."""

    async def room_ids(self) -> list[str]:
        """Every room with state in the store (live, or waiting for a new owner)."""

    async def has_room(self, room_id: str) -> bool:
        """Whether the room has state in the store (one cheap lookup)."""

    async def unowned_rooms(self) -> list[str]:
        """The rooms with state but no live lease: the ones to recover."""

    async def next_expiry_s(self) -> float | None:
        """Seconds until the soonest live lease expires (None: no live
        lease), as of the last ``unowned_rooms()`` scan: the recovery
        watcher wakes then rather than a whole period later."""

    async def forget(self, room_id: str, epoch: int, *, node_id: str | None = None) -> bool:
        """The room ended for good: delete its lease, checkpoint and log.
        Fenced: a stale owner forgets nothing."""

    # -- nodes -----------------------------------------------------------------------

    async def heartbeat(self, info: NodeInfo, ttl_s: float) -> None:
        """Register or refresh this node for ``ttl_s``."""

    async def remove_node(self, node_id: str) -> None:
        """Unregister at once (graceful stop)."""

    async def nodes(self) -> list[NodeInfo]:
        """The nodes whose heartbeat is alive."""

    # -- allocation idempotency keys ------------------------------------------------------

    async def reserve_key(self, key: str, value: bytes, ttl_s: float) -> bytes | None:
        """Store ``value`` under the idempotency ``key`` for ``ttl_s`` if
        the key is free, atomically: None when this call took it, else the
        value already there (of concurrent reservations exactly one wins)."""

    async def put_key(self, key: str, value: bytes, ttl_s: float) -> None:
        """Overwrite the key's value (the reservation becomes the answer)."""

    async def drop_key(self, key: str) -> None:
        """Free the key (its allocation failed, or its room ended)."""

    # -- the store itself ----------------------------------------------------------------

    async def generation(self) -> str:
        """Who serves the data now (Redis: the master's run id). A change
        means writes acknowledged before it may be gone (an asynchronous
        replica was promoted, or Redis restarted): owners re-anchor their
        rooms. Raises StoreUnavailable."""

    async def aclose(self) -> None:
        """Release connections; idempotent."""
