"""The load tester end to end: ``python -m tickroom.loadtest`` in its own process,
its bots in worker processes, against a real server process on 127.0.0.1.

Small and short on purpose (a few rooms of a few bots, 2-3 s): these check
that the figures are there and plausible, not what they are; the figures
themselves go to docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial

import pytest
import trio

from .fake_control import FakeControl
from .harness import REPO, running_server

pytestmark = pytest.mark.integration

RUN_TIMEOUT_S = 90
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def server():
    with running_server("--idle-close", "5") as proc:
        yield proc


async def loadtest(*args: str, report_dir) -> tuple[int, dict | None, str]:
    """Run the CLI; return its exit code, its JSON report and its output."""
    report_path = report_dir / f"report-{os.urandom(3).hex()}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    with trio.fail_after(RUN_TIMEOUT_S):
        done = await trio.run_process(
            [sys.executable, "-m", "tickroom.loadtest", "--no-progress", "--report", str(report_path), *args],
            cwd=REPO,
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    output = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return done.returncode, report, output


def assert_plausible(report: dict, *, bots: int) -> None:
    assert report["bots"] == bots
    assert report["connected"] == bots, report
    assert report["errors"] == {} and report["errors_total"] == 0, report["errors"]
    assert report["desyncs"] == 0 and report["worker_failures"] == []
    for key in ("p50", "p95", "p99", "max"):
        # Generous: two cores shared with the server and the rest of the suite.
        assert 0 < report["rtt_ms"][key] < 2000, report["rtt_ms"]
    assert report["rtt_ms"]["p50"] <= report["rtt_ms"]["p99"] <= report["rtt_ms"]["max"]
    assert 20 < report["snapshot_interval_ms"]["p50"] < 200  # 50 ms at 20 Hz
    assert report["max_gap_ms"] >= report["snapshot_interval_ms"]["max"]
    assert 0 < report["join_ms"]["p50"] <= report["join_ms"]["max"] < 10_000
    assert 10 < report["snapshots_per_bot_s"] < 25  # ~ the tick rate, 20 Hz
    assert 10 < report["inputs_per_bot_s"] < 25  # default input rate: the tick rate
    assert report["bytes_in_per_bot_s"] > 100 and report["bytes_out_per_bot_s"] > 100
    assert report["reconnects"] == 0 and report["redirects"] == 0 and report["server"] is None
    assert report["series"] and max(row["connected"] for row in report["series"]) == bots


async def test_steady_run_writes_report_and_plot_and_passes_thresholds(server, tmp_path):
    plot = tmp_path / "run.png"
    code, report, output = await loadtest(
        "--url", server.url, "--rooms", "2", "--bots-per-room", "3", "--duration", "3", "--ramp-up", "0.5",
        "--processes", "2", "--plot", str(plot), "--fail-on", "rtt_p99_ms=2000,errors=0,connected_ratio=1",
        report_dir=tmp_path,
    )  # fmt: skip
    assert code == 0, output
    assert_plausible(report, bots=6)
    assert report["processes"] == 2 and report["scenario"] == "steady"
    assert report["joins"] == report["leaves"] == 6
    assert "RTT p50" in output  # the summary table
    data = plot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


async def test_burst_joins_everyone_at_once_and_a_broken_threshold_fails_the_run(server, tmp_path):
    code, report, output = await loadtest(
        "--url", server.url, "--rooms", "2", "--bots-per-room", "3", "--duration", "2", "--scenario", "burst",
        "--processes", "2", "--fail-on", "rtt_p99_ms=0.001,errors=0",
        report_dir=tmp_path,
    )  # fmt: skip
    assert code == 1, output
    assert "FAIL rtt_p99_ms" in output and "errors" not in output.split("FAIL", 1)[1].splitlines()[0]
    assert_plausible(report, bots=6)
    assert report["connect_spread_s"] < 1.0  # everyone within the same second


async def test_churn_replaces_bots_all_the_time(server, tmp_path):
    code, report, output = await loadtest(
        "--url", server.url, "--rooms", "2", "--bots-per-room", "2", "--duration", "4", "--ramp-up", "0.5",
        "--scenario", "churn", "--processes", "1", "--seed", "7",
        report_dir=tmp_path,
    )  # fmt: skip
    assert code == 0, output
    assert report["bots"] > 4  # more bots than seats: replacements
    assert report["connected"] == report["joins"] == report["bots"]
    assert report["leaves"] == report["bots"]
    assert report["errors"] == {} and report["desyncs"] == 0
    assert max(row["connected"] for row in report["series"]) <= 4


async def test_reconnects_are_counted_when_connections_are_cut(server, tmp_path, nursery):
    proxy = await nursery.start(_cutting_proxy, server.url)
    code, report, output = await loadtest(
        "--url", proxy, "--rooms", "1", "--bots-per-room", "3", "--duration", "4", "--ramp-up", "0",
        "--processes", "1",
        report_dir=tmp_path,
    )  # fmt: skip
    assert code == 0, output
    assert report["connected"] == 3
    assert report["reconnects"] >= 3, report  # each bot lost its connection once (at least)
    assert report["errors"].get("closed_1006", 0) >= 3
    assert report["desyncs"] == 0
    assert report["leaves"] == 3  # and still finished its run


async def test_control_api_path_gets_rooms_tickets_and_server_figures(server, tmp_path, nursery):
    control = await nursery.start(FakeControl(server.url).serve)
    code, report, output = await loadtest(
        "--control", control.url, "--api-key", control.api_key, "--rooms", "2", "--bots-per-room", "2",
        "--duration", "2", "--ramp-up", "0.2", "--processes", "1", "--fail-on", "server_tick_p99_ms=50,errors=0",
        report_dir=tmp_path,
    )  # fmt: skip
    assert code == 0, output
    assert report["connected"] == 4 and report["errors"] == {}
    assert report["server"] == {"ticks": 1000, "tick_p50_ms": 5.0, "tick_p99_ms": 10.0, "overruns": 3}
    allocations = [body for method, target, body in control.requests if target == "/v1/rooms"]
    assert allocations == [{"game": "arena", "max_players": 2}] * 2
    ticket_requests = [body for method, target, body in control.requests if target.endswith("/tickets")]
    assert sorted(p for body in ticket_requests for p in body["players"]) == sorted(f"bot-{i}" for i in range(4))
    assert all(body["ttl_s"] >= 300 for body in ticket_requests)


async def test_control_api_refusal_is_exit_code_2(server, tmp_path, nursery):
    control = await nursery.start(FakeControl(server.url).serve)
    code, report, output = await loadtest(
        "--control", control.url, "--api-key", "wrong", "--rooms", "1", "--bots-per-room", "1", "--duration", "1",
        report_dir=tmp_path,
    )  # fmt: skip
    assert code == 2 and report is None
    assert "401" in output


@pytest.mark.parametrize(
    "command", [["-m", "tickroom.loadtest", "--help"], ["-m", "tickroom.server", "loadtest", "--help"]]
)
def test_help_names_every_flag(command):
    done = subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    for flag in ("--url", "--control", "--api-key", "--rooms", "--bots-per-room", "--duration", "--ramp-up",
                 "--input-rate", "--processes", "--scenario", "--report", "--plot", "--seed", "--fail-on"):  # fmt: skip
        assert flag in done.stdout
    assert "rtt_p99_ms" in done.stdout  # the metric names --fail-on accepts


async def _cutting_proxy(server_url: str, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """A TCP proxy to the server that cuts every connection once, 1.5 s
    after the first one opened: the bots see a dropped connection (1006)."""
    host, port = server_url.removeprefix("ws://").rsplit(":", 1)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    streams: list[trio.abc.Stream] = []
    cut = trio.Event()

    async def pipe(src, dst) -> None:
        try:
            while data := await src.receive_some(65536):
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def handle(client) -> None:
        async with client, await trio.open_tcp_stream(host, int(port)) as upstream:
            first_wave = not cut.is_set()
            if first_wave:
                streams.append(client)
            async with trio.open_nursery() as n:
                n.start_soon(pipe, client, upstream)
                n.start_soon(pipe, upstream, client)
                if first_wave:
                    await cut.wait()
                    n.cancel_scope.cancel()

    async def cutter() -> None:
        while not streams:
            await trio.sleep(0.05)
        await trio.sleep(1.5)
        cut.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cutter)
        nursery.start_soon(partial(trio.serve_listeners, handle, listeners))
        task_status.started(f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}")


async def test_bots_that_never_get_in_are_errors(tmp_path):
    # A port nobody listens on: every connect is refused until the bots' time is up.
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, report, output = await loadtest(
        "--url", f"ws://127.0.0.1:{port}", "--rooms", "1", "--bots-per-room", "2", "--duration", "1.5",
        "--processes", "1", "--fail-on", "errors=0",
        report_dir=tmp_path,
    )  # fmt: skip
    assert code == 1, output
    assert report["connected"] == 0 and report["bots"] == 2
    assert report["errors"]["never_connected"] == 2
    assert report["errors"]["connect_ConnectionRefusedError"] >= 2
    assert report["rtt_ms"]["p50"] is None


async def test_control_api_path_against_the_real_control_api(tmp_path):
    # The matchmaker path end to end: the real control API allocates rooms
    # and signs tickets, the real server verifies them, /metrics feeds the
    # report's server figures.
    with running_server("--api-key", "qa-key", "--ticket-secret", "qa-ticket-secret") as proc:
        assert proc.control_url
        code, report, output = await loadtest(
            "--control", proc.control_url, "--api-key", "qa-key", "--rooms", "2", "--bots-per-room", "2",
            "--duration", "2", "--ramp-up", "0.2", "--processes", "1", "--fail-on", "errors=0",
            report_dir=tmp_path,
        )  # fmt: skip
    assert code == 0, output
    assert report["connected"] == 4 and report["errors"] == {}, report["errors"]
    assert report["server"] is not None and report["server"]["ticks"] > 0
    assert report["server"]["tick_p99_ms"] > 0
