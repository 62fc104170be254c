"""The tickroom_failover_* families: what a node's FailoverStats shows on /metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tickroom.server.cluster.stats import FailoverStats
from tickroom.server.ops.metrics import ServerMetrics
from tickroom.server.rooms.registry import RegistryConfig, RoomRegistry
from tickroom.server.transport.listener import ConnectionTable


def samples(body: bytes) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_failover_figures_are_prometheus_families():
    stats = FailoverStats()
    stats.checkpoint_write.observe(0.0008)
    stats.checkpoint_write.observe(0.3)
    stats.log_append.observe(0.001)  # on a bound: counts in that bucket
    stats.restore.observe(0.2)
    stats.checkpoint_failures, stats.leases_lost, stats.rooms_recovered = 2, 1, 1
    stats.lease_renewal_failures, stats.redirects, stats.master_changes = 5, 3, 1
    found = samples(ServerMetrics(RoomRegistry(RegistryConfig()), ConnectionTable(), failover=stats).render())

    assert found[("tickroom_failover_checkpoint_write_seconds_bucket", (("le", "0.001"),))] == 1
    assert found[("tickroom_failover_checkpoint_write_seconds_bucket", (("le", "0.5"),))] == 2
    assert found[("tickroom_failover_checkpoint_write_seconds_count", ())] == 2
    assert abs(found[("tickroom_failover_checkpoint_write_seconds_sum", ())] - 0.3008) < 1e-9
    assert found[("tickroom_failover_log_append_seconds_bucket", (("le", "0.001"),))] == 1
    assert found[("tickroom_failover_restore_seconds_bucket", (("le", "0.25"),))] == 1
    assert found[("tickroom_failover_restore_seconds_bucket", (("le", "0.1"),))] == 0
    expected = {
        "checkpoint_failures": 2, "leases_lost": 1, "rooms_recovered": 1, "lease_renewal_failures": 5,
        "redirects": 3, "master_changes": 1, "restore_failures": 0, "writes_fenced": 0,
    }  # fmt: skip
    for name, value in expected.items():
        assert found[(f"tickroom_failover_{name}_total", ())] == value, name


def test_a_node_without_a_store_shows_no_failover_families():
    body = ServerMetrics(RoomRegistry(RegistryConfig()), ConnectionTable()).render().decode()
    assert "tickroom_rooms" in body and "tickroom_failover" not in body
