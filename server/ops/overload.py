"""The node's load governor: is there room for one more player?

A node past its capacity slows every player it holds: a tick that takes
longer than its period makes every room late, and every client sees fewer
snapshots. So the node refuses new players (4203 SERVER_OVERLOADED on the
game port, 503 with Retry-After on ``POST /v1/rooms``) before that, and
keeps those already in at their tick rate. Seated players' rejoins are
never refused: they are players the node holds already.

Capacity is measured, four times a second (``sample``), from the node's
own figures, not from a fixed count alone:

- the CPU busy share of the process (CPU seconds per wall second, one core
  being 1.0; the node runs on one thread, so at ~1.0 it is saturated);
- the tick lag: how late the rooms' shared timer woke them (tickroom.server.rooms.tick_clock);
- the cost of a player: the busy share divided by the players held (with
  ``MIN_PLAYERS_MEASURED`` or more; below that a prior from the benchmarks),
  hence the players the CPU target holds;
- an optional operator cap (``--max-node-players``).

The node is over capacity when the busy share reaches ``--capacity-cpu``,
or the tick lag reaches ``--capacity-tick-lag``, or the players held and
admitted since the last sample reach the capacity. Between two samples
every fresh join admitted counts at once, and at most as many fresh joins
are admitted as the node holds players (at least ``RAMP_MIN_STEP``, about
a thousand joins a second): a burst of two thousand joins on an empty node
seats 256, then up to 512, ... per sample while the figures stay under
their limits (and the capacity), and the rest are refused at once (reason
"ramp") instead of all getting in before the next measure shows what they
cost. Tick lag counts only on a node that is busy itself (half its CPU
target or more): a node using little CPU whose ticks are late is late
because the machine is taken by others, and refusing its players would not
bring its ticks back. Hysteresis: once over, the
node accepts again only after ``HOLD_S`` and once all three figures are
under ``RESUME_FRACTION`` of their limits, so that it does not flap.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tickroom.protocol.errors import OVERLOAD_RETRY_AFTER_S, Code
from tickroom.server.rooms.registry import RoomRegistry

log = logging.getLogger(__name__)

SAMPLE_S = 0.25  # how often the node's figures are read
SMOOTHING = 0.5  # weight of the newest sample in the moving averages (~0.5 s memory at 4 Hz)
HOLD_S = 2.0  # once over capacity, at least this long
RESUME_FRACTION = 0.85  # accept again under this share of every limit
MIN_PLAYERS_MEASURED = 50  # fewer players: a player's cost is the prior, not measured
# CPU share of one core per player before it can be measured: 2 ms per
# player-second, a little above the figure docs/benchmarks.md holds for
# rooms of 10 at 20 Hz (~1.8 ms), so that an empty node facing a burst
# admits about what it can hold.
PRIOR_CPU_PER_PLAYER = 0.002

UNLIMITED = 2**62  # the capacity with neither a CPU target nor a cap
RAMP_MIN_STEP = 256  # fresh joins admitted per sample, at least (see LoadGovernor._step)
# Tick lag is the node's own doing only on a node this busy (a share of its
# CPU target): a node whose ticks are late while it uses less is late because
# of the machine, or of a short burst of work (a flood being refused), and
# refusing players would not bring its ticks back. The price: a node that
# the machine starves below this CPU takes players it cannot serve
# (docs/benchmarks.md, "Overload", version B).
LAG_CPU_FLOOR = 0.5

# Why a fresh join was refused: the label of the metrics and the status.
# "ramp" refuses one join without the node being over capacity: the burst it
# belongs to grew the node faster than its figures can follow.
REASONS = ("cpu", "tick_lag", "players", "player_cap", "ramp")


@dataclass(frozen=True)
class CapacityConfig:
    """The limits (flags of ``tickroom serve``)."""

    max_players: int = 0  # operator cap on the players of the node; 0: measured capacity only
    cpu_target: float = 0.85  # CPU busy share (of one core) at which the node is full; 0: not measured
    tick_lag_s: float = 0.025  # smoothed tick lag at which the node is full (half a 20 Hz tick); 0: not measured

    def __post_init__(self) -> None:
        if self.max_players < 0:
            raise ValueError("--max-node-players must be >= 0")
        if self.cpu_target != 0 and not 0.05 <= self.cpu_target <= 1.0:
            raise ValueError("--capacity-cpu must be 0 (off) or between 0.05 and 1.0 (a share of one core)")
        if self.tick_lag_s < 0:
            raise ValueError("--capacity-tick-lag must be >= 0 (0: off)")


class NodeFigures(Protocol):
    """What the governor reads of the node (tickroom.server.rooms.registry.RoomRegistry)."""

    def players_held(self) -> int:
        """Players seated in the node's rooms (connected or within their rejoin grace)."""
        ...

    def take_tick_lag(self) -> float:
        """Seconds: the mean tick lag since the previous call."""
        ...

    def unseated(self, links: Collection[object]) -> int:
        """How many of ``links`` (connections whose join was admitted) no room holds yet."""
        ...


class RegistryFigures:
    """NodeFigures of a room registry: its rooms' players, its tick clock's lag."""

    def __init__(self, registry: RoomRegistry) -> None:
        self.registry = registry

    def players_held(self) -> int:
        return sum(len(room.players) for room in self.registry.rooms())

    def take_tick_lag(self) -> float:
        return self.registry.clock.take_lag()

    def unseated(self, links: Collection[object]) -> int:
        if not links:
            return 0
        seated = sum(1 for room in self.registry.rooms() for player in room.players if player.link in links)
        return len(links) - seated


@dataclass(frozen=True)
class LoadState:
    """The governor's view at its last sample (status API, metrics, load line)."""

    accepting: bool
    reason: str  # why over capacity ("" while accepting)
    cpu_busy: float  # smoothed CPU share of one core
    tick_lag_s: float  # smoothed tick lag
    players: int  # players held at the sample
    capacity: int  # players the node holds at its CPU target (and its cap)

    def as_json(self) -> dict[str, object]:
        return {
            "accepting": self.accepting,
            "reason": self.reason or None,
            "cpu_busy": round(self.cpu_busy, 3),
            "tick_lag_ms": round(self.tick_lag_s * 1e3, 2),
            "players": self.players,
            "capacity": self.capacity if self.capacity < UNLIMITED else None,
        }


class LoadGovernor:
    """Decides "accepting" or "over capacity" from ``figures``.

    ``run()`` samples every SAMPLE_S; ``admit_join()`` is asked for every
    fresh join, and ``join_done()`` told when one it admitted was answered
    (tickroom.server.transport.connection.JoinGate). ``cpu_clock`` and
    ``wall_clock`` are injectable for tests (process CPU seconds and
    monotonic seconds)."""

    def __init__(
        self,
        figures: NodeFigures,
        config: CapacityConfig = CapacityConfig(),
        *,
        cpu_clock: Callable[[], float] = time.process_time,
        wall_clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.figures = figures
        self.config = config
        self._cpu_clock = cpu_clock
        self._wall_clock = wall_clock
        self._cpu_at = cpu_clock()
        self._wall_at = wall_clock()
        self.cpu_busy = 0.0
        self.tick_lag_s = 0.0
        self.players = 0
        self.capacity = self._capacity(PRIOR_CPU_PER_PLAYER)
        # Fresh joins admitted and not counted in ``players``: those since the
        # last sample, and those admitted before it that no room held at it.
        self._admitted = 0
        self._joining: set[object] = set()  # the links admitted, their join not yet answered
        self.over_reason = ""  # "": accepting
        self._over_since = -math.inf
        self.refused: Counter[str] = Counter()  # reason -> fresh joins refused
        self.admitted_total = 0
        self.transitions = 0  # times the node went over capacity

    @property
    def accepting(self) -> bool:
        return not self.over_reason

    @property
    def retry_after_s(self) -> int:
        return OVERLOAD_RETRY_AFTER_S

    def state(self) -> LoadState:
        return LoadState(
            accepting=self.accepting,
            reason=self.over_reason,
            cpu_busy=self.cpu_busy,
            tick_lag_s=self.tick_lag_s,
            players=self.players,
            capacity=self.capacity,
        )

    # -- the decisions ----------------------------------------------------------

    def admit_join(self, link: object) -> tuple[Code, str] | None:
        """For a fresh join (not a rejoin) on ``link``: None to let it in (it
        counts at once against the capacity), else the code and message to
        refuse it with."""
        if not self.over_reason and self.players + self._admitted >= self.capacity:
            self._go_over("player_cap" if self.capacity == self.config.max_players else "players")
        reason = self.over_reason
        if not reason and self._admitted >= self._step():
            reason = "ramp"  # more joins at once than the node grows by per sample: this one only
        if reason:
            self.refused[reason] += 1
            return Code.SERVER_OVERLOADED, (
                f"this server is over its capacity ({reason}); retry in {self.retry_after_s} s or join another server"
            )
        self._admitted += 1
        self._joining.add(link)
        self.admitted_total += 1
        return None

    def join_done(self, link: object) -> None:
        """The join ``admit_join`` let in on ``link`` was answered (seated,
        or refused by the room); from the next sample it counts in
        ``players`` or not at all."""
        self._joining.discard(link)

    def sample(self) -> None:
        """Read the node's figures and decide; called every SAMPLE_S."""
        cpu, wall = self._cpu_clock(), self._wall_clock()
        elapsed = wall - self._wall_at
        if elapsed <= 0:
            return
        busy = (cpu - self._cpu_at) / elapsed
        self._cpu_at, self._wall_at = cpu, wall
        self.cpu_busy += SMOOTHING * (busy - self.cpu_busy)
        self.tick_lag_s += SMOOTHING * (self.figures.take_tick_lag() - self.tick_lag_s)
        # A join seated in its room but not yet answered is in ``players``:
        # only those no room holds yet count as admitted (never twice).
        self.players = self.figures.players_held()
        self._admitted = self.figures.unseated(self._joining)
        per_player = self.cpu_busy / self.players if self.players >= MIN_PLAYERS_MEASURED else PRIOR_CPU_PER_PLAYER
        self.capacity = self._capacity(per_player)
        limits = self.config
        if self.over_reason:
            if wall - self._over_since >= HOLD_S and self._under(RESUME_FRACTION):
                log.info("load: accepting new players again (%s)", self._figures())
                self.over_reason = ""
            return
        if limits.cpu_target and self.cpu_busy >= limits.cpu_target:
            self._go_over("cpu")
        elif limits.tick_lag_s and self.tick_lag_s >= limits.tick_lag_s and self._busy_enough_to_lag():
            self._go_over("tick_lag")
        elif self.players + self._admitted >= self.capacity:
            self._go_over("player_cap" if self.capacity == limits.max_players else "players")

    def _busy_enough_to_lag(self) -> bool:
        """Whether the tick lag can be the node's own doing: it uses at least
        LAG_CPU_FLOOR of its CPU target (of a core, when CPU is not measured)."""
        return self.cpu_busy >= LAG_CPU_FLOOR * (self.config.cpu_target or 1.0)

    def _step(self) -> int:
        """Fresh joins admitted per sample at most: the players held again,
        at least RAMP_MIN_STEP (a node doubles per sample, from an empty one
        ~RAMP_MIN_STEP x 2^n), so that a burst is seated no faster than the
        measures can follow. Without any measure (only a cap, or nothing)
        there is nothing to follow: no step."""
        if not (self.config.cpu_target or self.config.tick_lag_s):
            return UNLIMITED
        return max(RAMP_MIN_STEP, self.players)

    def _capacity(self, per_player: float) -> int:
        target, cap = self.config.cpu_target, self.config.max_players
        measured = int(target / max(per_player, 1e-6)) if target > 0 else UNLIMITED
        return min(measured, cap) if cap > 0 else measured

    def _under(self, fraction: float) -> bool:
        limits = self.config
        return (
            (not limits.cpu_target or self.cpu_busy < limits.cpu_target * fraction)
            and (not limits.tick_lag_s or self.tick_lag_s < limits.tick_lag_s * fraction)
            and self.players + self._admitted < self.capacity * fraction
        )

    def _go_over(self, reason: str) -> None:
        self.over_reason = reason
        self._over_since = self._wall_clock()
        self.transitions += 1
        log.warning("load: over capacity (%s): refusing new players with 4203 (%s)", reason, self._figures())

    def summary(self) -> str:
        """The load line's part (tickroom.server.ops.load)."""
        refused = sum(self.refused.values())
        state = "accepting" if self.accepting else f"over_capacity:{self.over_reason}"
        return f"load={state} {self._figures()} refused_overload={refused}"

    def _figures(self) -> str:
        return (
            f"cpu_busy={self.cpu_busy:.2f} tick_lag_ms={self.tick_lag_s * 1e3:.1f} "
            f"players={self.players} capacity={self.capacity}"
        )

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            await trio.sleep(SAMPLE_S)
            self.sample()


def overload_families(governor: LoadGovernor) -> list[Metric]:
    """The governor's metric families (tickroom.server.ops.metrics adds them to /metrics)."""
    state = governor.state()
    refused = CounterMetricFamily(
        "tickroom_joins_refused_overload",
        "Fresh joins refused with 4203 because the node was over capacity, by reason",
        labels=["reason"],
    )
    for reason in REASONS:
        refused.add_metric([reason], governor.refused[reason])
    return [
        GaugeMetricFamily(
            "tickroom_accepting_players", "1 while the node admits new players, 0 over capacity", value=state.accepting
        ),
        GaugeMetricFamily(
            "tickroom_player_capacity",
            "Players the node holds at its CPU target (and its cap)",
            value=state.capacity if state.capacity < UNLIMITED else math.inf,
        ),
        GaugeMetricFamily("tickroom_cpu_busy_ratio", "CPU busy share of one core, smoothed", value=state.cpu_busy),
        GaugeMetricFamily(
            "tickroom_tick_lag_seconds", "How late the rooms' ticks start, smoothed", value=state.tick_lag_s
        ),
        CounterMetricFamily(
            "tickroom_overload_episodes", "Times the node went over capacity", value=governor.transitions
        ),
        refused,
    ]
