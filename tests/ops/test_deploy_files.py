"""The Grafana dashboard and the Kubernetes scrape config, checked by shape
(Debian's Prometheus build has no Kubernetes discovery for promtool to
check, and no Grafana runs here): the dashboard's panels and variables are
well-formed, and the Kubernetes job scrapes the pods deploy/k8s/ makes,
on their control port."""

from __future__ import annotations

import json

import yaml

from .prometheus import DASHBOARD, PROMETHEUS_DIR, REPO, dashboard_queries

PANEL_TYPES = {"row", "stat", "timeseries"}
# What the issue asks the dashboard to show, by the metric behind it.
REQUIRED_METRICS = {
    "up{",
    "tickroom_rooms",
    "tickroom_players_connected",
    "tickroom_tick_duration_seconds_bucket",
    "tickroom_room_tick_duration_seconds_bucket",
    "tickroom_tick_overruns_total",
    "tickroom_deltas_encoded_total",
    "tickroom_bytes_sent_total",
    "tickroom_inputs_rejected_total",
    "tickroom_messages_refused_total",
    "tickroom_connections_refused_total",
    "tickroom_failover_checkpoint_lag_seconds",
    "tickroom_failover_checkpoint_write_seconds_bucket",
    "tickroom_failover_checkpoint_failures_total",
    "tickroom_failover_lease_renewal_failures_total",
    "tickroom_failover_leases_lost_total",
    "tickroom_failover_rooms_recovered_total",
    "tickroom_failover_restore_failures_total",
    "tickroom_failover_restore_seconds_bucket",
    "tickroom_failover_master_changes_total",
}


def test_dashboard_panels_are_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["description"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids and len(set(ref_ids)) == len(ref_ids), panel["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["includeAll"] and variables["instance"]["allValue"] == ".*"


def test_dashboard_shows_what_an_operator_needs() -> None:
    text = " ".join(expr for _, expr in dashboard_queries())
    assert {m for m in REQUIRED_METRICS if m not in text} == set()
    # Every query of a node's series is filtered by the Node variable.
    for title, expr in dashboard_queries():
        if "tickroom_" in expr:
            assert 'instance=~".*"' in expr, title


def test_kubernetes_job_scrapes_the_statefulsets_control_port() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus-kubernetes.yml").read_text())
    static = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert config["rule_files"] == static["rule_files"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == static["scrape_configs"][0]["job_name"] == "tickroom"
    (sd,) = job["kubernetes_sd_configs"]
    assert sd["role"] == "pod"
    statefulset = yaml.safe_load((REPO / "deploy" / "k8s" / "statefulset.yaml").read_text())
    pod = statefulset["spec"]["template"]
    ((key, value),) = pod["metadata"]["labels"].items()
    assert sd["selectors"][0]["label"] == f"{key}={value}"
    keep = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    assert keep == [
        {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "control", "action": "keep"}
    ]
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
    assert "control" in ports
