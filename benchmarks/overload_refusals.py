"""What refusing a join costs a node over capacity (4203), and how fast a
burst of refused clients gets its code.

A real server process held at its cap (``--max-node-players 1`` and one raw
bot seated), then bursts of raw bots that all join at once (the load
tester's ``burst`` scenario, ``--bot-kind raw``, in its own process). Per
burst: the server's CPU time (/proc, user+system) over the burst less what
it spends idle with its one player, divided by the refusals; and the
refusals' latency from the bots' TCP connect to the close code (the load
tester's ``refusal_ms``).

    python benchmarks/overload_refusals.py                        # bursts of 100, 300, 600, 1000; 3 runs each
    python benchmarks/overload_refusals.py --bursts 300 --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess  # nosec B404 - our own server and load tester
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
_LISTENING = re.compile(r"listening on ws://[^:]+:(\d+)")
_CONTROL = re.compile(r"control API listening on (http://\S+)")
DEADLINE_S = 30.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_for(predicate, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(what)


def loadtest(url: str, report: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(  # noqa: S603  # nosec B603 - fixed argv: our own load tester
        [sys.executable, "-m", "tickroom.loadtest", "--url", url, "--bot-kind", "raw", "--processes", "1",
         "--no-progress", "--report", str(report), *args],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", default="100,300,600,1000", help="bots per burst, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bursts = [int(b) for b in args.bursts.split(",")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "TICKROOM_MAX_ROOMS_PER_ADDRESS": "0"}
    seat_s = 30.0 + len(bursts) * args.runs * 8.0
    with tempfile.TemporaryDirectory(prefix="tickroom-overload-") as tmp:
        log_path = Path(tmp) / "server.log"
        with open(log_path, "w") as log:
            server = subprocess.Popen(  # noqa: S603  # nosec B603 - fixed argv: our own server
                [sys.executable, "-m", "tickroom.server", "serve", "--host", "127.0.0.1", "--port", "0",
                 "--control-port", "0", "--max-node-players", "1", "--stats-interval", "0"],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        seated = None
        try:
            port = wait_for(lambda: _LISTENING.search(log_path.read_text()), "the server").group(1)
            control = wait_for(lambda: _CONTROL.search(log_path.read_text()), "the control API").group(1)
            url = f"ws://127.0.0.1:{port}"
            seated = loadtest(url, Path(tmp) / "seated.json", "--rooms", "1", "--bots-per-room", "1",
                              "--duration", str(seat_s), "--ramp-up", "0")  # fmt: skip
            wait_for(lambda: httpx.get(f"{control}/readyz").json()["load"]["accepting"] is False, "the cap")
            time.sleep(1.0)
            t0, c0 = time.monotonic(), cpu_seconds(server.pid)
            time.sleep(2.0)
            idle = (cpu_seconds(server.pid) - c0) / (time.monotonic() - t0)  # one player, no burst
            print(json.dumps({"idle_cores": round(idle, 4)}), flush=True)
            for size in bursts:
                rows = []
                for run in range(args.runs):
                    report_path = Path(tmp) / f"burst-{size}-{run}.json"
                    t0, c0 = time.monotonic(), cpu_seconds(server.pid)
                    loadtest(url, report_path, "--scenario", "burst", "--rooms", str(size), "--bots-per-room", "1",
                             "--duration", "2", "--seed", str(run + 1)).wait(timeout=120)  # fmt: skip
                    spent = cpu_seconds(server.pid) - c0 - idle * (time.monotonic() - t0)
                    report = json.loads(report_path.read_text())
                    refused = report["refusals"].get("4203", 0)
                    row = {
                        "burst": size,
                        "refused_4203": refused,
                        "other_outcomes": report["errors"].get("never_connected", 0) - refused,
                        "server_cpu_ms_per_refusal": round(spent * 1e3 / max(refused, 1), 3),
                        "refusal_ms": report["refusal_ms"],
                    }
                    print(json.dumps(row), flush=True)
                    rows.append(row)
                    time.sleep(1.0)
                print(
                    json.dumps(
                        {
                            "burst": size,
                            "median_cpu_ms_per_refusal": statistics.median(
                                r["server_cpu_ms_per_refusal"] for r in rows
                            ),
                            "median_refusal_max_ms": statistics.median(r["refusal_ms"]["max"] for r in rows),
                            "median_refusal_p50_ms": statistics.median(r["refusal_ms"]["p50"] for r in rows),
                        }
                    ),
                    flush=True,
                )
        finally:
            if seated is not None and seated.poll() is None:
                seated.kill()
                seated.wait()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
