"""Server configuration: one frozen dataclass, filled from flags and
TICKROOM_* environment variables by server.cli."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from functools import cached_property

from protocol.session import RATE_PER_TICK, STRIKE_LIMIT

from .connection import ConnectionLimits
from .registry import RegistryConfig
from .room import RoomConfig


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"  # noqa: S104 - a server listens on every interface unless told  # nosec B104
    port: int = 7350  # WebSocket game port; 0 picks a free one
    tick_rate: int = 20  # ticks per second
    max_players: int = 16  # per room
    max_rooms: int = 1000  # per node
    default_game: str = "arena"
    allow_client_rooms: bool = True
    idle_close_s: float = 30.0
    ack_timeout_s: float = 5.0
    rejoin_grace_s: float = 10.0
    max_message_bytes: int = 4 * 2**10
    handshake_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    rate_per_tick: float = RATE_PER_TICK  # client messages per tick, on average (1 s burst)
    strike_limit: int = STRIKE_LIMIT  # recoverable errors in a burst before closing
    max_connections: int = 10_000  # per node, in total; 0: no limit
    max_connections_per_ip: int = 0  # per source address; 0: no limit (NAT, proxies)
    allowed_origins: str = ""  # comma-separated browser Origins; empty: allow all
    tls_cert: str | None = None  # PEM certificate chain: serve wss:// on the game port
    tls_key: str | None = None  # PEM private key for tls_cert
    graceful_timeout_s: float = 10.0  # the whole shutdown, at most
    stats_interval_s: float = 60.0  # log a load summary this often; 0: never
    log_level: str = "INFO"
    # A secret (it authorises sending events): kept out of repr, so out of
    # any log line or traceback that prints the config.
    sentry_dsn: str | None = field(default=None, repr=False)
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
        from .tls import load_server_context

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
            allow_client_rooms=self.allow_client_rooms,
            max_rooms=self.max_rooms,
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
