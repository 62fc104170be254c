"""Wiring of failover into a node, from plain values: the store from the URL,
the node's id, the room leases (the registry's hosting) and the Failover
service in the server's root nursery."""

from __future__ import annotations

import logging
import os
import secrets
import socket

import trio

from tickroom.server.cluster.failover import Failover
from tickroom.server.cluster.leases import FailoverConfig, RoomLeases
from tickroom.server.cluster.redaction import redacted
from tickroom.server.cluster.store.redis import RedisStore, check_url
from tickroom.server.rooms.registry import RoomRegistry

log = logging.getLogger(__name__)


def check_store_url(url: str) -> None:
    """Raise ValueError (its message names the URL redacted) when ``url`` is
    not a store URL, so that ``tickroom serve`` fails at start with a line,
    not a traceback. Makes no connection."""
    try:
        check_url(url)
    except ValueError as exc:  # redis-py's messages name no secret
        raise ValueError(f"bad --redis-url {redacted(url)}: {exc}") from None


def unique_node_id(node_id: str) -> str:
    """``node_id`` when given (it must then be unique in the cluster); else an
    id no other process shares."""
    return node_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def room_leases(
    redis_url: str, *, node_id: str, lease_ttl_s: float, checkpoint_interval: int, durable_acks: bool = False
) -> RoomLeases:
    """The leases of this node's rooms in the Redis store at ``redis_url``
    (no connection is made yet): hand them to the RoomRegistry as its hosting.
    ``durable_acks``: snapshots acknowledge only stored inputs (--durable-acks)."""
    config = FailoverConfig(
        node_id=node_id, lease_ttl_s=lease_ttl_s, checkpoint_interval=checkpoint_interval, durable_acks=durable_acks
    )
    return RoomLeases(config, RedisStore(redis_url))


async def start_failover(
    leases: RoomLeases, registry: RoomRegistry, *, public_url: str, store_name: str, nursery: trio.Nursery
) -> Failover:
    """Start the Failover service in ``nursery`` (it runs until cancelled).
    ``store_name`` is logged (redacted). An unreachable store is logged and
    retried, never fatal."""
    failover = Failover(leases, registry, public_url=public_url)
    await nursery.start(failover.run)
    fc = leases.config
    log.info(
        "failover on: node %s at %s, store %s, lease %g s, checkpoint every %d ticks, durable acks %s",
        fc.node_id, public_url, redacted(store_name), fc.lease_ttl_s, fc.checkpoint_interval,
        "on" if fc.durable_acks else "off",
    )  # fmt: skip
    return failover
