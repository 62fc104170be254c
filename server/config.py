"""Server configuration: one frozen dataclass, filled from flags and
TICKROOM_* environment variables by tickroom.server.cli.main.

A flag that sets a component's parameter takes its default from that
component (the wire limits from tickroom.protocol, the game's from
tickroom.simulation.game, the room's, registry's, connection's and
failover's from their configs), so each default is written once.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from functools import cached_property

from tickroom.protocol.codec import MAX_CLIENT_MESSAGE_BYTES
from tickroom.protocol.session import RATE_PER_TICK, STRIKE_LIMIT
from tickroom.server.cluster.leases import FailoverConfig
from tickroom.server.ops.overload import CapacityConfig
from tickroom.server.rooms.registry import RegistryConfig
from tickroom.server.rooms.room import ACK_TIMEOUT_S, IDLE_CLOSE_S, REJOIN_GRACE_S, RoomConfig
from tickroom.server.transport.connection import ConnectionLimits
from tickroom.server.transport.tls import load_server_context
from tickroom.simulation.game import DEFAULT_MAX_PLAYERS, DEFAULT_TICK_RATE

_REGISTRY = RegistryConfig()
_CONNECTION = ConnectionLimits()
_CAPACITY = CapacityConfig()


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"  # noqa: S104 - a server listens on every interface unless told  # nosec B104
    port: int = 7350  # WebSocket game port; 0 picks a free one
    tick_rate: int = DEFAULT_TICK_RATE  # ticks per second
    max_players: int = DEFAULT_MAX_PLAYERS  # per room
    max_rooms: int = _REGISTRY.max_rooms  # per node
    max_rooms_per_address: int = _REGISTRY.max_rooms_per_address  # live client-created rooms; 0: no limit
    unjoined_close_s: float = _REGISTRY.unjoined_close_s  # a client-created room nobody joined ends then
    step_together: bool = _REGISTRY.step_together  # rooms of a game stepped by one batched call (step_batch)
    default_game: str = _REGISTRY.default_game
    allow_client_rooms: bool | None = None  # None: on, unless a ticket secret is set
    idle_close_s: float = IDLE_CLOSE_S
    ack_timeout_s: float = ACK_TIMEOUT_S
    rejoin_grace_s: float = REJOIN_GRACE_S
    max_message_bytes: int = MAX_CLIENT_MESSAGE_BYTES  # largest client frame
    handshake_timeout_s: float = _CONNECTION.handshake_timeout_s
    idle_timeout_s: float = _CONNECTION.idle_timeout_s
    rate_per_tick: float = RATE_PER_TICK  # client messages per tick, on average (1 s burst)
    strike_limit: int = STRIKE_LIMIT  # recoverable errors in a burst before closing
    max_connections: int = 10_000  # per node, in total; 0: no limit
    max_connections_per_ip: int = 0  # per source address; 0: no limit (NAT, proxies)
    # The load governor (tickroom.server.ops.overload): new players are refused
    # (4203) past the measured capacity, or past this cap when set.
    max_node_players: int = _CAPACITY.max_players  # 0: the measured capacity only
    capacity_cpu: float = _CAPACITY.cpu_target  # CPU share of the allowance at which the node is full
    capacity_tick_lag_s: float = _CAPACITY.tick_lag_s  # smoothed tick lag at which the node is full
    allowed_origins: str = ""  # comma-separated browser Origins; empty: allow all
    tls_cert: str | None = None  # PEM certificate chain: serve wss:// on the game port
    tls_key: str | None = None  # PEM private key for tls_cert
    control_tls_cert: str | None = None  # PEM certificate chain: serve https:// on the control port
    control_tls_key: str | None = None  # PEM private key for control_tls_cert
    graceful_timeout_s: float = 10.0  # the whole shutdown, at most
    stats_interval_s: float = 60.0  # log a load summary this often; 0: never
    log_level: str = "INFO"
    log_format: str = "text"  # or "json"
    sentry_dsn: str | None = field(default=None, repr=False)
    # The control API (tickroom.server.control). None: not served (the library
    # default, so in-process servers in tests bind nothing extra); the
    # `tickroom serve` command defaults to 7351.
    control_port: int | None = None
    control_host: str | None = None  # None: see control_bind_host()
    api_key: str | None = field(default=None, repr=False)
    metrics_need_key: bool = False  # /metrics lists room ids: behind the API key when on
    ticket_secret: str | None = field(default=None, repr=False)
    node_id: str = ""  # "": this host's name
    public_url: str | None = None  # ws:// URL clients reach this node at; None: from host and port
    environment: str = "production"  # Sentry environment
    release: str | None = None  # Sentry release; None: tickroom@<version>
    # Failover (tickroom.server.cluster.failover): off without a Redis URL.
    redis_url: str | None = field(default=None, repr=False)  # may carry a password: never in a repr
    lease_ttl_s: float = FailoverConfig.lease_ttl_s  # a dead node's rooms move after this long
    checkpoint_interval: int = 0  # ticks between checkpoints; 0: tick_rate (one second)
    # Snapshots acknowledge only inputs already in Redis (tickroom.server.cluster.durable_acks).
    durable_acks: bool = False

    @property
    def client_rooms_allowed(self) -> bool:
        """--allow-client-rooms, whose default depends on the matchmaker
        path: off when tickets are required."""
        if self.allow_client_rooms is not None:
            return self.allow_client_rooms
        return self.ticket_secret is None

    def control_bind_host(self) -> str:
        """Where the control API listens: --control-host when given; else
        --host when an API key protects it, else loopback only (so that
        `tickroom serve` works out of the box and never exposes an open API)."""
        if self.control_host is not None:
            return self.control_host
        return self.host if self.api_key else "127.0.0.1"

    # A secret (it authorises sending events): kept out of repr, so out of
    # any log line or traceback that prints the config.
    sentry_dsn_file: str | None = None  # read the DSN from this file instead

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of --tls-cert/--tls-key, loaded once (None: plain).

        Shared by the game port and, for https://, the control port.
        Raises ValueError when only one of the two is set, OSError or
        ssl.SSLError when the files are unreadable or do not match.
        """
        if not self.tls_cert and not self.tls_key:
            return None
        if not (self.tls_cert and self.tls_key):
            raise ValueError("TLS needs both --tls-cert and --tls-key")
        return load_server_context(self.tls_cert, self.tls_key)

    def origins(self) -> frozenset[str]:
        """--allowed-origins as a set of lowercase origins (no trailing /)."""
        return frozenset(o.strip().rstrip("/").lower() for o in self.allowed_origins.split(",") if o.strip())

    def read_sentry_dsn(self) -> str | None:
        """The DSN from --sentry-dsn, else from --sentry-dsn-file. Raises
        OSError when the file cannot be read (the message names the file,
        never its content)."""
        if self.sentry_dsn:
            return self.sentry_dsn.strip()
        if self.sentry_dsn_file:
            with open(self.sentry_dsn_file, encoding="utf-8") as f:
                return f.read().strip() or None
        return None

    def registry(self) -> RegistryConfig:
        return RegistryConfig(
            room=RoomConfig(
                tick_rate=self.tick_rate,
                max_players=self.max_players,
                idle_close_s=self.idle_close_s,
                ack_timeout_s=self.ack_timeout_s,
                rejoin_grace_s=self.rejoin_grace_s,
            ),
            default_game=self.default_game,
            allow_client_rooms=self.client_rooms_allowed,
            max_rooms=self.max_rooms,
            max_rooms_per_address=self.max_rooms_per_address,
            unjoined_close_s=self.unjoined_close_s,
            step_together=self.step_together,
            ticket_secret=self.ticket_secret.encode("utf-8") if self.ticket_secret else None,
        )

    def capacity(self) -> CapacityConfig:
        """The load governor's limits; raises ValueError for a bad flag."""
        return CapacityConfig(
            max_players=self.max_node_players, cpu_target=self.capacity_cpu, tick_lag_s=self.capacity_tick_lag_s
        )

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            max_message_bytes=self.max_message_bytes,
            handshake_timeout_s=self.handshake_timeout_s,
            idle_timeout_s=self.idle_timeout_s,
            rate_per_tick=self.rate_per_tick,
            strike_limit=self.strike_limit,
            allowed_origins=self.origins(),
        )
