"""Failover figures a node keeps for Prometheus: plain counters and bucket
counts, updated by the failover loops (never by the tick) and read at scrape
time by tickroom.server.ops.metrics through ``FailoverStats.statistics()``."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# Store round trips, seconds: a healthy loopback Redis answers in well under
# a millisecond; seconds mean a promotion or a dead master (SOCKET_TIMEOUT_S).
STORE_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# One room's restore (claim, read, rebuild, re-anchor), seconds.
RESTORE_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class HistogramSnapshot:
    buckets: tuple[float, ...]  # upper bounds, seconds; +Inf implied
    counts: tuple[int, ...]  # per bucket (not cumulative), the last one +Inf
    sum: float

    @property
    def count(self) -> int:
        return sum(self.counts)


class Histogram:
    """Observations into fixed buckets (a value equal to a bound counts in it)."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.sum += seconds

    def snapshot(self) -> HistogramSnapshot:
        return HistogramSnapshot(self.buckets, tuple(self.counts), self.sum)


@dataclass(frozen=True)
class FailoverStatistics:
    checkpoint_write_seconds: HistogramSnapshot  # batches holding at least one checkpoint
    log_append_seconds: HistogramSnapshot  # batches of input-log entries only
    checkpoint_failures: int  # room writes that failed (store down or an error), not fenced ones
    writes_fenced: int  # room writes refused for a stale epoch
    lease_renewal_failures: int  # renewals that could not reach the store
    leases_lost: int  # rooms this node stopped because another node owns them
    rooms_recovered: int
    restore_failures: int  # claimed rooms that could not be restored
    restore_seconds: HistogramSnapshot
    redirects: int  # joins answered with the room owner's URL
    master_changes: int  # store generations seen change (a promotion, a restart)
    # --durable-acks (tickroom.server.cluster.durable_acks); empty without it.
    durable_ack_wait_seconds: HistogramSnapshot  # a tick's snapshots held for their inputs' write
    durable_ack_fallbacks: int  # room-ticks sent at once with a lowered seq: the write was too late


@dataclass
class FailoverStats:
    """The mutable counters; ``statistics()`` is a frozen copy."""

    checkpoint_write: Histogram = field(default_factory=lambda: Histogram(STORE_BUCKETS_S))
    log_append: Histogram = field(default_factory=lambda: Histogram(STORE_BUCKETS_S))
    restore: Histogram = field(default_factory=lambda: Histogram(RESTORE_BUCKETS_S))
    checkpoint_failures: int = 0
    writes_fenced: int = 0
    lease_renewal_failures: int = 0
    leases_lost: int = 0
    rooms_recovered: int = 0
    restore_failures: int = 0
    redirects: int = 0
    master_changes: int = 0
    durable_ack_wait: Histogram = field(default_factory=lambda: Histogram(STORE_BUCKETS_S))
    durable_ack_fallbacks: int = 0

    def statistics(self) -> FailoverStatistics:
        return FailoverStatistics(
            checkpoint_write_seconds=self.checkpoint_write.snapshot(),
            log_append_seconds=self.log_append.snapshot(),
            checkpoint_failures=self.checkpoint_failures,
            writes_fenced=self.writes_fenced,
            lease_renewal_failures=self.lease_renewal_failures,
            leases_lost=self.leases_lost,
            rooms_recovered=self.rooms_recovered,
            restore_failures=self.restore_failures,
            restore_seconds=self.restore.snapshot(),
            redirects=self.redirects,
            master_changes=self.master_changes,
            durable_ack_wait_seconds=self.durable_ack_wait.snapshot(),
            durable_ack_fallbacks=self.durable_ack_fallbacks,
        )
