"""The game server: the composition root of a node, and the order its parts
stop in.

Everything a node runs is built here and handed what it needs: the room
registry (with the failover's room leases as its hosting under
``--redis-url``), the connection table and the listener that fills it
(tickroom.server.transport.listener), the metrics and the load line
(tickroom.server.ops), the control API (tickroom.server.control) and the
failover service (tickroom.server.cluster).

Nursery nesting is shutdown order (after hypercorn's trio runner): the root
nursery hosts the registry and the control API (when ``control_port`` is
set); inside it, the connection nursery hosts the accept loops and every
connection. The control API stops last, so /healthz and /readyz answer
during the drain. ``shutdown()`` stops accepting, asks every room to close
its clients with 1001 (going away), and gives all of it
``graceful_timeout_s`` before cancelling what is left.
"""

from __future__ import annotations

import logging
import socket

import trio

from tickroom.protocol import messages as m
from tickroom.protocol.codec import encode_redirect
from tickroom.protocol.errors import Code
from tickroom.server.cluster.failover import Failover
from tickroom.server.cluster.leases import RoomLeases
from tickroom.server.cluster.placement import ClusterPlacement
from tickroom.server.cluster.startup import room_leases, start_failover, unique_node_id
from tickroom.server.config import ServerConfig
from tickroom.server.control.api import ControlAPI
from tickroom.server.control.auth import check_exposure
from tickroom.server.control.nodes import ClusterNodes, NodeDirectory, ThisNode
from tickroom.server.control.serve import serve_control_api
from tickroom.server.ops.agones import AgonesSDK, port_from_env
from tickroom.server.ops.load import LoadReport
from tickroom.server.ops.metrics import ServerMetrics
from tickroom.server.ops.overload import LoadGovernor, RegistryFigures
from tickroom.server.rooms.game_catalog import GameCatalog
from tickroom.server.rooms.placement import LocalPlacement, Placement
from tickroom.server.rooms.registry import RoomRegistry
from tickroom.server.transport.connection import Connection
from tickroom.server.transport.listener import ConnectionCaps, ConnectionTable, Listener
from tickroom.server.transport.urls import reachable_url, url_for

log = logging.getLogger(__name__)

# How long a draining node waits to tell the cluster so before it sends its
# clients on; a slow Redis must not hold the drain.
DRAIN_NOTICE_S = 2.0


class NodeHealth:
    """The node's own lifecycle, as /readyz reports it: listening once the
    game port is bound, stopping once ``shutdown()`` was called."""

    def __init__(self) -> None:
        self.ports: list[int] = []  # the bound game ports, once listening
        self._shutdown = trio.Event()

    @property
    def stopping(self) -> bool:
        return self._shutdown.is_set()

    @property
    def listening(self) -> bool:
        return bool(self.ports)

    def begin_shutdown(self) -> None:
        self._shutdown.set()

    async def wait_shutdown(self) -> None:
        await self._shutdown.wait()


class GameServer:
    """``await nursery.start(server.run)`` returns once listening; the bound
    ports are then in ``server.ports``."""

    def __init__(self, config: ServerConfig, *, games: GameCatalog | None = None) -> None:
        """``games``: the games this node runs, resolved by the caller (the
        CLI, to exit 2 before anything starts); None: resolved here from
        ``config.default_game`` (raises GameLoadError)."""
        self.config = config
        self.games = games if games is not None else GameCatalog.discover(config.default_game)
        self.health = NodeHealth()
        self._leases: RoomLeases | None = None
        if config.redis_url:
            # The rooms' leases in the shared store wrap every room's run:
            # built first, so the registry is given them at construction.
            self._leases = room_leases(
                config.redis_url,
                node_id=unique_node_id(config.node_id),
                lease_ttl_s=config.lease_ttl_s,
                checkpoint_interval=config.checkpoint_interval or config.tick_rate,
                durable_acks=config.durable_acks,
            )
        self.registry = RoomRegistry(config.registry(), hosting=self._leases, games=self.games)
        # One id for the node: in the registry, in allocations and in the cluster.
        self.node_id = self._leases.config.node_id if self._leases else (config.node_id or socket.gethostname())
        self.connection_table = ConnectionTable()
        # Refuses new players past the node's measured capacity (tickroom.server.ops.overload).
        self.governor = LoadGovernor(RegistryFigures(self.registry), config.capacity())
        self.metrics = ServerMetrics(
            self.registry,
            self.connection_table,
            failover=self._leases.stats if self._leases else None,
            checkpoints=self._leases,
            overload=self.governor,
        )
        self.load = LoadReport(self.registry, self.connection_table)
        self.listener = Listener(
            self.connection_table,
            self.registry,
            limits=config.connection_limits(),
            caps=ConnectionCaps(config.max_connections, config.max_connections_per_ip),
            tls=config.ssl_context,
            on_closed=self.metrics.retire_connection,
            gate=self.governor,
        )
        self.control_url: str | None = None  # http://HOST:PORT once the control API is bound
        self.failover: Failover | None = None  # with --redis-url, once running
        self._control_stop = trio.Event()
        self._control_done = trio.Event()
        # Under Agones (AGONES_SDK_HTTP_PORT): Ready, Health, Shutdown and the
        # rooms/players Counters through the SDK sidecar (tickroom.server.ops.agones).
        agones_port = port_from_env()
        self.agones: AgonesSDK | None = AgonesSDK(agones_port) if agones_port is not None else None
        if config.control_port is not None:
            # Before anything is bound: an open API on the network is a config error.
            check_exposure(config.control_bind_host(), config.api_key)

    @property
    def ports(self) -> list[int]:
        """The bound game ports (empty until listening)."""
        return self.health.ports

    @property
    def connections(self) -> set[Connection]:
        """The live (admitted) connections."""
        return self.connection_table.live

    @property
    def refused_connections(self) -> int:
        """Connections refused over --max-connections or --max-connections-per-ip."""
        return self.connection_table.refused

    @property
    def stopping(self) -> bool:
        return self.health.stopping

    def shutdown(self) -> None:
        """Begin the graceful stop; ``run()`` returns when it is done."""
        self.health.begin_shutdown()

    @property
    def ws_url(self) -> str:
        """The URL clients reach this node's game port at."""
        if self.config.public_url:
            return self.config.public_url
        return url_for("ws", self.config.host, self.ports[0] if self.ports else self.config.port)

    def load_summary(self) -> str:
        """One line on the node's load (tickroom.server.ops.load)."""
        extra = [self.governor.summary()]
        if self.failover is not None:
            extra.append(self.failover.summary())
        return self.load.summary(" ".join(extra))

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as root:
            await root.start(self.registry.run)
            root.start_soon(self.governor.run, name="load governor")
            if self.config.stats_interval_s > 0:
                root.start_soon(self._log_stats_every, self.config.stats_interval_s)
            listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host or None)
            self.health.ports = sorted({listener.socket.getsockname()[1] for listener in listeners})
            if self._leases is not None:
                assert self.config.redis_url
                self.failover = await start_failover(
                    self._leases, self.registry, public_url=self.ws_url, store_name=self.config.redis_url, nursery=root
                )
            if self.config.control_port is not None:
                self.control_url = await root.start(self._serve_control)
                if self.failover is not None:
                    # Other nodes forward allocations here (cluster placement).
                    self.failover.control_url = reachable_url(self.control_url)
                    await self.failover.heartbeat_now()
            async with trio.open_nursery() as connections:
                accepting = trio.CancelScope()
                connections.start_soon(self.listener.accept_all, listeners, connections, accepting)
                log.info(
                    "tickroom listening on %s://%s:%s (game %s, %d Hz)",
                    "wss" if self.config.ssl_context else "ws",
                    self.config.host or "*", self.ports[0], self.games.default, self.config.tick_rate,
                )  # fmt: skip
                if self.agones is not None:
                    root.start_soon(
                        self.agones.run, self.registry, self.config.max_rooms, lambda: self.governor.accepting
                    )
                task_status.started(self)
                await self.health.wait_shutdown()

                log.info("shutting down: closing rooms (up to %g s)", self.config.graceful_timeout_s)
                accepting.cancel()
                connections.cancel_scope.deadline = trio.current_time() + self.config.graceful_timeout_s
                if self.failover is not None:
                    # Rooms move: each checkpoints and releases its lease as
                    # it ends, and its clients rejoin elsewhere (REDIRECT).
                    self.failover.hand_over_rooms()
                    # The registry shows us draining before any client is
                    # sent on, so the other nodes do not send it back here.
                    with trio.move_on_after(DRAIN_NOTICE_S):
                        await self.failover.heartbeat_now()
                    await self._tell_clients_where_to_go(self.failover)
                    self.registry.close_all(Code.REDIRECT, "server draining; rejoin to continue on another node")
                else:
                    self.registry.close_all()
                await self.registry.wait_empty()
                await self.connection_table.wait_empty()
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

    async def _tell_clients_where_to_go(self, failover: Failover) -> None:
        """Before a drain closes them (4202): a redirect to another node,
        where the rooms will be recovered (clients retry there on 4105)."""
        url = await failover.successor_url()
        if url is None:
            return
        for conn in list(self.connection_table):
            if conn.joined is not None and not conn.closed:
                conn.send(encode_redirect(m.Redirect(room=conn.joined.room_id, url=url)))

    def control_api(self, placement: Placement) -> ControlAPI:
        """The control API of this node, allocating through ``placement``."""
        nodes: NodeDirectory = (
            ClusterNodes(self.failover)
            if self.failover is not None
            else ThisNode(self.registry, node_id=self.node_id, ws_url=self.ws_url)
        )
        return ControlAPI(
            rooms=self.registry,
            placement=placement,
            health=self.health,
            metrics=self.metrics,
            api_key=self.config.api_key,
            ticket_secret=self.config.ticket_secret,
            games=self.games,
            nodes=nodes,
            metrics_need_key=self.config.metrics_need_key,
            overload=self.governor,
        )

    async def _serve_control(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        assert self.config.control_port is not None  # served only then
        local = LocalPlacement(self.registry, node_id=self.node_id, ws_url=self.ws_url)
        placement: Placement = local
        if self.failover is not None:
            # A shared store: rooms go to the node with the most free capacity.
            placement = ClusterPlacement(local, self.failover, api_key=self.config.api_key)
        try:
            await serve_control_api(
                self.control_api(placement),
                self.config.control_bind_host(),
                self.config.control_port,
                self._control_stop,
                tls_cert=self.config.control_tls_cert,
                tls_key=self.config.control_tls_key,
                task_status=task_status,
            )
        finally:
            self._control_done.set()

    async def _log_stats_every(self, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            log.info("load: %s", self.load_summary())
