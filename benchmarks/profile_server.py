"""Where a server's CPU goes, per player per tick, under the load tester.

Starts ``python -m tickroom.server serve`` on 127.0.0.1, plays ROOMS x 10 raw bots
against it (``python -m tickroom.loadtest --bot-kind raw``, in its own process), and
while they play samples the server with py-spy (``pip install py-spy``; it
reads the process from outside, so the server runs unmodified). The samples
are sorted into the parts of the hot path by the innermost frame that names
one (numpy's and the kernel's time counts for the caller that asked for it),
and scaled by the server's CPU time from /proc over the same window, divided
by the player-ticks played in it: microseconds of server CPU per player per
tick, by part.

    python benchmarks/profile_server.py --rooms 50 --duration 30     # 500 CCU
    python benchmarks/profile_server.py --rooms 100 --duration 30    # 1,000 CCU

With --server-repo the server comes from another checkout (before/after).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess  # nosec B404 - our own server, load tester and py-spy
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tickroom.loadtest.bench import REPO, cpu_seconds, wait_listening

TICK_RATE = 20

# (part, pattern on "function (file)"), first match from the innermost frame
# outwards wins; order matters where a caller and a callee both match.
PARTS = [
    ("send: socket.send", r"^Outbox\._(write|flush_pending) "),
    ("read: socket.recv", r"^ServerWebSocket\.(receive_available|_recv) "),
    ("read: WebSocket frame parsing", r"wsframes\.py|wsproto/|^ServerWebSocket\.(_parse|receive_message) "),
    # Version 2's input rows: the session's length check, the room's batch.
    ("read: msgpack decode + validation", r"protocol/(codec|validate|session|input_rows)\.py|<string>"),
    ("delta encode (once per room per tick)",
     r"^(encode_delta|_id_bytes|WorldState\._rows|_row_keys|_rows_differ|pack_snapshot_shared"
     r"|SnapshotHistory\.(shared_payload|_events_after)) "),
    ("view + snapshot ring", r"build_view|^Arena\.view |^WorldState\.from_view |^SnapshotHistory\.record "),
    ("simulation step + inputs", r"simulation/"),
    ("send: framing + outbox", r"binary_frame|finish_snapshot|Outbox\.|Connection\.offer "),
    ("room + connection bookkeeping", r"server/(room|players|input_batch|input_rows_batch|connection|snapshots)\.py"),
    ("trio scheduler, timers", r"trio/|outcome/"),
]  # fmt: skip
# Helpers that serve several parts (numpy wrappers, delta.py's _count and
# _frozen, ...) match none: their time goes to the caller that matches.
_COMPILED = [(part, re.compile(pattern)) for part, pattern in PARTS]
_LOAD_PLAYERS = re.compile(r"load: rooms=\d+ players=(\d+)")


def part_of(stack: list[str]) -> str:
    for frame in reversed(stack):
        for part, pattern in _COMPILED:
            if pattern.search(frame):
                return part
    return "other (accept, handshakes, logging, ...)"


def classify(raw: Path) -> Counter:
    """py-spy's raw output: one "frame;frame;... count" line per stack."""
    parts: Counter = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        # "function (path/to/file.py:line)" -> "function (path/to/file.py)"
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        parts[part_of(frames)] += int(count)
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=50, help="rooms of 10 raw bots (default 50: 500 CCU)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds the bots play, ramp-up included")
    parser.add_argument("--ramp-up", type=float, default=5.0)
    parser.add_argument("--sample", type=float, default=12.0, help="seconds of sampling, after the ramp-up")
    parser.add_argument("--server-repo", type=Path, default=REPO)
    parser.add_argument(
        "--protocol", type=int, default=2, help="the bots' wire version: 1 for a --server-repo older than version 2"
    )
    parser.add_argument("--json", metavar="FILE.json", help="write the figures here too")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        sys.exit("py-spy not found: pip install py-spy")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory(prefix="tickroom-profile-") as tmp:
        log_path, raw = Path(tmp) / "server.log", Path(tmp) / "stacks.txt"
        with open(log_path, "w") as log:
            server = subprocess.Popen(  # noqa: S603  # nosec B603 - fixed argv: our own server
                [sys.executable, "-m", "tickroom.server", "serve", "--host", "127.0.0.1", "--port", "0", "--stats-interval", "2"],
                cwd=args.server_repo, stdout=log, stderr=subprocess.STDOUT,
                # Every bot's room comes from 127.0.0.1: no per-address room quota (an
                # environment variable, so that an older --server-repo still starts).
                env={**env, "PYTHONPATH": str(args.server_repo), "TICKROOM_MAX_ROOMS_PER_ADDRESS": "0"},
            )  # fmt: skip
        try:
            url = wait_listening(server, log_path)
            bots = subprocess.Popen(  # noqa: S603  # nosec B603 - fixed argv: our own load tester
                [sys.executable, "-m", "tickroom.loadtest", "--url", url, "--rooms", str(args.rooms),
                 "--bots-per-room", "10", "--duration", str(args.duration), "--ramp-up", str(args.ramp_up),
                 "--bot-kind", "raw", "--processes", "1", "--no-progress", "--report", str(Path(tmp) / "report.json"),
                 "--protocol", str(args.protocol)],
                cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            # Sample once every bot is in (the server's load line says so),
            # or at the latest 20 s after the ramp-up: a saturated server may
            # never seat them all, and that is a figure too.
            deadline = time.monotonic() + args.ramp_up + 20
            while time.monotonic() < deadline:
                seated = [int(p) for p in _LOAD_PLAYERS.findall(log_path.read_text())]
                if seated and seated[-1] >= args.rooms * 10:
                    break
                time.sleep(0.2)
            cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
            subprocess.run(  # noqa: S603  # nosec B603 - fixed argv: py-spy on our own server
                [py_spy, "record", "--pid", str(server.pid), "--duration", str(int(args.sample)), "--rate", "250",
                 "--format", "raw", "--output", str(raw), "--nonblocking"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
            players = [int(p) for p in _LOAD_PLAYERS.findall(log_path.read_text())]
            bots.wait(timeout=args.duration + 60)
            report = json.loads((Path(tmp) / "report.json").read_text())
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        parts = classify(raw)
    ccu = max(players) if players else 0
    samples = sum(parts.values())
    cpu_per_player_tick_us = (cpu1 - cpu0) / (t1 - t0) / max(ccu, 1) / TICK_RATE * 1e6
    result = {
        "ccu": ccu,
        "server_cores": round((cpu1 - cpu0) / (t1 - t0), 3),
        "server_cpu_ms_per_ccu_s": round((cpu1 - cpu0) / (t1 - t0) / max(ccu, 1) * 1e3, 3),
        "server_cpu_us_per_player_tick": round(cpu_per_player_tick_us, 1),
        "snapshots_per_bot_s": report["snapshots_per_bot_s"],
        "rtt_ms": report["rtt_ms"],
        "samples": samples,
        "us_per_player_tick": {part: round(n / samples * cpu_per_player_tick_us, 1) for part, n in parts.most_common()},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
