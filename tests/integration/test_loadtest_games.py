"""The load tester plays any game: both bot kinds against a real server running
the example game tag (installed with its entry point, `--game tag`), with no
error; and a run whose bots the server refuses exits non-zero whatever
--fail-on says.

Short on purpose (a few bots for ~3 s per run): these check that the bots'
inputs fit a game that is not arena, not how fast anything is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import REPO, running_server

pytestmark = pytest.mark.integration

RUN_TIMEOUT_S = 90


def run_loadtest(url: str, report: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "tickroom.loadtest", "--url", url, "--rooms", "2", "--bots-per-room", "3",
         "--duration", "3", "--ramp-up", "0.5", "--processes", "1", "--no-progress", "--report", str(report), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tag_server():
    with running_server("--game", "tag", "--idle-close", "5") as server:
        yield server


@pytest.mark.parametrize("bot_kind", ["client", "raw"])
def test_bots_play_the_example_game_with_zero_errors(tag_server, tmp_path, bot_kind):
    report_path = tmp_path / "report.json"
    done = run_loadtest(
        tag_server.url, report_path, "--bot-kind", bot_kind, "--fail-on", "errors=0,connected_ratio=1,desyncs=0"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert report["bots"] == report["connected"] == 6
    assert report["errors"] == {} and report["errors_total"] == 0 and report["worker_failures"] == []
    assert report["reconnects"] == 0
    # They played: inputs went in and the server applied them (RTT samples
    # come from snapshots whose seq acknowledges a bot's input).
    assert report["inputs_per_bot_s"] > 5 and report["snapshots_per_bot_s"] > 5
    assert report["rtt_samples"] > 0
    assert tag_server.proc.poll() is None  # and the server is still up


def test_a_run_whose_bots_the_server_refuses_exits_1_whatever_fail_on_says(tmp_path):
    # A 64-byte limit admits the raw bots' joins (~50 bytes) and refuses
    # their arena inputs in protocol version 1 (~75 bytes: a map of four
    # fields; version 2's rows are 38): each bot is closed with 4002
    # MESSAGE_TOO_BIG, the same way a bot sending an input the game does
    # not take is closed for bad input.
    report_path = tmp_path / "report.json"
    with running_server("--max-message-size", "64") as server:
        done = run_loadtest(server.url, report_path, "--bot-kind", "raw", "--protocol", "1")  # no --fail-on at all
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "refused the bots' messages" in output
    report = json.loads(report_path.read_text())
    assert report["errors"].get("closed_4002", 0) > 0, report["errors"]
