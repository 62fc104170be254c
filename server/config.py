"""Server configuration: one frozen dataclass, filled from flags and
TICKROOM_* environment variables by server.cli."""

from __future__ import annotations

from dataclasses import dataclass

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
    allow_client_rooms: bool = True
    idle_close_s: float = 30.0
    ack_timeout_s: float = 5.0
    rejoin_grace_s: float = 10.0
    max_message_bytes: int = 4 * 2**10
    handshake_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    graceful_timeout_s: float = 10.0  # the whole shutdown, at most
    stats_interval_s: float = 60.0  # log a load summary this often; 0: never
    log_level: str = "INFO"
    sentry_dsn: str | None = None
    # Failover (server.failover): off without a Redis URL.
    redis_url: str | None = None
    public_url: str | None = None  # what other nodes redirect clients to; default ws://HOST:PORT
    lease_ttl_s: float = 3.0  # a dead node's rooms move after this long
    checkpoint_interval: int = 0  # ticks between checkpoints; 0: tick_rate (one second)

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
        )
