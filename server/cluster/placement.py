"""Cluster placement: with a shared store (Redis), any node answers an
allocation and the room goes to the live node with the most free capacity.

The node registry (each node's heartbeat: capacity, rooms, players, control
API URL) is the only shared state read. This node's own load is taken live,
not from its last heartbeat; a node that places a room on itself registers
its new load at once, so the next decision anywhere sees it. The chosen
node, when it is another one, gets the same request on its own control API
(``POST /v1/rooms`` with the cluster's shared API key) marked with
``X-Tickroom-Forwarded: 1``, which makes it allocate locally: a request is
forwarded at most once. An idempotency key is kept in the store by the
node that took the request (tickroom.server.cluster.idempotency), so a retry
through any node returns the same room; when the store cannot be reached,
each node's own memory of its keys answers instead (the target node's for a
forwarded key, and this node remembers which node it sent each key to).

When the chosen node turns out to be full (its registered load was stale) or
unreachable, the next best one is tried; when none can take the room, the
allocation fails with NoCapacity("cluster_full").
"""

from __future__ import annotations

import dataclasses
import json
import logging
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import trio

from tickroom.server.cluster.failover import Failover
from tickroom.server.cluster.idempotency import ClusterKeys
from tickroom.server.cluster.store.base import NodeInfo, StoreUnavailable
from tickroom.server.rooms.placement import (
    IDEMPOTENCY_KEYS_KEPT,
    Allocation,
    AllocationRefused,
    AllocationRequest,
    LocalPlacement,
    NoCapacity,
)

log = logging.getLogger(__name__)

FORWARDED_HEADER = "X-Tickroom-Forwarded"
FORWARD_TIMEOUT_S = 5.0


class Unreachable(Exception):
    """The chosen node did not answer (or answered nonsense)."""


def free_capacity(node: NodeInfo) -> int:
    return 0 if node.draining else max(node.capacity - node.rooms, 0)


def ranked(nodes: list[NodeInfo]) -> list[NodeInfo]:
    """The nodes that can take a room, best first: most free capacity, then
    fewest players, then node id (so that every node decides alike)."""
    return sorted((n for n in nodes if free_capacity(n) > 0), key=lambda n: (-free_capacity(n), n.players, n.node_id))


class ClusterPlacement:
    """Places rooms across the nodes of ``failover``'s store; rooms placed
    on this node are made by ``local``."""

    def __init__(self, local: LocalPlacement, failover: Failover, *, api_key: str | None) -> None:
        self.local = local
        self.failover = failover
        self.api_key = api_key
        self.node_id = failover.config.node_id
        self._forwarded_keys: dict[str, str] = {}  # idempotency key -> node id it was sent to
        self.keys = ClusterKeys(failover.store)

    def describe(self, room_id: str) -> Allocation | None:
        return self.local.describe(room_id)

    async def allocate(self, request: AllocationRequest, *, forwarded: bool = False) -> Allocation:
        if forwarded:
            return await self._here(request)
        if request.idempotency_key is None:
            return await self._place(request)
        try:
            earlier = await self.keys.reserve(request)
        except StoreUnavailable as exc:
            log.warning("placement: idempotency keys unreachable (%s); this node's memory of them answers", exc)
            return await self._place(request)
        if earlier is not None:
            return earlier
        try:
            allocation = await self._place(request)
        except BaseException:
            with trio.CancelScope(shield=True), trio.move_on_after(FORWARD_TIMEOUT_S):
                await self.keys.release(request)
            raise
        try:
            await self.keys.complete(request, allocation)
        except StoreUnavailable as exc:
            log.warning("placement: could not record idempotency key %r: %s", request.idempotency_key, exc)
        return allocation

    async def _place(self, request: AllocationRequest) -> Allocation:
        """The room on the best node (this one or another): the placement
        proper, with this node's memory of the keys it forwarded."""
        key = request.idempotency_key
        if key is not None and self.local.has_room_for_key(key):
            return await self._here(request)  # made here before: LocalPlacement answers
        try:
            nodes = await self.failover.store.nodes()
        except StoreUnavailable as exc:
            log.warning("placement: cannot read the node registry (%s); allocating here", exc)
            return await self._here(request)
        me = self.failover.node_info()  # live, not the last heartbeat
        nodes = [me if n.node_id == self.node_id else n for n in nodes]
        if all(n.node_id != self.node_id for n in nodes):
            nodes.append(me)
        candidates = ranked(nodes)
        if key is not None and key in self._forwarded_keys:
            # A retry: first the node that has the key's room, full or not
            # (its idempotency answers with the same room if it still runs).
            earlier = self._forwarded_keys[key]
            candidates = [n for n in nodes if n.node_id == earlier] + [n for n in candidates if n.node_id != earlier]
        for node in candidates:
            if node.node_id == self.node_id:
                try:
                    return await self._here(request)
                except NoCapacity:
                    continue
            if not node.control_url:
                continue  # no control API: it cannot be asked
            try:
                allocation = await self._forward(node, request)
            except NoCapacity as exc:
                log.info("placement: node %s is full (%s); trying the next", node.node_id, exc.reason)
                continue
            except Unreachable as exc:
                log.warning("placement: node %s at %s: %s; trying the next", node.node_id, node.control_url, exc)
                continue
            if key is not None:
                if len(self._forwarded_keys) >= IDEMPOTENCY_KEYS_KEPT:
                    del self._forwarded_keys[next(iter(self._forwarded_keys))]
                self._forwarded_keys[key] = node.node_id
            return allocation
        raise NoCapacity("cluster_full", "every node in the cluster runs its maximum of rooms (or is draining)")

    async def _here(self, request: AllocationRequest) -> Allocation:
        allocation = await self.local.allocate(request)
        if allocation.created:
            await self.failover.heartbeat_now()
        return allocation

    async def _forward(self, node: NodeInfo, request: AllocationRequest) -> Allocation:
        """``POST /v1/rooms`` on ``node``; its answer as an Allocation."""
        assert node.control_url
        url = node.control_url.rstrip("/") + "/v1/rooms"
        if not url.startswith(("http://", "https://")):
            raise Unreachable(f"not an HTTP URL: {url!r}")
        body = {k: v for k, v in dataclasses.asdict(request).items() if v is not None}
        body["labels"] = dict(request.labels)
        headers = {"Content-Type": "application/json", FORWARDED_HEADER: "1"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        http_request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")  # noqa: S310 - the scheme is checked above  # nosec B310
        status, answer = await trio.to_thread.run_sync(_post, http_request)
        if status in (200, 201):
            try:
                return _allocation(answer, created=status == 201)
            except (KeyError, TypeError, ValueError) as exc:
                raise Unreachable(f"unexpected answer {answer!r}") from exc
        reason = answer.get("reason", "") if isinstance(answer, dict) else ""
        message = answer.get("error", "") if isinstance(answer, dict) else ""
        if status == 503:
            raise NoCapacity(reason or "unavailable", message)
        if status in (409, 422):
            raise AllocationRefused(reason or "refused", message)
        raise Unreachable(f"answered {status} ({reason or answer!r})")


def _post(request: urllib.request.Request) -> tuple[int, Any]:
    """In a worker thread: the status and the JSON answer."""
    try:
        with urllib.request.urlopen(request, timeout=FORWARD_TIMEOUT_S) as response:  # noqa: S310 - scheme checked by the caller  # nosec B310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (OSError, ValueError) as exc:  # refused, timed out, bad URL
        raise Unreachable(str(exc)) from exc
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw[:200].decode("utf-8", "replace")


def _allocation(answer: dict[str, Any], *, created: bool) -> Allocation:
    return Allocation(
        room_id=answer["room_id"],
        node_id=answer["node_id"],
        ws_url=answer["ws_url"],
        game=answer["game"],
        max_players=int(answer["max_players"]),
        tick_rate=int(answer["tick_rate"]),
        labels=dict(answer.get("labels") or {}),
        options=dict(answer.get("options") or {}),
        created_at=datetime.fromisoformat(answer["created_at"].replace("Z", "+00:00")).timestamp(),
        created=created,
    )
