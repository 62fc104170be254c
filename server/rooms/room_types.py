"""The room's value types: its configuration, what a join gets back or is
refused with, and what the room reports about itself (statistics, the tick's
time by phase). Kept apart from the room task (tickroom.server.rooms.room,
which re-exports them) so the task's module holds only the task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tickroom.protocol.errors import Code
from tickroom.protocol.game_messages import MessageTypes
from tickroom.protocol.validate import InputFields
from tickroom.simulation.game import DEFAULT_MAX_PLAYERS, DEFAULT_TICK_RATE

IDLE_CLOSE_S = 30.0  # an empty room ends after this long
ACK_TIMEOUT_S = 5.0  # a client that acks nothing for this long is dropped
REJOIN_GRACE_S = 10.0  # a dropped player's avatar waits this long for a rejoin


@dataclass(frozen=True)
class RoomConfig:
    tick_rate: int = DEFAULT_TICK_RATE  # ticks per second
    max_players: int = DEFAULT_MAX_PLAYERS
    idle_close_s: float = IDLE_CLOSE_S
    ack_timeout_s: float = ACK_TIMEOUT_S
    rejoin_grace_s: float = REJOIN_GRACE_S
    history_ticks: int = 64  # snapshots kept as delta baselines (3.2 s at 20 Hz)
    max_catchup_ticks: int = 5  # missed ticks run back to back before resynchronising
    max_inputs_per_tick: int = 8  # per player; older extras are dropped

    def ticks(self, seconds: float) -> int:
        return max(1, round(seconds * self.tick_rate))


class JoinRefused(Exception):
    def __init__(self, code: Code, message: str, *, url: str | None = None) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.url = url  # with Code.REDIRECT: where the room is


@dataclass(frozen=True)
class JoinAccepted:
    """What the connection needs after a join."""

    room_id: str
    player: int
    input_fields: InputFields
    tick_rate: int
    room_tick: Callable[[], int]  # the room's current tick, for pongs
    message_types: MessageTypes = MessageTypes(None)  # the game's "msg" kinds (none: refused)


@dataclass(frozen=True)
class RoomStatistics:
    room_id: str
    game: str
    tick: int
    players: int
    connected: int
    overruns: int  # ticks that finished after the next tick's deadline
    resyncs: int  # times the loop gave up catching up
    ticks_skipped: int  # ticks dropped by resyncs
    inputs_applied: int
    inputs_stale: int  # duplicate or older than the newest applied seq
    inputs_over_limit: int  # beyond max_inputs_per_tick
    deltas_encoded: int
    last_tick_ms: float
    max_tick_ms: float
    # Distinct per-player views at the last tick (tickroom.server.rooms.views);
    # 0 when the game does not say what each player sees.
    distinct_views: int = 0
    encodes_last_tick: int = 0  # snapshot payloads encoded by the last tick (one per distinct view and baseline)
    # Game messages (tickroom.server.rooms.game_mail): from players to the
    # game, copies from the game to players, and both kinds dropped.
    game_messages_received: int = 0
    game_messages_sent: int = 0
    game_messages_dropped: int = 0


class TickProfile:
    """Where a room's tick time goes, summed since the room started: read
    (sockets, parsing, validation, batching), simulate (inputs applied, the
    step), snapshot (the game's history of past ticks, the view recorded in
    the ring, and, with the node's stepper, the shared deltas encoded for all
    its rooms at once) and send (any delta not encoded yet, framing,
    writes). With the stepper, a room's simulate and snapshot include its
    share, by players, of the batched calls. The node's load line turns it
    into microseconds per player per tick (docs/benchmarks.md)."""

    PHASES = ("read", "simulate", "snapshot", "send")

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0, 0.0]
        self.player_ticks = 0  # players in the room, summed over its ticks

    def add(self, read: float, simulate: float, snapshot: float, send: float, players: int) -> None:
        seconds = self.seconds
        seconds[0] += read
        seconds[1] += simulate
        seconds[2] += snapshot
        seconds[3] += send
        self.player_ticks += players
