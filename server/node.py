"""The game server: listeners, connections and the room registry, and the
order they stop in.

Nursery nesting is shutdown order (after hypercorn's trio runner): the root
nursery hosts the registry and the control API (tickroom.server.control, when
``control_port`` is set); inside it, the connection nursery hosts the
accept loops and every connection. The control API stops last, so /healthz
and /readyz answer during the drain. ``shutdown()`` stops accepting, asks every
room to close its clients with 1001 (going away), and gives all of it
``graceful_timeout_s`` before cancelling what is left.
"""

from __future__ import annotations

import errno
import logging
import socket
from urllib.parse import urlsplit, urlunsplit

import trio

from tickroom.protocol import messages as m
from tickroom.protocol.codec import encode_redirect
from tickroom.protocol.errors import Code
from tickroom.server.config import ServerConfig
from tickroom.server.ops.metrics import ServerMetrics
from tickroom.server.rooms.registry import RoomRegistry
from tickroom.server.rooms.room import TickProfile
from tickroom.server.transport.connection import Connection

log = logging.getLogger(__name__)

# accept() errors that mean "out of resources, try again shortly" (as in
# trio's serve_listeners): the server stays up and sheds the new connection.
_ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
ACCEPT_BACKOFF_S = 0.1
# Connections being refused politely (upgrade, error, close) at once; past
# this, a refused connection is closed without a word, so that a flood of
# connections over the caps cannot hold unbounded sockets for the handshake
# timeout each.
MAX_REFUSING = 256
# How long a draining node waits to tell the cluster so before it sends its
# clients on; a slow Redis must not hold the drain.
DRAIN_NOTICE_S = 2.0


def reachable_url(url: str) -> str:
    """``url`` with a wildcard host (0.0.0.0, ::) replaced by this host's
    name, for other nodes to reach it at."""
    parts = urlsplit(url)
    if parts.hostname in ("0.0.0.0", "::"):  # noqa: S104 - recognising the wildcard, not binding to it  # nosec B104
        return urlunsplit(parts._replace(netloc=f"{socket.gethostname()}:{parts.port}"))
    return url


class GameServer:
    """``await nursery.start(server.run)`` returns once listening; the bound
    ports are then in ``server.ports``."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.registry = RoomRegistry(config.registry())
        self.ports: list[int] = []
        self.connections: set[Connection] = set()
        self.refused_connections = 0  # over --max-connections or --max-connections-per-ip
        # Each live room's TickProfile -> (seconds, player_ticks) at the last
        # load line (keyed by the object: a room's profile dies with it).
        self._profiles_seen: dict = {}
        self._refusing = 0  # refusals in progress
        self.replaced_by_closed = 0  # latest-wins replacements of connections that ended
        self._per_ip: dict[str, int] = {}  # admitted connections by source address
        self._limits = config.connection_limits()
        self._tls = config.ssl_context
        self._shutdown = trio.Event()
        self.metrics = ServerMetrics(self)
        self.node_id = config.node_id or socket.gethostname()
        self.control_url: str | None = None  # http://HOST:PORT once the control API is bound
        self.failover = None  # tickroom.server.cluster.failover.Failover with --redis-url
        self._control_stop = trio.Event()
        self._control_done = trio.Event()
        # Under Agones (AGONES_SDK_HTTP_PORT): Ready, Health, Shutdown and the
        # rooms/players Counters through the SDK sidecar (tickroom.server.ops.agones).
        from tickroom.server.ops.agones import AgonesSDK, port_from_env

        agones_port = port_from_env()
        self.agones: AgonesSDK | None = AgonesSDK(agones_port) if agones_port is not None else None
        if config.control_port is not None:
            from tickroom.server.control.auth import check_exposure

            # Before anything is bound: an open API on the network is a config error.
            check_exposure(config.control_bind_host(), config.api_key)

    @property
    def stopping(self) -> bool:
        return self._shutdown.is_set()

    def shutdown(self) -> None:
        """Begin the graceful stop; ``run()`` returns when it is done."""
        self._shutdown.set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as root:
            await root.start(self.registry.run)
            if self.config.stats_interval_s > 0:
                root.start_soon(self._log_stats_every, self.config.stats_interval_s)
            listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host or None)
            self.ports = sorted({listener.socket.getsockname()[1] for listener in listeners})
            if self.config.redis_url:
                from tickroom.server.cluster.startup import start_failover

                self.failover = await start_failover(self.config, self.registry, self.ports[0], root)
                # One id for the node: in the registry and in allocations.
                self.node_id = self.failover.config.node_id
            if self.config.control_port is not None:
                self.control_url = await root.start(self._serve_control)
                if self.failover is not None:
                    # Other nodes forward allocations here (cluster placement).
                    self.failover.control_url = reachable_url(self.control_url)
                    await self.failover.heartbeat_now()
            async with trio.open_nursery() as connections:
                accepting = trio.CancelScope()
                connections.start_soon(self._accept_all, listeners, connections, accepting)
                log.info(
                    "tickroom listening on %s://%s:%s (game %s, %d Hz)",
                    "wss" if self._tls else "ws",
                    self.config.host or "*", self.ports[0], self.config.default_game, self.config.tick_rate,
                )  # fmt: skip
                if self.agones is not None:
                    root.start_soon(self.agones.run, self.registry, self.config.max_rooms)
                task_status.started(self)
                await self._shutdown.wait()

                log.info("shutting down: closing rooms (up to %g s)", self.config.graceful_timeout_s)
                accepting.cancel()
                connections.cancel_scope.deadline = trio.current_time() + self.config.graceful_timeout_s
                if self.failover is not None:
                    # Rooms move: each checkpoints and releases its lease as
                    # it ends, and its clients rejoin elsewhere (REDIRECT).
                    self.failover.drain()
                    # The registry shows us draining before any client is
                    # sent on, so the other nodes do not send it back here.
                    with trio.move_on_after(DRAIN_NOTICE_S):
                        await self.failover.heartbeat_now()
                    await self._tell_clients_where_to_go()
                    self.registry.drain(Code.REDIRECT, "server draining; rejoin to continue on another node")
                else:
                    self.registry.drain()
                await self.registry.wait_empty()
                while self.connections:
                    await trio.sleep(0.05)
                connections.cancel_scope.cancel()
            self._control_stop.set()
            if self.config.control_port is not None:
                with trio.move_on_after(self.config.graceful_timeout_s):
                    await self._control_done.wait()
            if self.failover is not None:
                await self.failover.leave_cluster()
            if self.agones is not None:
                # The drain is over: Agones may now delete this game server.
                await self.agones.shutdown()
            root.cancel_scope.cancel()
        log.info("stopped")

    async def _tell_clients_where_to_go(self) -> None:
        """Before a drain closes them (4202): a redirect to another node,
        where the rooms will be recovered (clients retry there on 4105)."""
        assert self.failover is not None
        url = await self.failover.successor_url()
        if url is None:
            return
        for conn in list(self.connections):
            if conn.joined is not None and not conn.closed:
                conn.send(encode_redirect(m.Redirect(room=conn.joined.room_id, url=url)))

    @property
    def ws_url(self) -> str:
        """The URL clients reach this node's game port at."""
        if self.config.public_url:
            return self.config.public_url
        host = self.config.host
        if host in ("", "0.0.0.0", "::"):  # noqa: S104 - recognising the wildcard, not binding to it  # nosec B104
            host = socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        return f"ws://{host}:{self.ports[0] if self.ports else self.config.port}"

    async def _serve_control(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        # Imported here: hypercorn is only needed when the API is served.
        from tickroom.server.cluster.placement import ClusterPlacement
        from tickroom.server.control.api import ControlAPI
        from tickroom.server.control.serve import serve_control_api
        from tickroom.server.rooms.placement import LocalPlacement, Placement

        host = self.config.control_bind_host()
        placement: Placement = LocalPlacement(self.registry, node_id=self.node_id, ws_url=self.ws_url)
        if self.failover is not None:
            # A shared store: rooms go to the node with the most free capacity.
            placement = ClusterPlacement(placement, self.failover, api_key=self.config.api_key)
        try:
            await serve_control_api(
                ControlAPI(self, placement), host, self.config.control_port, self._control_stop, task_status=task_status
            )
        finally:
            self._control_done.set()

    def load_summary(self) -> str:
        """One line on the node's load: rooms, players, tick times."""
        rooms = self.registry.rooms()
        durations = [d for room in rooms for d in room.tick_durations]
        stats = [room.statistics() for room in rooms]
        p50 = p99 = 0.0
        if durations:
            ordered = sorted(durations)
            p50 = ordered[len(ordered) // 2] * 1e3
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3
        # Backpressure at a glance: latest-wins replacements (slow readers)
        # and the largest reliable backlog any one client holds.
        outboxes = [conn.ws.outbox.statistics() for conn in self.connections]
        summary = (
            f"rooms={len(rooms)} players={sum(s.connected for s in stats)} connections={len(self.connections)} "
            f"tick_ms_p50={p50:.3f} tick_ms_p99={p99:.3f} overruns={sum(s.overruns for s in stats)} "
            f"crashes={self.registry.crashes} refused={self.refused_connections} "
            f"snapshots_replaced={self.replaced_by_closed + sum(o.snapshots_replaced for o in outboxes)} "
            f"pending_bytes_max={max((o.pending_bytes for o in outboxes), default=0)}"
        )
        summary += f" {self._tick_profile(rooms)}"
        if self.failover is not None:
            summary += f" {self.failover.summary()}"
        return summary

    def _tick_profile(self, rooms) -> str:
        """Microseconds per player per tick by phase (tickroom.server.rooms.room.TickProfile)
        since the previous load line, over the rooms alive now (one that
        started since counts from its start)."""
        totals = [0.0, 0.0, 0.0, 0.0]
        player_ticks = 0
        seen = {}
        for room in rooms:
            profile = room.profile
            now = seen[profile] = (list(profile.seconds), profile.player_ticks)
            before = self._profiles_seen.get(profile, ([0.0] * 4, 0))  # a room new since: from zero
            for k in range(4):
                totals[k] += now[0][k] - before[0][k]
            player_ticks += now[1] - before[1]
        self._profiles_seen = seen
        per = [t / player_ticks * 1e6 if player_ticks else 0.0 for t in totals]
        phases = ",".join(f"{name}:{v:.1f}" for name, v in zip(TickProfile.PHASES, per, strict=True))
        return f"us_per_player_tick={phases},total:{sum(per):.1f}"

    async def _log_stats_every(self, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            log.info("load: %s", self.load_summary())

    async def _accept_all(self, listeners, nursery: trio.Nursery, scope: trio.CancelScope) -> None:
        with scope:
            async with trio.open_nursery() as accepting:
                for listener in listeners:
                    accepting.start_soon(self._accept_loop, listener, nursery)
        for listener in listeners:
            await listener.aclose()

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while True:
            try:
                trio_sock, _ = await listener.socket.accept()
            except OSError as exc:
                if exc.errno in _ACCEPT_CAPACITY_ERRNOS:
                    log.error("accept failed (%s); retrying in %g s", exc, ACCEPT_BACKOFF_S)
                    await trio.sleep(ACCEPT_BACKOFF_S)
                    continue
                raise
            # The connection drives a plain non-blocking socket with trio's
            # wait_readable/wait_writable, so the tick can write to it
            # directly (see tickroom.server.transport.outbox).
            sock = socket.socket(fileno=trio_sock.detach())
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            nursery.start_soon(self._serve_connection, sock)

    async def _serve_connection(self, sock: socket.socket) -> None:
        conn = Connection(sock, self._limits, tls=self._tls)
        ip = conn.peer.rpartition(":")[0]
        refuse = self._over_limit(ip)
        if refuse is not None:
            # Refused after the upgrade, with an error and a close code, so
            # that the client can tell "full" from "down". Refused
            # connections do not count; the handshake and close timeouts
            # bound what each costs.
            self.refused_connections += 1
            if self._refusing >= MAX_REFUSING:
                sock.close()
                return
            self._refusing += 1
            try:
                await conn.serve(self.registry, refuse=refuse)
            finally:
                self._refusing -= 1
            return
        self.connections.add(conn)
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        try:
            await conn.serve(self.registry)
        finally:
            self.connections.discard(conn)
            self.metrics.retire_connection(conn)
            self.replaced_by_closed += conn.ws.outbox.statistics().snapshots_replaced
            left = self._per_ip.pop(ip) - 1
            if left:
                self._per_ip[ip] = left

    def _over_limit(self, ip: str) -> tuple[Code, str] | None:
        limit = self.config.max_connections
        if limit > 0 and len(self.connections) >= limit:
            return Code.SERVER_FULL, f"this server holds its maximum of {limit} connections"
        limit = self.config.max_connections_per_ip
        if limit > 0 and self._per_ip.get(ip, 0) >= limit:
            return Code.TOO_MANY_CONNECTIONS, f"your address holds the maximum of {limit} connections"
        return None
