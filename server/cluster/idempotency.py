"""Allocation idempotency keys shared by the whole cluster, in the store.

A matchmaker that retries ``POST /v1/rooms`` with the same
``idempotency_key`` must get the same room, through whichever node its
retry reaches. The entry node (the one that took the request, before any
forwarding) keeps one record per key in the store:

- ``reserve``: before placing the room, it stores a pending record (the
  request, no allocation) if the key is free. Exactly one of concurrent
  requests with the key wins; the others wait for its answer (up to
  PENDING_WAIT_S) and return the same room.
- ``complete``: the allocation goes into the record, kept IDEMPOTENCY_TTL_S.
- ``release``: a failed allocation frees the key.

A record whose room has ended (no lease and no state in the store) frees
its key: a retry then allocates a new room, as one node alone does. A
record names the node that made the room; when the room has since moved
(failover), the answer names its owner now.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any

import trio

from tickroom.server.cluster.store.base import Store, StoreUnavailable
from tickroom.server.rooms.placement import Allocation, AllocationRefused, AllocationRequest, NoCapacity

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL_S = 24 * 3600.0  # a matchmaker's retries come well within a day
PENDING_TTL_S = 30.0  # a reservation whose node died mid-allocation frees itself
PENDING_WAIT_S = 10.0  # a concurrent retry waits this long for the winner's answer
PENDING_POLL_S = 0.05
ROOM_START_S = 5.0  # a room younger than this may not have claimed its lease yet: it counts as live


def same_request(earlier: AllocationRequest, request: AllocationRequest) -> bool:
    """The rule of one node's idempotency (tickroom.server.rooms.placement):
    the same request, where a retry may leave the seed out."""
    if dataclasses.replace(earlier, seed=None) != dataclasses.replace(request, seed=None):
        return False
    return request.seed is None or request.seed == earlier.seed


def _request_json(request: AllocationRequest) -> dict[str, Any]:
    return {**dataclasses.asdict(request), "labels": dict(request.labels)}


def _allocation_json(allocation: Allocation) -> dict[str, Any]:
    return {**dataclasses.asdict(allocation), "labels": dict(allocation.labels)}


def encode(request: AllocationRequest, allocation: Allocation | None) -> bytes:
    body = {"request": _request_json(request), "allocation": _allocation_json(allocation) if allocation else None}
    return json.dumps(body, separators=(",", ":")).encode()


def decode(data: bytes) -> tuple[AllocationRequest, Allocation | None]:
    """Raises ValueError (or KeyError, TypeError) for a record this code did not write."""
    body = json.loads(data)
    request = AllocationRequest(**body["request"])
    found = body["allocation"]
    return request, (Allocation(**found) if found is not None else None)


class ClusterKeys:
    """The idempotency records of ``store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def reserve(self, request: AllocationRequest) -> Allocation | None:
        """None: this call holds the key and must ``complete`` or ``release``
        it. Else the allocation an earlier request with the key made (its
        ``created`` False). Raises AllocationRefused (the key was used with
        another request), NoCapacity("busy") when a concurrent request with
        the key does not finish in time, StoreUnavailable."""
        key = request.idempotency_key
        assert key is not None
        pending = encode(request, None)
        deadline = trio.current_time() + PENDING_WAIT_S
        while True:
            held = await self.store.reserve_key(key, pending, PENDING_TTL_S)
            if held is None:
                return None
            try:
                earlier, allocation = decode(held)
            except (ValueError, KeyError, TypeError):
                log.warning("idempotency key %r holds an unreadable record; replacing it", key)
                await self.store.drop_key(key)
                continue
            if not same_request(earlier, request):
                raise AllocationRefused(
                    "idempotency_conflict", "this idempotency_key was used with a different request"
                )
            if allocation is None:
                if trio.current_time() > deadline:
                    raise NoCapacity("busy", "a request with this idempotency_key is still being allocated; retry")
                await trio.sleep(PENDING_POLL_S)
                continue
            now_at = await self._where_now(allocation)
            if now_at is None:
                await self.store.drop_key(key)  # its room ended: the key is free again
                continue
            return now_at

    async def complete(self, request: AllocationRequest, allocation: Allocation) -> None:
        """Record the allocation under the request's key."""
        assert request.idempotency_key is not None
        await self.store.put_key(request.idempotency_key, encode(request, allocation), IDEMPOTENCY_TTL_S)

    async def release(self, request: AllocationRequest) -> None:
        """Free the key after a failed allocation (best effort: it also
        frees itself after PENDING_TTL_S)."""
        assert request.idempotency_key is not None
        try:
            await self.store.drop_key(request.idempotency_key)
        except StoreUnavailable as exc:
            log.warning(
                "idempotency key %r: could not free it (%s); it expires by itself", request.idempotency_key, exc
            )

    async def _where_now(self, allocation: Allocation) -> Allocation | None:
        """The allocation as it stands now (its owner node may have
        changed), or None once its room has ended."""
        answer = dataclasses.replace(allocation, created=False)
        lease = await self.store.lease(allocation.room_id)
        if lease is None:
            if time.time() - allocation.created_at < ROOM_START_S or await self.store.has_room(allocation.room_id):
                return answer  # starting, or recovering: the same room, where it was
            return None
        if lease.node_id == allocation.node_id:
            return answer
        for node in await self.store.nodes():
            if node.node_id == lease.node_id:
                return dataclasses.replace(answer, node_id=node.node_id, ws_url=node.url)
        return answer
