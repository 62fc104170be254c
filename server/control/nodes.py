"""Which nodes the control API shows (``GET /v1/nodes``, the console's node
list): the cluster's registry when the node shares a Redis, else this node
alone. Both answer a list of ``NodeInfo`` (tickroom.server.cluster.store.base),
this node's entry always live rather than its last heartbeat.
"""

from __future__ import annotations

import os
from typing import Protocol

from tickroom.percentiles import percentiles
from tickroom.server.cluster.failover import Failover
from tickroom.server.cluster.store.base import NodeInfo
from tickroom.server.rooms.registry import RoomRegistry


class NodeDirectory(Protocol):
    """The nodes to show. ``nodes()`` raises
    tickroom.server.cluster.store.base.StoreUnavailable when the registry
    cannot be read. ``node_id`` is the node answering (the one this
    directory's API is served by)."""

    @property
    def node_id(self) -> str: ...

    async def nodes(self) -> list[NodeInfo]: ...


class ThisNode:
    """A node without a shared store: itself, read from its registry."""

    def __init__(self, registry: RoomRegistry, *, node_id: str, ws_url: str, control_url: str | None = None) -> None:
        self.registry = registry
        self.node_id = node_id
        self.ws_url = ws_url
        self.control_url = control_url

    async def nodes(self) -> list[NodeInfo]:
        rooms = self.registry.rooms()
        durations = [d for room in rooms for d in room.tick_durations]
        p50, p99 = (p * 1e3 for p in percentiles(durations, (50, 99))) if durations else (0.0, 0.0)
        return [
            NodeInfo(
                node_id=self.node_id,
                url=self.ws_url,
                capacity=self.registry.config.max_rooms,
                rooms=len(rooms),
                players=sum(r.players.connected_count() for r in rooms),
                draining=not self.registry.taking_rooms,
                control_url=self.control_url,
                tick_ms_p50=round(p50, 3),
                tick_ms_p99=round(p99, 3),
                overruns=sum(r.statistics().overruns for r in rooms),
                pid=os.getpid(),
            )
        ]


class ClusterNodes:
    """Every node registered in the failover's store (those whose heartbeat
    is live), this one as it is now."""

    def __init__(self, failover: Failover) -> None:
        self.failover = failover

    @property
    def node_id(self) -> str:
        return self.failover.config.node_id

    async def nodes(self) -> list[NodeInfo]:
        me = self.failover.node_info()
        others = [n for n in await self.failover.store.nodes() if n.node_id != me.node_id]
        return sorted([me, *others], key=lambda n: n.node_id)
