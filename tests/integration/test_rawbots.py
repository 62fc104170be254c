"""Raw bots (loadtest/rawbots.py) against a real server process: through
``python -m tickroom.loadtest --bot-kind raw`` (workers and report, as the bench runs
them), and one fleet in-process to see a refusal counted by its code.

Short and loose on purpose: CI machines are slow and shared; these check
that the raw bots speak the protocol and that the figures are there, not
what they are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tickroom.loadtest.bots import Target
from tickroom.loadtest.rawbots import run_fleet
from tickroom.loadtest.scenarios import schedule

from .harness import REPO, running_server

pytestmark = pytest.mark.integration

RUN_TIMEOUT_S = 60


def test_raw_bots_play_and_report_like_client_bots(tmp_path):
    report_path = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    with running_server("--stats-interval", "1") as server:
        done = subprocess.run(
            [sys.executable, "-m", "tickroom.loadtest", "--url", server.url, "--bot-kind", "raw", "--rooms", "2", "--bots-per-room", "5",
             "--duration", "3", "--ramp-up", "0.5", "--processes", "1", "--no-progress", "--report", str(report_path),
             "--fail-on", "errors=0,connected_ratio=1"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
        )  # fmt: skip
        log = server.log()
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert report["bot_kind"] == "raw" and report["bots"] == 10
    assert report["connected"] == report["joins"] == report["leaves"] == 10
    assert report["errors"] == {} and report["reconnects"] == 0 and report["worker_failures"] == []
    assert report["snapshots_per_bot_s"] >= 10  # 20 Hz; half of it on a slow machine
    assert report["inputs_per_bot_s"] == pytest.approx(report["snapshots_per_bot_s"], rel=0.1)  # one input per snapshot
    assert report["rtt_samples"] > 0 and 0 < report["rtt_ms"]["p50"] <= report["rtt_ms"]["p99"] < 2000
    assert report["bytes_in_per_bot_s"] > 100 and report["bytes_out_per_bot_s"] > 100
    assert report["worker_cpu_us_per_snapshot"] is not None
    assert max(row["connected"] for row in report["series"]) == 10
    # The server saw them as players, and saw them leave (not drop).
    assert sum(f"rawbot-{i} (" in log and "joined as" in log for i in range(10)) == 10
    assert log.count(" left") >= 10, log[-2000:]
    assert "load: rooms=2 players=10" in log


def test_a_refused_join_is_counted_by_its_code():
    specs = schedule("steady", rooms=1, bots_per_room=3, duration=2.0, ramp_up=0.3, seed=3)
    deltas = []
    with running_server("--max-players", "2") as server:
        t0 = time.monotonic()
        run_fleet([(s, Target(server.url, "raw-full")) for s in specs], 0, t0=t0, until=t0 + 10, ship=deltas.append)
    errors = sum((d.errors for d in deltas), start=type(deltas[0].errors)())
    assert sum(d.ever_connected for d in deltas) == 2
    # The third bot: error 4101 (room full), then the close with 4101; it
    # does not retry a refusal (section 3.2), and never got in.
    assert errors == {"server_error_4101": 1, "closed_4101": 1, "never_connected": 1}, errors
    assert sum(d.leaves for d in deltas) == 3 and sum(d.reconnects for d in deltas) == 0
    assert sum(d.snapshots for d in deltas) > 0 and deltas[-1].connected == 0


def test_help_names_the_bot_kind():
    done = subprocess.run(
        [sys.executable, "-m", "tickroom.loadtest", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "--bot-kind" in done.stdout and "raw" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "tickroom.loadtest.bench", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "--bot-kind" in done.stdout
