"""Counters and samples: what a worker measures, how it ships them to the
parent, and how the parent merges them.

Percentiles are exact: every RTT and snapshot-interval sample is shipped to
the parent (as float32 milliseconds, 4 bytes each) and the percentiles are
taken over all samples of all workers. At 1,000 bots x 20 Hz that is
~80 kB/s per metric over the pipe and ~290 MB per metric per hour in the
parent: fine for the bounded runs QA does; a soak test of many hours would
want mergeable log-bucket histograms instead.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from tickroom.percentiles import percentiles


@dataclass
class Delta:
    """What one worker measured during one interval (about a second).

    ``second`` is the whole second since the run started (the parent's
    clock, shared through time.monotonic) in which the interval ended.
    """

    worker: int
    second: int
    connected: int = 0  # bots connected at the end of the interval (a gauge)
    inputs: int = 0
    snapshots: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    joins: int = 0  # first connections of a bot
    leaves: int = 0  # bots that left for good
    reconnects: int = 0
    redirects: int = 0
    desyncs: int = 0
    ever_connected: int = 0  # bots that connected at least once (new this interval)
    connected_ms: int = 0  # bot-milliseconds connected, for per-bot-second rates
    errors: Counter = field(default_factory=Counter)
    rtt_ms: array = field(default_factory=lambda: array("f"))
    interval_ms: array = field(default_factory=lambda: array("f"))
    max_gap_ms: float = 0.0
    connect_at: array = field(default_factory=lambda: array("f"))  # s since start, first connects
    join_ms: array = field(default_factory=lambda: array("f"))  # TCP connect to welcome, every (re)join
    cpu_ms: int = 0  # the worker process's own CPU time (user+system): what the load generator costs per snapshot
    # Joins the server refused (a 4xxx close before the welcome: 4203 over
    # capacity, 4201 full, ...) by code, and how long each waited for its
    # code from the TCP connect.
    refusals: Counter = field(default_factory=Counter)
    refusal_ms: array = field(default_factory=lambda: array("f"))
    # Per seated connection that ended: its lowest snapshots/s over the
    # rawbots.RATE_WINDOW_S windows it was seated for (raw bots only).
    seated_rate_min: array = field(default_factory=lambda: array("f"))


COUNTS = (
    "connected_ms",
    "inputs",
    "snapshots",
    "bytes_in",
    "bytes_out",
    "joins",
    "leaves",
    "reconnects",
    "redirects",
    "desyncs",
    "ever_connected",
    "cpu_ms",
)


@dataclass
class Second:
    """All workers' figures for one second of the run: a time-series row."""

    connected: dict[int, int] = field(default_factory=dict)  # worker -> gauge
    inputs: int = 0
    snapshots: int = 0
    rtt_ms: list = field(default_factory=list)


class Totals:
    """The parent's merge of every Delta."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.errors: Counter = Counter()
        self.rtt_chunks: list[np.ndarray] = []
        self.interval_chunks: list[np.ndarray] = []
        self.connect_at: list[float] = []
        self.join_chunks: list[np.ndarray] = []
        self.max_gap_ms = 0.0
        self.refusals: Counter = Counter()
        self.refusal_chunks: list[np.ndarray] = []
        self.seated_rate_chunks: list[np.ndarray] = []
        self.seconds: dict[int, Second] = {}
        self.connected_now: dict[int, int] = {}  # worker -> latest gauge

    def add(self, delta: Delta) -> None:
        for name in COUNTS:
            self.counts[name] += getattr(delta, name)
        self.errors.update(delta.errors)
        rtt = np.frombuffer(delta.rtt_ms, dtype=np.float32) if len(delta.rtt_ms) else np.empty(0, np.float32)
        if rtt.size:
            self.rtt_chunks.append(rtt)
        if len(delta.interval_ms):
            self.interval_chunks.append(np.frombuffer(delta.interval_ms, dtype=np.float32))
        self.connect_at.extend(delta.connect_at)
        if len(delta.join_ms):
            self.join_chunks.append(np.frombuffer(delta.join_ms, dtype=np.float32))
        self.max_gap_ms = max(self.max_gap_ms, delta.max_gap_ms)
        self.refusals.update(delta.refusals)
        if len(delta.refusal_ms):
            self.refusal_chunks.append(np.frombuffer(delta.refusal_ms, dtype=np.float32))
        if len(delta.seated_rate_min):
            self.seated_rate_chunks.append(np.frombuffer(delta.seated_rate_min, dtype=np.float32))
        self.connected_now[delta.worker] = delta.connected
        row = self.seconds.setdefault(delta.second, Second())
        row.connected[delta.worker] = delta.connected
        row.inputs += delta.inputs
        row.snapshots += delta.snapshots
        if rtt.size:
            row.rtt_ms.append(rtt)

    @property
    def connected(self) -> int:
        return sum(self.connected_now.values())

    def rtt(self) -> np.ndarray:
        return np.concatenate(self.rtt_chunks) if self.rtt_chunks else np.empty(0, np.float32)

    def joins(self) -> np.ndarray:
        return np.concatenate(self.join_chunks) if self.join_chunks else np.empty(0, np.float32)

    def refusal_times(self) -> np.ndarray:
        return np.concatenate(self.refusal_chunks) if self.refusal_chunks else np.empty(0, np.float32)

    def seated_rates(self) -> np.ndarray:
        return np.concatenate(self.seated_rate_chunks) if self.seated_rate_chunks else np.empty(0, np.float32)

    def intervals(self) -> np.ndarray:
        return np.concatenate(self.interval_chunks) if self.interval_chunks else np.empty(0, np.float32)

    def recent_rtt(self, seconds: int) -> np.ndarray:
        """RTT samples of the last ``seconds`` seconds seen (for the live view)."""
        keys = sorted(self.seconds)[-seconds:]
        parts = [c for k in keys for c in self.seconds[k].rtt_ms]
        return np.concatenate(parts) if parts else np.empty(0, np.float32)

    def series(self) -> list[dict]:
        """One row per second: connected, inputs/s, snapshots/s, RTT p50/p99.

        A worker that sent nothing in a second keeps its last gauge of
        connected bots (it may have been busy, not empty)."""
        rows = []
        last: dict[int, int] = {}
        for second in range(min(self.seconds, default=0), max(self.seconds, default=-1) + 1):
            row = self.seconds.get(second, Second())
            last.update(row.connected)
            rtt = np.concatenate(row.rtt_ms) if row.rtt_ms else np.empty(0, np.float32)
            p50, p99 = percentiles(rtt, (50, 99))
            rows.append(
                {
                    "t": second,
                    "connected": sum(last.values()),
                    "inputs_per_s": row.inputs,
                    "snapshots_per_s": row.snapshots,
                    "rtt_p50_ms": _round(p50),
                    "rtt_p99_ms": _round(p99),
                }
            )
        # The workers' last reports come after the bots left: no figures.
        while (
            rows and rows[-1]["connected"] == 0 and rows[-1]["inputs_per_s"] == 0 and rows[-1]["snapshots_per_s"] == 0
        ):
            rows.pop()
        return rows


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 2)  # NaN -> null in JSON
