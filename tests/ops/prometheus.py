"""A real Prometheus server for the tests, and the PromQL the deploy files hold.

``prometheus_process`` starts Debian's ``prometheus`` on loopback, on a free
port with its own config and data directory, and stops it on exit. A
missing binary fails the test loudly (scripts/run-tests.sh installs the
``prometheus`` package, which brings ``promtool``); it is never skipped.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "tickroom-alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "rules" / "tickroom-alerts.test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "tickroom.json"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0

# What Grafana puts in place of its variables when it sends a query; the
# window is a few scrapes of the tests' 1 s interval.
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$__interval": "1s", "$instance": ".*"}

# An alert expression is `SIGNAL OP THRESHOLD` (rules/tickroom-alerts.yml).
_ALERT_FORM = re.compile(r"^(?P<signal>.*\S)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<threshold>-?[0-9.]+(?:e-?[0-9]+)?)$", re.S)


def binary(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``; fails when not installed."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (apt-get install prometheus; see scripts/run-tests.sh)")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of deploy/prometheus/rules/tickroom-alerts.yml."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def alert_signal(expr: str) -> str:
    """The SIGNAL of an alert expression of the form `SIGNAL OP THRESHOLD`."""
    found = _ALERT_FORM.match(expr.strip())
    if found is None:
        raise ValueError(f"not of the form SIGNAL OP THRESHOLD: {expr}")
    return found.group("signal")


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL as Grafana sends it) for every target of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            out.append((panel["title"], expr))
    return out


def scrape_config(metrics_target: str, interval_s: int = 1) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with its targets replaced by
    ``metrics_target`` (host:port), scraping and evaluating every
    ``interval_s`` seconds: the shipped job name, path and rules."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": f"{interval_s}s", "evaluation_interval": f"{interval_s}s"}
    config["rule_files"] = [str(PROMETHEUS_DIR / path) for path in config["rule_files"]]
    for job in config["scrape_configs"]:
        job.pop("file_sd_configs", None)
        job["static_configs"] = [{"targets": [metrics_target]}]
    return config


@contextmanager
def prometheus_process(config: dict[str, Any]) -> Iterator[str]:
    """Run Prometheus with ``config``; yield its base URL; stop it on exit."""
    prometheus = binary("prometheus")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="tickroom-prometheus-") as tmp:
        config_file = Path(tmp) / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        log = open(Path(tmp) / "prometheus.log", "wb")  # noqa: SIM115 - closed in finally
        proc = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={Path(tmp) / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"prometheus exited with {proc.returncode}:\n{_read(log)}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"prometheus was not ready in {START_TIMEOUT_S} s:\n{_read(log)}")
                time.sleep(0.05)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def _read(log) -> str:
    log.flush()
    return Path(log.name).read_text(errors="replace")[-4000:]
