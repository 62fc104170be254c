"""Wiring of failover into a node: the store from the URL, the node's id and
public URL, and the Failover service in the server's root nursery."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from urllib.parse import urlsplit, urlunsplit

import trio

from tickroom.server.cluster.failover import Failover, FailoverConfig
from tickroom.server.config import ServerConfig
from tickroom.server.rooms.registry import RoomRegistry

log = logging.getLogger(__name__)


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def public_url(config: ServerConfig, port: int) -> str:
    if config.public_url:
        return config.public_url
    host = config.host if config.host not in ("", "0.0.0.0", "::") else socket.gethostname()  # noqa: S104  # nosec B104 - recognising the wildcard
    return f"ws://{host}:{port}"


async def start_failover(config: ServerConfig, registry: RoomRegistry, port: int, nursery: trio.Nursery) -> Failover:
    """Start the Failover service in ``nursery`` (it runs until cancelled).
    An unreachable Redis is logged and retried, never fatal."""
    from tickroom.server.cluster.store.redis import RedisStore  # the only place redis is imported from

    assert config.redis_url
    store = RedisStore(config.redis_url)
    fc = FailoverConfig(
        # --node-id names the node everywhere (it must then be unique in the
        # cluster); without it, an id no other process shares.
        node_id=config.node_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
        public_url=public_url(config, port),
        lease_ttl_s=config.lease_ttl_s,
        checkpoint_interval=config.checkpoint_interval or config.tick_rate,
    )
    failover = Failover(fc, store, registry)
    await nursery.start(failover.run)
    log.info(
        "failover on: node %s at %s, store %s, lease %g s, checkpoint every %d ticks",
        fc.node_id, fc.public_url, redacted(config.redis_url), fc.lease_ttl_s, fc.checkpoint_interval,
    )  # fmt: skip
    return failover
