"""Server configuration: one frozen dataclass, filled from flags and
TICKROOM_* environment variables by server.cli."""

from __future__ import annotations

from dataclasses import dataclass, field

from .connection import ConnectionLimits
from .registry import RegistryConfig
from .room import RoomConfig


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = 7350  # WebSocket game port; 0 picks a free one
    tick_rate: int = 20  # ticks per second
    max_players: int = 16  # per room
    max_rooms: int = 1000  # per node
    default_game: str = "arena"
    allow_client_rooms: bool | None = None  # None: on, unless a ticket secret is set
    idle_close_s: float = 30.0
    ack_timeout_s: float = 5.0
    rejoin_grace_s: float = 10.0
    max_message_bytes: int = 4 * 2**10
    handshake_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    graceful_timeout_s: float = 10.0  # the whole shutdown, at most
    stats_interval_s: float = 60.0  # log a load summary this often; 0: never
    log_level: str = "INFO"
    log_format: str = "text"  # or "json"
    sentry_dsn: str | None = field(default=None, repr=False)
    # The control API (server.control). None: not served (the library
    # default, so in-process servers in tests bind nothing extra); the
    # `tickroom serve` command defaults to 7351.
    control_port: int | None = None
    control_host: str | None = None  # None: see control_bind_host()
    api_key: str | None = field(default=None, repr=False)
    ticket_secret: str | None = field(default=None, repr=False)
    node_id: str = ""  # "": this host's name
    public_url: str | None = None  # ws:// URL clients reach this node at; None: from host and port
    environment: str = "production"  # Sentry environment
    release: str | None = None  # Sentry release; None: tickroom@<version>

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
            ticket_secret=self.ticket_secret.encode("utf-8") if self.ticket_secret else None,
        )

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            max_message_bytes=self.max_message_bytes,
            handshake_timeout_s=self.handshake_timeout_s,
            idle_timeout_s=self.idle_timeout_s,
        )
