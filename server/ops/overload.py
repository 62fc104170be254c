"""The node's load governor: is there room for one more player?

A node past its capacity slows every player it holds: a tick that takes
longer than its period makes every room late, and every client sees fewer
snapshots. So the node refuses new players (4203 SERVER_OVERLOADED on the
game port, 503 with Retry-After on ``POST /v1/rooms``) before that, and
keeps those already in at their tick rate. Seated players' rejoins are
never refused: they are players the node holds already.

Capacity is measured, four times a second (``sample``), from the node's
own figures, not from a fixed count alone:

- the CPU allowance: what the node may use, one core (it runs on one
  thread) or its cgroup's CPU quota if lower (tickroom.server.ops.cpu_allowance);
- the CPU busy share of the process (CPU seconds per wall second, in cores);
- the run-queue wait share: seconds per wall second the event loop's thread
  was runnable but not running (the machine's other processes had the core);
- the tick lag: how late the rooms' shared timer woke them (tickroom.server.rooms.tick_clock);
- the cost of a player: the busy share divided by the players held (with
  ``MIN_PLAYERS_MEASURED`` or more; below that a prior from the benchmarks),
  hence the players that the CPU target of the allowance holds;
- an optional operator cap (``--max-node-players``).

The node is over capacity when the busy share reaches ``--capacity-cpu`` of
its allowance, or the tick lag stays at ``--capacity-tick-lag`` or more for
LAG_PERSIST_SAMPLES samples in a row while the node's demand (busy plus
run-queue wait) is at least LAG_CPU_FLOOR of that CPU target, or the
players held and admitted since the last sample reach the capacity. The demand, not the use, is what tells a starved node (it
wants the CPU and waits for it: refusing players keeps those it holds from
getting slower still) from a node whose few ticks are late for a moment
(it neither uses nor waits for much: refusing would change nothing).

Between two samples every fresh join admitted counts at once, and at most
as many fresh joins are admitted as the node holds players (at least
``RAMP_MIN_STEP``, about a thousand joins a second), so that a burst does
not all get in before the next measure shows what it costs. A join over
that step is held until the next sample, then admitted or refused on the
new figures (tickroom.server.ops.held_joins: FIFO, at most a step of them,
each for at most MAX_HOLD_S); beyond that it is refused at once (reason
"ramp"). Hysteresis: once over, the node accepts again only after
``HOLD_S`` and once all three figures are under ``RESUME_FRACTION`` of
their limits, so that it does not flap.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable

import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tickroom.protocol.errors import OVERLOAD_RETRY_AFTER_S, Code
from tickroom.server.ops.capacity import UNLIMITED, CapacityConfig, LoadState, NodeFigures
from tickroom.server.ops.capacity import RegistryFigures as RegistryFigures
from tickroom.server.ops.cpu_allowance import CpuAllowance, read_run_queue_wait
from tickroom.server.ops.held_joins import HeldJoin, HeldJoins

log = logging.getLogger(__name__)

DEFAULT_LIMITS = CapacityConfig()  # the flags' defaults

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

RAMP_MIN_STEP = 256  # fresh joins admitted per sample, at least (see LoadGovernor._step)
# Tick lag counts only on a node that demands this much CPU (a share of its
# CPU target), used or waited for on the run queue: a node whose ticks are
# late while it neither uses nor waits for more is late for a moment (a
# short burst of work, a flood being refused), and refusing players would
# not bring its ticks back. A node that the machine starves uses little but
# waits: its demand counts, and so does its lag (docs/benchmarks.md,
# "Overload": counting the use alone, a starved node took 539 players it
# served at 4.7 snapshots/s).
LAG_CPU_FLOOR = 0.5
# ... and only once it has lasted this many samples in a row (a second): a
# join burst whose clients share the machine, or a neighbour's moment, starves
# a node for a sample or two (measured: lag 25-36 ms for <= 2 samples while
# 200 local clients joined at once); refusing for HOLD_S and more would then
# turn players away for a lag already gone. A starved node stays starved.
LAG_PERSIST_SAMPLES = 4

# Why a fresh join was refused: the label of the metrics and the status.
# "ramp" refuses one join without the node being over capacity: the burst it
# belongs to grew the node faster than its figures can follow (more joins
# than it holds, or than the next sample admits).
REASONS = ("cpu", "tick_lag", "players", "player_cap", "ramp")


class LoadGovernor:
    """Decides "accepting" or "over capacity" from ``figures``.

    ``run()`` samples every SAMPLE_S; ``admit_join()`` is awaited for every
    fresh join, and ``join_done()`` told when one it admitted was answered
    (tickroom.server.transport.connection.JoinGate). The kernel's figures
    are injectable for tests: ``cpu_clock`` (process CPU seconds),
    ``wall_clock`` (monotonic seconds), ``wait_clock`` (seconds the event
    loop's thread waited on a run queue) and ``allowance`` (the cores the
    node may use; by default its cgroup's, tickroom.server.ops.cpu_allowance)."""

    def __init__(
        self,
        figures: NodeFigures,
        config: CapacityConfig = DEFAULT_LIMITS,
        *,
        cpu_clock: Callable[[], float] = time.process_time,
        wall_clock: Callable[[], float] = time.perf_counter,
        wait_clock: Callable[[], float] = read_run_queue_wait,
        allowance: Callable[[], float] | None = None,
    ) -> None:
        self.figures = figures
        self.config = config
        self._cpu_clock = cpu_clock
        self._wall_clock = wall_clock
        self._wait_clock = wait_clock
        self._allowance = allowance or CpuAllowance()
        self._cpu_at = cpu_clock()
        self._wall_at = wall_clock()
        self._waited_at = wait_clock()
        self.cpu_busy = 0.0
        self.cpu_wait = 0.0
        self.cpu_allowance = self._allowance()
        self.tick_lag_s = 0.0
        self._lagging_samples = 0  # samples in a row with the tick lag counting (LAG_PERSIST_SAMPLES)
        self.players = 0
        self.capacity = self._capacity(PRIOR_CPU_PER_PLAYER)
        # Fresh joins admitted and not counted in ``players``: those since the
        # last sample, and those admitted before it that no room held at it.
        self._admitted = 0
        self._joining: set[object] = set()  # the links admitted, their join not yet answered
        self._held = HeldJoins()  # joins over the step, decided at the next sample
        self.over_reason = ""  # "": accepting
        self._over_since = -math.inf
        self.refused: Counter[str] = Counter()  # reason -> fresh joins refused
        self.admitted_total = 0
        self.held_total = 0  # fresh joins held for a sample (then admitted or refused)
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
            cpu_wait=self.cpu_wait,
            cpu_allowance=self.cpu_allowance,
            tick_lag_s=self.tick_lag_s,
            players=self.players,
            capacity=self.capacity,
            held=len(self._held),
        )

    # -- the decisions ----------------------------------------------------------

    async def admit_join(self, link: object) -> tuple[Code, str] | None:
        """For a fresh join (not a rejoin) on ``link``: None to let it in (it
        counts at once against the capacity), else the code and message to
        refuse it with. A join over the ramp step waits for the next sample
        (at most MAX_HOLD_S); cancelled meanwhile, it leaves no count."""
        await trio.lowlevel.checkpoint()  # before any count: a cancellation here leaves none
        reason = self._refusal()
        if reason is None:
            self._admit(link)
            self.admitted_total += 1
            return None
        if reason == "ramp" and len(self._held) < self._step():
            return await self._hold(link)
        return self._refuse(reason)

    def _refusal(self) -> str | None:
        """Why a fresh join now is not admitted at once (None: it is); the
        node goes over capacity when this join would reach it."""
        if not self.over_reason and self.players + self._admitted >= self.capacity:
            self._go_over("player_cap" if self.capacity == self.config.max_players else "players")
        if self.over_reason:
            return self.over_reason
        if self._admitted >= self._step():
            return "ramp"  # more joins at once than the node grows by per sample: this one only
        return None

    async def _hold(self, link: object) -> tuple[Code, str] | None:
        """Wait for the next sample to decide the join on ``link`` (at most MAX_HOLD_S)."""
        held = HeldJoin(link)
        self._held.add(held)
        self.held_total += 1
        answered = False
        try:
            await held.wait_decided()
            answered = True
        finally:
            if not answered:  # cancelled (the connection closed): no trace of it
                self._forget(held)
        if not held.decided:  # no sample in MAX_HOLD_S: refused, so that it is answered in time
            self._held.discard(held)
            return self._refuse("ramp")
        if held.admitted:
            self.admitted_total += 1
            return None
        return self._refuse(held.reason or "ramp")

    def _forget(self, held: HeldJoin) -> None:
        """A held join was cancelled: it leaves the queue, and if a sample
        had admitted it already (its task not yet resumed), its count too."""
        self._held.discard(held)
        if held.admitted and held.link in self._joining:
            self._joining.discard(held.link)
            # Counted once: at its admission, or by a later sample as unseated.
            self._admitted = max(0, self._admitted - 1)

    def _admit(self, link: object) -> None:
        self._admitted += 1
        self._joining.add(link)

    def _refuse(self, reason: str) -> tuple[Code, str]:
        self.refused[reason] += 1
        return Code.SERVER_OVERLOADED, (
            f"this server is over its capacity ({reason}); retry in {self.retry_after_s} s or join another server"
        )

    def _decide_held(self) -> None:
        """The joins held since the last sample, oldest first, on the new
        figures: admitted while the step and the capacity allow, the rest
        refused (with the node's reason, or "ramp")."""
        for held in self._held.take_all():
            reason = self._refusal()
            if reason is None:
                self._admit(held.link)
            held.decide(reason or "")

    def join_done(self, link: object) -> None:
        """The join ``admit_join`` let in on ``link`` was answered (seated,
        or refused by the room); from the next sample it counts in
        ``players`` or not at all."""
        self._joining.discard(link)

    def sample(self) -> None:
        """Read the node's figures and decide, then the joins held; called every SAMPLE_S."""
        cpu, wall, waited = self._cpu_clock(), self._wall_clock(), self._wait_clock()
        elapsed = wall - self._wall_at
        if elapsed <= 0:
            return
        busy = (cpu - self._cpu_at) / elapsed
        wait = max(0.0, (waited - self._waited_at) / elapsed)
        self._cpu_at, self._wall_at, self._waited_at = cpu, wall, waited
        self.cpu_busy += SMOOTHING * (busy - self.cpu_busy)
        self.cpu_wait += SMOOTHING * (wait - self.cpu_wait)
        self.cpu_allowance = self._allowance()
        self.tick_lag_s += SMOOTHING * (self.figures.take_tick_lag() - self.tick_lag_s)
        # A join seated in its room but not yet answered is in ``players``:
        # only those no room holds yet count as admitted (never twice).
        self.players = self.figures.players_held()
        self._admitted = self.figures.unseated(self._joining)
        per_player = self.cpu_busy / self.players if self.players >= MIN_PLAYERS_MEASURED else PRIOR_CPU_PER_PLAYER
        self.capacity = self._capacity(per_player)
        self._decide_state(wall)
        self._decide_held()

    def _decide_state(self, wall: float) -> None:
        limits = self.config
        lagging = bool(limits.tick_lag_s) and self.tick_lag_s >= limits.tick_lag_s and self._demands_enough_to_lag()
        self._lagging_samples = self._lagging_samples + 1 if lagging else 0
        if self.over_reason:
            if wall - self._over_since >= HOLD_S and self._under(RESUME_FRACTION):
                log.info("load: accepting new players again (%s)", self._figures())
                self.over_reason = ""
            return
        if limits.cpu_target and self.cpu_busy >= self._cpu_limit():
            self._go_over("cpu")
        elif self._lagging_samples >= LAG_PERSIST_SAMPLES:
            self._go_over("tick_lag")
        elif self.players + self._admitted >= self.capacity:
            self._go_over("player_cap" if self.capacity == limits.max_players else "players")

    def _cpu_limit(self) -> float:
        """Cores of use at which the node is full: the CPU target of its allowance."""
        return self.config.cpu_target * self.cpu_allowance

    def _demands_enough_to_lag(self) -> bool:
        """Whether the tick lag counts: the node demands (uses, or waits on
        the run queue for) at least LAG_CPU_FLOOR of its CPU
        target (of its whole allowance, when CPU is not measured)."""
        target = self.config.cpu_target or 1.0
        return self.cpu_busy + self.cpu_wait >= LAG_CPU_FLOOR * target * self.cpu_allowance

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
        measured = int(target * self.cpu_allowance / max(per_player, 1e-6)) if target > 0 else UNLIMITED
        return min(measured, cap) if cap > 0 else measured

    def _under(self, fraction: float) -> bool:
        limits = self.config
        return (
            (not limits.cpu_target or self.cpu_busy < self._cpu_limit() * fraction)
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
        return f"load={state} {self._figures()} refused_overload={refused} held_total={self.held_total}"

    def _figures(self) -> str:
        return (
            f"cpu_busy={self.cpu_busy:.2f} cpu_wait={self.cpu_wait:.2f} cpu_allowance={self.cpu_allowance:.2f} "
            f"tick_lag_ms={self.tick_lag_s * 1e3:.1f} players={self.players} capacity={self.capacity}"
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
        GaugeMetricFamily("tickroom_cpu_busy_ratio", "CPU used, in cores, smoothed", value=state.cpu_busy),
        GaugeMetricFamily(
            "tickroom_cpu_wait_ratio",
            "Seconds per second the event loop waited on a run queue (runnable, not running), smoothed",
            value=state.cpu_wait,
        ),
        GaugeMetricFamily(
            "tickroom_cpu_allowance_cores",
            "Cores the node may use: one, or its cgroup CPU quota if lower",
            value=state.cpu_allowance,
        ),
        GaugeMetricFamily(
            "tickroom_tick_lag_seconds", "How late the rooms' ticks start, smoothed", value=state.tick_lag_s
        ),
        CounterMetricFamily(
            "tickroom_overload_episodes", "Times the node went over capacity", value=governor.transitions
        ),
        CounterMetricFamily(
            "tickroom_joins_held", "Fresh joins over the ramp step held for the next sample", value=governor.held_total
        ),
        refused,
    ]
