"""The Redis store: with its Lua scripts (redis_scripts.py), the only code
that imports redis.

redis-py's asyncio client does not run under trio, so its sync client runs in
worker threads (``trio.to_thread.run_sync``) behind a CapacityLimiter that
bounds the threads, sharing one thread-safe ConnectionPool. Socket timeouts
keep a dead Redis from holding a thread for long; every redis error becomes
StoreUnavailable.

The URL names one Redis or a Sentinel group (server/cluster/store/redis_url.py).
Under Sentinel the client is redis-py's ``Sentinel.master_for``: every new
connection asks the Sentinels where the master is, so after a promotion the
first failed call is followed by calls to the new master. ``generation()``
names the master now (its run id): a node that sees it change knows that
writes acknowledged by the old master may be missing (replication is
asynchronous) and re-anchors its rooms (tickroom.server.cluster.failover).

Key layout (every key of one room shares the hash tag ``{room_id}``, so the
Lua scripts of server/cluster/store/redis_scripts.py, which touch several of
them, work on Redis Cluster):

    tickroom:{room}:epoch   INT     the fencing token; only grows
    tickroom:{room}:lease   STRING  "<epoch>|<node id>", PX = lease TTL
    tickroom:{room}:ckpt    HASH    epoch, tick, data (msgpack)
    tickroom:{room}:log     STREAM  entry id "<tick>-1", field "d": that tick's inputs
    tickroom:rooms          SET     room ids with state (no hash tag: one key)
    tickroom:node:<id>      HASH    NodeInfo fields, PX = heartbeat TTL
    tickroom:nodes          SET     node ids (dead ones pruned on read)
    tickroom:idem:{key}     STRING  an allocation's idempotency record (JSON), PX = its TTL
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

import redis
import redis.cluster
import redis.exceptions
import redis.sentinel
import trio

from tickroom.server.cluster.store.base import (
    FAILED,
    FENCED,
    WRITTEN,
    Checkpoint,
    Lease,
    NodeInfo,
    StoreUnavailable,
    Write,
)
from tickroom.server.cluster.store.redis_scripts import FencedScripts
from tickroom.server.cluster.store.redis_url import (
    is_cluster_url,
    is_sentinel_url,
    parse_cluster_url,
    parse_sentinel_url,
)

PREFIX = "tickroom"
MAX_THREADS = 16  # concurrent Redis calls per node
SOCKET_TIMEOUT_S = 2.0  # a dead Redis frees the thread after this long
EPOCH_KEEP_S = 7 * 24 * 3600  # a room's epoch outlives the room, for reused ids


def _key(room_id: str, part: str) -> str:
    return f"{PREFIX}:{{{room_id}}}:{part}"


def _idempotency_key(key: str) -> str:
    return f"{PREFIX}:idem:{{{key}}}"


def check_url(url: str) -> None:
    """Raise ValueError when ``url`` is not a store URL this module can use
    (one Redis, a Sentinel group, a Cluster). Parses only: connects to
    nothing, so a node can refuse a typo at start even while Redis is down."""
    if is_cluster_url(url):
        parse_cluster_url(url)
    elif is_sentinel_url(url):
        parse_sentinel_url(url)
    else:
        redis.Redis.from_url(url)  # redis-py's own parser; the client connects on first use


def _client_for(url: str) -> Any:
    """The sync client for ``url``: one Redis, the master of a Sentinel
    group, or a Redis Cluster (redis-py's ``RedisCluster``). Raises
    BadRedisURL (a ValueError) for a malformed Sentinel or Cluster URL."""
    timeouts: dict[str, Any] = {"socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": SOCKET_TIMEOUT_S}
    if is_cluster_url(url):
        cluster = parse_cluster_url(url)
        return redis.cluster.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in cluster.nodes],
            username=cluster.username,
            password=cluster.password,
            **timeouts,
        )
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, health_check_interval=10, **timeouts)
    target = parse_sentinel_url(url)
    sentinel = redis.sentinel.Sentinel(
        list(target.sentinels),
        sentinel_kwargs={**timeouts, "password": target.sentinel_password},
        **timeouts,
    )
    return sentinel.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        health_check_interval=10,
        **timeouts,
    )


class RedisStore:
    """Implements tickroom.server.cluster.store.base.Store on one Redis (URL: redis://,
    rediss://, unix://; see redis-py's ``from_url``) or on the master of a
    Sentinel group (``redis+sentinel://host:port[,host:port]/service_name[/db]``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.cluster = is_cluster_url(url)
        self._client = _client_for(url)
        self._limiter = trio.CapacityLimiter(MAX_THREADS)
        self._next_expiry_s: float | None = None  # from the last unowned_rooms() scan
        self._scripts = FencedScripts(self._client)

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._limiter)
        except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def ping(self) -> None:
        await self._call(self._client.ping)

    async def generation(self) -> str:
        """The run id of the Redis master serving this store now: it changes
        when a replica is promoted or Redis restarts, the two events after
        which acknowledged writes may be missing."""
        if self.cluster:
            # Every master's run id: a promotion in any shard changes it.
            infos = await self._call(self._client.info, "server", target_nodes=redis.cluster.RedisCluster.PRIMARIES)
            return ",".join(sorted(str(i.get("run_id", "")) for i in cast(dict[str, dict], infos).values()))
        info = cast(dict[str, Any], await self._call(self._client.info, "server"))
        return str(info.get("run_id", ""))

    # -- leases ----------------------------------------------------------------

    async def claim(self, room_id: str, node_id: str, ttl_s: float) -> int | None:
        keys = [_key(room_id, "epoch"), _key(room_id, "lease")]
        epoch = int(await self._call(self._scripts.script("claim"), keys, [node_id, int(ttl_s * 1000), EPOCH_KEEP_S]))
        if not epoch:
            return None
        await self._call(self._client.sadd, f"{PREFIX}:rooms", room_id)
        return epoch

    async def renew(self, room_id: str, node_id: str, epoch: int, ttl_s: float) -> bool:
        keys = [_key(room_id, "epoch"), _key(room_id, "lease")]
        return bool(
            await self._call(self._scripts.script("renew"), keys, [epoch, node_id, int(ttl_s * 1000), EPOCH_KEEP_S])
        )

    async def renew_many(self, node_id: str, leases: list[tuple[str, int]], ttl_s: float) -> list[bool | None]:
        def run() -> list[bool | None]:
            # One pipelined round trip and one thread hop for every room: a
            # thread hop per room, on a node whose trio thread is busy
            # ticking, can take longer than the renewal period.
            replies = self._scripts.run_pipelined(
                [
                    (
                        "renew",
                        [_key(room_id, "epoch"), _key(room_id, "lease")],
                        [epoch, node_id, int(ttl_s * 1000), EPOCH_KEEP_S],
                    )
                    for room_id, epoch in leases
                ]
            )
            if any(isinstance(r, redis.ConnectionError | redis.TimeoutError) for r in replies):
                raise StoreUnavailable(f"pipeline: {replies}")
            return [None if isinstance(r, Exception) else bool(r) for r in replies]

        return await self._call(run)

    async def release(self, room_id: str, epoch: int, *, node_id: str | None = None) -> bool:
        keys = [_key(room_id, "epoch"), _key(room_id, "lease")]
        return bool(await self._call(self._scripts.script("release"), keys, [epoch, node_id or ""]))

    async def lease(self, room_id: str) -> Lease | None:
        raw = await self._call(self._client.get, _key(room_id, "lease"))
        if raw is None:
            return None
        epoch, _, node = raw.decode().partition("|")
        return Lease(room_id, node, int(epoch))

    async def current_epoch(self, room_id: str) -> int:
        return int(await self._call(self._client.get, _key(room_id, "epoch")) or 0)

    # -- checkpoints -------------------------------------------------------------

    async def write_checkpoint(
        self, room_id: str, epoch: int, tick: int, data: bytes, *, node_id: str | None = None
    ) -> bool:
        keys = [_key(room_id, p) for p in ("epoch", "lease", "ckpt", "log")]
        return bool(await self._call(self._scripts.script("checkpoint"), keys, [epoch, node_id or "", tick, data]))

    async def append_log(
        self, room_id: str, epoch: int, entries: list[tuple[int, bytes]], *, node_id: str | None = None
    ) -> bool:
        args: list[Any] = [epoch, node_id or ""]
        for tick, data in entries:
            args += [int(tick), data]
        keys = [_key(room_id, "epoch"), _key(room_id, "lease"), _key(room_id, "log")]
        return bool(await self._call(self._scripts.script("append"), keys, args))

    async def write_many(self, writes: list[Write]) -> list[str]:
        def run() -> list[str]:
            # One pipelined round trip (not a transaction: rooms live in
            # different slots; on a Cluster, one per master); each script is
            # fenced on its own.
            calls: list[tuple[str, list[str], list[Any]]] = []
            parts: list[int] = []
            for w in writes:
                epoch_key, lease_key, n = _key(w.room_id, "epoch"), _key(w.room_id, "lease"), 0
                if w.checkpoint is not None:
                    keys = [epoch_key, lease_key, _key(w.room_id, "ckpt"), _key(w.room_id, "log")]
                    calls.append(("checkpoint", keys, [w.epoch, w.node_id or "", *w.checkpoint]))
                    n += 1
                if w.entries:
                    args: list[Any] = [w.epoch, w.node_id or ""]
                    for tick, data in w.entries:
                        args += [int(tick), data]
                    calls.append(("append", [epoch_key, lease_key, _key(w.room_id, "log")], args))
                    n += 1
                parts.append(n)
            replies = iter(self._scripts.run_pipelined(calls))
            results = []
            for n in parts:
                mine = [next(replies) for _ in range(n)]
                if any(isinstance(r, redis.ConnectionError | redis.TimeoutError) for r in mine):
                    raise StoreUnavailable(f"pipeline: {mine}")
                if any(isinstance(r, Exception) for r in mine):
                    results.append(FAILED)
                else:
                    results.append(WRITTEN if all(int(r) == 1 for r in mine) else FENCED)
            return results

        return await self._call(run)

    async def read_checkpoint(self, room_id: str) -> Checkpoint | None:
        def read() -> Checkpoint | None:
            # The client returns bytes (no decode_responses); its stubs say bytes | str.
            fields = cast(dict[bytes, bytes], self._client.hgetall(_key(room_id, "ckpt")))
            if not fields:
                return None
            tick = int(fields[b"tick"])
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                self._client.xrange(_key(room_id, "log"), min=f"{tick + 1}-0"),
            )
            log = [(int(eid.split(b"-")[0]), values[b"d"]) for eid, values in entries]
            return Checkpoint(room_id, int(fields[b"epoch"]), tick, fields[b"data"], log)

        return await self._call(read)

    async def room_ids(self) -> list[str]:
        return sorted(m.decode() for m in await self._call(self._client.smembers, f"{PREFIX}:rooms"))

    async def has_room(self, room_id: str) -> bool:
        return bool(await self._call(self._client.sismember, f"{PREFIX}:rooms", room_id))

    async def unowned_rooms(self) -> list[str]:
        def read() -> list[str]:
            ids = sorted(m.decode() for m in cast(set[bytes], self._client.smembers(f"{PREFIX}:rooms")))
            # One pipelined round trip for all the leases (not a transaction:
            # the keys live in different slots; a stale answer only makes a
            # claim fail, the claim itself is atomic).
            pipe = self._client.pipeline(transaction=False)
            for room_id in ids:
                pipe.pttl(_key(room_id, "lease"))
            ttls_ms = [int(t) for t in pipe.execute()]
            # PTTL is -2 for a missing key (-1: no expiry, never written so).
            live = [t for t in ttls_ms if t >= 0]
            self._next_expiry_s = min(live) / 1000 if live else None
            return [room_id for room_id, ttl in zip(ids, ttls_ms, strict=True) if ttl == -2]

        return await self._call(read)

    async def next_expiry_s(self) -> float | None:
        await trio.lowlevel.checkpoint()
        return self._next_expiry_s

    async def forget(self, room_id: str, epoch: int, *, node_id: str | None = None) -> bool:
        keys = [_key(room_id, p) for p in ("epoch", "lease", "ckpt", "log")]
        if not await self._call(self._scripts.script("forget"), keys, [epoch, node_id or ""]):
            return False
        await self._call(self._client.srem, f"{PREFIX}:rooms", room_id)
        return True

    # -- idempotency keys ------------------------------------------------------------
    # One key each, hash-tagged on its own: no command touches two of them.

    async def reserve_key(self, key: str, value: bytes, ttl_s: float) -> bytes | None:
        def reserve() -> bytes | None:
            name = _idempotency_key(key)
            for _ in range(3):  # the holder's TTL may run out between SET NX and GET
                if self._client.set(name, value, nx=True, px=int(ttl_s * 1000)):
                    return None
                held = cast(bytes | None, self._client.get(name))
                if held is not None:
                    return held
            raise StoreUnavailable(f"idempotency key {key!r} keeps expiring under us")

        return await self._call(reserve)

    async def put_key(self, key: str, value: bytes, ttl_s: float) -> None:
        await self._call(self._client.set, _idempotency_key(key), value, px=int(ttl_s * 1000))

    async def drop_key(self, key: str) -> None:
        await self._call(self._client.delete, _idempotency_key(key))

    # -- nodes ---------------------------------------------------------------------

    async def heartbeat(self, info: NodeInfo, ttl_s: float) -> None:
        def beat() -> None:
            key = f"{PREFIX}:node:{info.node_id}"
            pipe = self._client.pipeline(transaction=False)
            pipe.hset(
                key,
                mapping={
                    "url": info.url,
                    "capacity": info.capacity,
                    "rooms": info.rooms,
                    "players": info.players,
                    "draining": int(info.draining),
                    "control_url": info.control_url or "",
                    "tick_ms_p50": info.tick_ms_p50,
                    "tick_ms_p99": info.tick_ms_p99,
                    "overruns": info.overruns,
                    "checkpoint_lag": info.checkpoint_lag,
                    "pid": info.pid,
                },
            )
            pipe.pexpire(key, int(ttl_s * 1000))
            pipe.sadd(f"{PREFIX}:nodes", info.node_id)
            pipe.execute()

        await self._call(beat)

    async def remove_node(self, node_id: str) -> None:
        def remove() -> None:
            self._client.delete(f"{PREFIX}:node:{node_id}")
            self._client.srem(f"{PREFIX}:nodes", node_id)

        await self._call(remove)

    async def nodes(self) -> list[NodeInfo]:
        def read() -> list[NodeInfo]:
            found = []
            for raw_id in cast(set[bytes], self._client.smembers(f"{PREFIX}:nodes")):
                node_id = raw_id.decode()
                fields = cast(dict[bytes, bytes], self._client.hgetall(f"{PREFIX}:node:{node_id}"))
                if not fields:  # its heartbeat expired: the node is gone
                    self._client.srem(f"{PREFIX}:nodes", node_id)
                    continue
                found.append(
                    NodeInfo(
                        node_id=node_id,
                        url=fields[b"url"].decode(),
                        capacity=int(fields[b"capacity"]),
                        rooms=int(fields[b"rooms"]),
                        players=int(fields[b"players"]),
                        draining=bool(int(fields[b"draining"])),
                        control_url=fields.get(b"control_url", b"").decode() or None,
                        # Absent in a hash written by an older node.
                        tick_ms_p50=float(fields.get(b"tick_ms_p50", 0)),
                        tick_ms_p99=float(fields.get(b"tick_ms_p99", 0)),
                        overruns=int(fields.get(b"overruns", 0)),
                        checkpoint_lag=int(fields.get(b"checkpoint_lag", 0)),
                        pid=int(fields.get(b"pid", 0)),
                    )
                )
            return sorted(found, key=lambda n: n.node_id)

        return await self._call(read)

    async def aclose(self) -> None:
        await self._call(self._client.close)
