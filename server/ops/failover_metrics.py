"""The failover metric families (tickroom_failover_*), from a node's
``FailoverStats`` (tickroom.server.cluster.stats): store write latency and
failures, lease renewals that failed or were lost, rooms recovered and how
long each restore took, redirects, master changes, durable-ack waits and fallbacks. docs/operations.md
("Failover metrics") lists them with alert suggestions."""

from __future__ import annotations

from typing import Protocol

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from tickroom.server.cluster.stats import FailoverStatistics, HistogramSnapshot


class FailoverSource(Protocol):
    """What the metrics read of the failover (its FailoverStats)."""

    def statistics(self) -> FailoverStatistics: ...


def _histogram(name: str, help_text: str, h: HistogramSnapshot) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, help_text)
    cumulative, buckets = 0, []
    for bound, count in zip((*h.buckets, float("inf")), h.counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
    family.add_metric([], buckets, h.sum)
    return family


def _counter(name: str, help_text: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_text, value=value)


def failover_families(s: FailoverStatistics) -> list[Metric]:
    """The families of one statistics snapshot. Pure: any thread."""
    return [
        _histogram(
            "tickroom_failover_checkpoint_write_seconds",
            "Store round trip of a batched write holding at least one room checkpoint",
            s.checkpoint_write_seconds,
        ),
        _histogram(
            "tickroom_failover_log_append_seconds",
            "Store round trip of a batched write of input-log entries only",
            s.log_append_seconds,
        ),
        _counter(
            "tickroom_failover_checkpoint_failures",
            "Room checkpoint or log writes that failed (store unreachable or an error; the room keeps running)",
            s.checkpoint_failures,
        ),
        _counter("tickroom_failover_writes_fenced", "Room writes refused for a stale epoch", s.writes_fenced),
        _counter(
            "tickroom_failover_lease_renewal_failures",
            "Lease renewals that could not reach the store",
            s.lease_renewal_failures,
        ),
        _counter(
            "tickroom_failover_leases_lost",
            "Rooms this node stopped because another node holds their lease",
            s.leases_lost,
        ),
        _counter("tickroom_failover_rooms_recovered", "Rooms restored here from an expired lease", s.rooms_recovered),
        _counter("tickroom_failover_restore_failures", "Claimed rooms that could not be restored", s.restore_failures),
        _histogram(
            "tickroom_failover_restore_seconds",
            "Time one room's restore took (claim to adopted: read, rebuild, re-anchor)",
            s.restore_seconds,
        ),
        _counter("tickroom_failover_redirects", "Joins answered with a redirect to the room's owner", s.redirects),
        _counter(
            "tickroom_failover_master_changes",
            "Changes of the store's master seen (a Sentinel promotion or a Redis restart)",
            s.master_changes,
        ),
        _histogram(
            "tickroom_failover_durable_ack_wait_seconds",
            "--durable-acks: how long a tick's snapshots waited for their inputs' log write",
            s.durable_ack_wait_seconds,
        ),
        _counter(
            "tickroom_failover_durable_ack_fallbacks",
            "--durable-acks: room-ticks whose snapshots left at once with a lowered seq (the write was late)",
            s.durable_ack_fallbacks,
        ),
    ]
