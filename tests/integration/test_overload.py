"""Graceful overload against a real ``tickroom serve`` process: a burst of
joins far above the node's capacity is refused with 4203 within a second,
the players already seated keep >= 18 snapshots/s meanwhile, the control
API answers allocations with 503 and Retry-After, a seated player's rejoin
still gets in, and /metrics and /readyz show the state.

Capacity comes from ``--max-node-players`` alone here (measuring off:
``--capacity-cpu 0 --capacity-tick-lag 0``), small enough that the test
itself does not saturate a loaded 2-core machine, and not moved by what
other processes take from it; the production default, the capacity measured
from CPU and tick lag, is tests/server/test_load_governor.py's.
The seated players and the burst are raw bots (loadtest/rawbots.py) in their
own processes, which report each seated connection's lowest snapshots/s over
2-second windows and each refusal's code and latency. A seated player under
18/s fails the test, unless the server's ticks already overran in a control
second before the burst (the shared machine took its CPU away, whatever the
burst does): only then is the run repeated, at most three times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.processes import wait_for
from tests.rawws import OP_BINARY, RawWebSocket, frame
from tickroom.protocol import messages as m
from tickroom.protocol.errors import OVERLOAD_RETRY_AFTER_S

from .harness import REPO, running_server

pytestmark = pytest.mark.integration

SEATED_ROOMS, PER_ROOM = 2, 10  # the seated bots
CAPACITY = SEATED_ROOMS * PER_ROOM + 1  # and the test's own player
BURST = 100  # joins at once: ~5x the capacity
# The seated bots' run: their joins, then the burst at once; short, so that
# their rate windows cover the burst and little else (a neighbour taking the
# machine away for a second shows as a dip wherever it falls).
SEATED_S = 10.0
CONTROL_S = 1.0  # before the burst: did the server's ticks overrun without it?
ATTEMPTS = 3  # runs when the machine starved the server before the burst
RUN_TIMEOUT_S = 90


def loadtest(url: str, report: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tickroom.loadtest", "--url", url, "--bot-kind", "raw", "--processes", "1",
         "--no-progress", "--report", str(report), *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finished(proc: subprocess.Popen, report: Path) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert report.exists(), out
    return json.loads(report.read_text())


def load_state(control_url: str) -> dict[str, Any]:
    answer = httpx.get(f"{control_url}/readyz", timeout=10)
    assert answer.status_code == 200, answer.text  # over capacity the node stays ready: it serves its players
    return answer.json()["load"]


def metric(control_url: str, line_start: str) -> float:
    for line in httpx.get(f"{control_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {line_start} in /metrics")


async def test_a_burst_far_above_capacity_is_refused_fast_and_the_seated_keep_their_rate(tmp_path):
    for attempt in range(ATTEMPTS):
        refused, seated, starved = await overload_once(tmp_path / f"attempt-{attempt}")
        print(f"overload: {BURST} refused, to the code {refused['refusal_ms']} ms; seated {seated}; starved {starved}")
        if seated["below_18"] == 0:
            break
        # A seated player under 18/s is the burst's doing, unless the machine
        # took the server's CPU away regardless: its ticks overran in the
        # control second before the burst (a neighbour's test suite). Only
        # then is the run repeated.
        assert starved, seated
    else:
        raise AssertionError(f"the machine starved the server before the burst in all {ATTEMPTS} attempts")


async def overload_once(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """One server, its seated bots and the burst; every assertion but the
    seated rate. Returns the burst's report, the seated bots' rates, and
    whether the server's ticks overran in the second before the burst."""
    tmp_path.mkdir()
    with running_server(
        "--tick-rate", "20", "--max-players", str(PER_ROOM), "--max-node-players", str(CAPACITY),
        "--capacity-cpu", "0", "--capacity-tick-lag", "0", "--ack-timeout", "30", "--rejoin-grace", "30",
        "--stats-interval", "1",
    ) as server:  # fmt: skip
        port = int(server.url.rsplit(":", 1)[1])
        # The test's own player first: it rejoins later, while the node is full.
        own = await RawWebSocket.connect("127.0.0.1", port)
        await own.join(room="overload-own", name="own")

        seated = loadtest(server.url, tmp_path / "seated.json", "--rooms", str(SEATED_ROOMS), "--bots-per-room",
                          str(PER_ROOM), "--duration", str(SEATED_S), "--ramp-up", "1")  # fmt: skip
        try:
            await trio.to_thread.run_sync(
                lambda: wait_for(
                    lambda: load_state(server.control_url)["players"] == CAPACITY, "the bots to be seated", 30
                )
            )
            state = load_state(server.control_url)
            assert state["accepting"] is False and state["reason"] == "player_cap" and state["capacity"] == CAPACITY
            assert metric(server.control_url, "tickroom_accepting_players ") == 0
            # What the node may use and what it waited for are read from the kernel (no step, so none held).
            assert 0 < state["cpu_allowance"] <= 1 and state["cpu_wait"] >= 0 and state["held"] == 0
            allowance = metric(server.control_url, "tickroom_cpu_allowance_cores ")
            assert allowance == pytest.approx(state["cpu_allowance"], abs=1e-3)
            assert metric(server.control_url, "tickroom_cpu_wait_ratio ") >= 0
            overruns = metric(server.control_url, "tickroom_tick_overruns_total ")
            await trio.sleep(CONTROL_S)
            starved = metric(server.control_url, "tickroom_tick_overruns_total ") > overruns

            # The burst, at once: every one refused with 4203, each within a second.
            burst = loadtest(server.url, tmp_path / "burst.json", "--scenario", "burst", "--rooms", str(BURST),
                             "--bots-per-room", "1", "--duration", "2")  # fmt: skip

            # Meanwhile the control API makes no new room ...
            async with httpx.AsyncClient(timeout=10) as api:
                answer = await api.post(f"{server.control_url}/v1/rooms", json={})
            assert answer.status_code == 503, answer.text
            assert answer.json()["reason"] == "over_capacity"
            assert answer.headers["retry-after"] == str(OVERLOAD_RETRY_AFTER_S)
            # ... and a seated player's rejoin (its connection dropped) is not refused.
            session = own.session
            await own.aclose()
            back = await RawWebSocket.connect("127.0.0.1", port)
            back.session = session
            await back.send(frame(OP_BINARY, session.rejoin()))
            with trio.fail_after(10):
                while not any(isinstance(msg, m.Welcome) for msg in back.messages):
                    assert back.close_code is None, back.messages
                    await back.read_some()

            refused = await trio.to_thread.run_sync(finished, burst, tmp_path / "burst.json")
            assert seated.poll() is None, "the seated bots ended before the burst did: raise SEATED_S"
            assert refused["connected"] == 0
            assert refused["refusals"] == {"4203": BURST}, refused["errors"]
            assert refused["refusal_ms"]["max"] < 1000, refused["refusal_ms"]
            assert metric(server.control_url, 'tickroom_connections_refused_total{code="SERVER_OVERLOADED"}') == BURST
            assert metric(server.control_url, 'tickroom_joins_refused_overload_total{reason="player_cap"}') == BURST

            report = await trio.to_thread.run_sync(finished, seated, tmp_path / "seated.json")
        finally:
            if seated.poll() is None:
                seated.kill()
                seated.communicate()
        await back.aclose()
    # Every seated bot stayed seated to its end; its rates over 2-second
    # windows (the burst included) are the caller's to judge.
    assert report["connected"] == SEATED_ROOMS * PER_ROOM and report["errors"] == {}, report["errors"]
    assert report["seated"]["connections"] == SEATED_ROOMS * PER_ROOM
    return refused, report["seated"], starved
