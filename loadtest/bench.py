"""``python -m tickroom.loadtest.bench``: the benchmark record. Starts a server
process per run on 127.0.0.1, runs the load tester against it in its own
processes, and writes the figures to docs/benchmarks.md.

    python -m tickroom.loadtest.bench --sizes 10x8,10x10,20x10,40x10 --duration 20 --runs 3 --write docs/benchmarks.md

Per run: a fresh server (so nothing of an earlier run ticks), then
``python -m tickroom.loadtest`` with the size. Figures:

- server CPU per CCU-second: the server process's user+system time
  (/proc/<pid>/stat, sampled every 0.25 s) over the steady window (a second
  after the ramp-up to half a second before the end), divided by the
  bots connected meanwhile times the window's length;
- server peak RSS: VmHWM from /proc/<pid>/status;
- tick p50/p99: the server's own log line (--stats-interval), the last one
  while players were connected: the last 2,048 ticks of every room;
- RTT p50/p99, bytes per player per second, inputs and snapshots per
  bot-second: the load tester's report;
- load generator cores: the CPU time of the load tester and its workers
  (/proc, the process tree) over the same window;
- other processes' cores: the machine's busy time (/proc/stat) less the
  server's and the load generator's, over the same window: on a shared
  machine, what the run competed with.

Sizes run in order; stepping up stops after a size whose median tick p99 is
over --max-tick-p99-ms, or whose bots got less than 90% of their snapshots
(the load generator, on the same cores, is then the limit). Every size runs
--runs times; each figure is reported as its median and (min-max) over the
runs, one JSON line per size gives min/median/max of the headline figures,
and the last line names the largest CCU held: median tick p99 under
--max-tick-p99-ms, at least 90% of the snapshots, every bot connected.

--bot-kind raw (loadtest/rawbots.py) drives the load with cheap protocol
bots, ~30-40 us of CPU per snapshot instead of ~0.6 ms, so that one core
generates 1,500 players and the other is left to the server:

    python -m tickroom.loadtest.bench --bot-kind raw --processes 1 --sizes 50x10,100x10,150x10 --duration 20 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess  # nosec B404 - the bench starts our own server and load tester
import sys
import tempfile
import time
from pathlib import Path

from tickroom.protocol.messages import PROTOCOL_VERSION, SUPPORTED_VERSIONS

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 20.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_PERIOD_S = 0.25
_LISTENING = re.compile(r"listening on ws://[^:]+:(\d+)")
_LOAD = re.compile(r"load: rooms=(\d+) players=(\d+) .*tick_ms_p50=([\d.]+) tick_ms_p99=([\d.]+) overruns=(\d+)")
_PROFILE = re.compile(
    r"us_per_player_tick=read:([\d.]+),simulate:([\d.]+),snapshot:([\d.]+),send:([\d.]+),total:([\d.]+)"
)
BEGIN, END = "<!-- loadtest-bench:begin -->", "<!-- loadtest-bench:end -->"


def markers(section: str | None) -> tuple[str, str]:
    """The markers a table is written between: one pair per --section."""
    if not section:
        return BEGIN, END
    return f"<!-- loadtest-bench:{section}:begin -->", f"<!-- loadtest-bench:{section}:end -->"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def machine_busy_seconds() -> float:
    """CPU time all cores spent busy (not idle or waiting on I/O), from
    /proc/stat: what other processes on a shared machine take shows as the
    busy time that is neither the server's nor the load generator's."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def tree_cpu_seconds(root: int) -> float:
    """CPU time of ``root`` and its descendants alive now (the load tester
    and its worker processes)."""
    parents, cpu = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    total = 0.0
    for pid, seconds in cpu.items():
        p = pid
        while p and p != root:
            p = parents.get(p, 0)
        if p == root:
            total += seconds
    return total


def peak_rss_mb(pid: int) -> float:
    found = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else float("nan")


def one_run(
    rooms: int,
    per_room: int,
    *,
    duration: float,
    ramp_up: float,
    processes: int,
    seed: int,
    bot_kind: str = "client",
    server_repo: Path = REPO,
    server_args: tuple[str, ...] = (),
    scenario: str = "steady",
    protocol: int = PROTOCOL_VERSION,
) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    # The server may come from another checkout (--server-repo: the "before"
    # figures of a change); the load tester is always this one.
    # Every bot comes from 127.0.0.1 and creates its room by name: the
    # per-address room quota (room spam) must not apply. An environment
    # variable, not a flag, so that an older --server-repo still starts.
    server_env = {**env, "PYTHONPATH": str(server_repo), "TICKROOM_MAX_ROOMS_PER_ADDRESS": "0"}
    with tempfile.TemporaryDirectory(prefix="tickroom-bench-") as tmp:
        log_path, report_path = Path(tmp) / "server.log", Path(tmp) / "report.json"
        with open(log_path, "w") as log:
            server = subprocess.Popen(  # noqa: S603  # nosec B603 - fixed argv: our own server
                [sys.executable, "-m", "tickroom.server", "serve", "--host", "127.0.0.1", "--port", "0", "--stats-interval", "2",
                 "--max-players", str(max(16, per_room)), *server_args],
                cwd=server_repo, env=server_env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            url = wait_listening(server, log_path)
            loadtest = subprocess.Popen(  # noqa: S603  # nosec B603 - fixed argv: our own load tester
                [sys.executable, "-m", "tickroom.loadtest", "--url", url, "--rooms", str(rooms), "--bots-per-room", str(per_room),
                 "--duration", str(duration), "--ramp-up", str(ramp_up), "--processes", str(processes), "--seed", str(seed),
                 "--no-progress", "--report", str(report_path), "--bot-kind", bot_kind, "--scenario", scenario,
                 "--protocol", str(protocol)],
                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            samples = []  # (time.time(), server CPU s, load generator CPU s, machine busy s)
            give_up = time.monotonic() + duration + 120
            while loadtest.poll() is None and time.monotonic() < give_up:
                samples.append(
                    (time.time(), cpu_seconds(server.pid), tree_cpu_seconds(loadtest.pid), machine_busy_seconds())
                )
                time.sleep(SAMPLE_PERIOD_S)
            if loadtest.poll() is None:
                loadtest.kill()
            loadtest.wait()
            rss = peak_rss_mb(server.pid)
            time.sleep(2.5)  # one more stats line, in case the run ended between two
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        report = json.loads(report_path.read_text())
        log_text = log_path.read_text()
        lines = [m for m in _LOAD.finditer(log_text) if int(m.group(2)) > 0]
        # The tick profile of the last line with players (servers since this
        # change print it; older ones do not).
        profiles = [
            _PROFILE.search(line) for line in log_text.splitlines() if "load: " in line and " players=0 " not in line
        ]
        profile = next((p for p in reversed(profiles) if p is not None), None)
    # The steady window: from a second after the ramp-up to half a second
    # before the bots leave; every bot is connected (the report's series says
    # how many were), so CPU over it is per CCU-second of play, without
    # process start-up, joins or leaves.
    t0 = report["t0_unix"]
    w0, w1 = t0 + ramp_up + 1.0, t0 + duration - 0.5
    inside = [s for s in samples if w0 <= s[0] <= w1]
    if len(inside) < 2:
        raise RuntimeError(f"no steady window: duration {duration} s is too short for ramp-up {ramp_up} s")
    (ta, sa, la, ma), (tb, sb, lb, mb) = inside[0], inside[-1]
    rows = [r for r in report["series"] if w0 - t0 <= r["t"] <= w1 - t0] or report["series"]
    ccu_now = statistics.mean(r["connected"] for r in rows)
    ccu_s = max(ccu_now * (tb - ta), 1e-9)
    last = lines[-1] if lines else None
    return {
        "ccu": rooms * per_room,
        "connected": report["connected"],
        "errors": report["errors_total"],
        "server_cpu_ms_per_ccu_s": (sb - sa) * 1e3 / ccu_s,
        "server_cores": (sb - sa) / (tb - ta),
        "server_rss_mb": rss,
        "tick_p50_ms": float(last.group(3)) if last else None,
        "tick_p99_ms": float(last.group(4)) if last else None,
        "rtt_p50_ms": report["rtt_ms"]["p50"],
        "rtt_p99_ms": report["rtt_ms"]["p99"],
        "bytes_in_per_bot_s": report["bytes_in_per_bot_s"],
        "bytes_out_per_bot_s": report["bytes_out_per_bot_s"],
        "snapshots_per_bot_s": report["snapshots_per_bot_s"],
        "inputs_per_bot_s": report["inputs_per_bot_s"],
        "loadgen_cpu_ms_per_bot_s": (lb - la) * 1e3 / ccu_s,
        "loadgen_cpu_us_per_snapshot": report.get("worker_cpu_us_per_snapshot"),  # the workers' own clock, whole run
        "loadgen_cores": (lb - la) / (tb - ta),
        "other_cores": max(0.0, (mb - ma) - (sb - sa) - (lb - la)) / (tb - ta),
        # Over capacity (docs/benchmarks.md, "Overload"): the joins refused,
        # how fast each got its code, and the seated bots' lowest rates.
        "refused": report.get("refusals_total", 0),
        "refusal_p99_ms": report.get("refusal_ms", {}).get("p99"),
        "refusal_max_ms": report.get("refusal_ms", {}).get("max"),
        "seated_rate_min": report.get("seated", {}).get("rate_min"),
        "seated_below_18": report.get("seated", {}).get("below_18"),
        **{
            f"tick_us_per_player_{name}": float(profile.group(k + 1)) if profile else None
            for k, name in enumerate(("read", "simulate", "snapshot", "send", "total"))
        },
    }


def wait_listening(server: subprocess.Popen, log_path: Path) -> str:
    """The ws:// URL a server started with --port 0 logged, once it did."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = _LISTENING.search(log_path.read_text(errors="replace"))
        if found:
            return f"ws://127.0.0.1:{found.group(1)}"
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        time.sleep(0.05)
    raise TimeoutError("server did not start")


COLUMNS = [
    ("CCU", "ccu", "{:.0f}"),
    ("server CPU ms per CCU-s", "server_cpu_ms_per_ccu_s", "{:.2f}"),
    ("server cores", "server_cores", "{:.2f}"),
    ("server peak RSS MB", "server_rss_mb", "{:.0f}"),
    ("tick p50 ms", "tick_p50_ms", "{:.2f}"),
    ("tick p99 ms", "tick_p99_ms", "{:.1f}"),
    ("RTT p50 ms", "rtt_p50_ms", "{:.0f}"),
    ("RTT p99 ms", "rtt_p99_ms", "{:.0f}"),
    ("down B per player-s", "bytes_in_per_bot_s", "{:,.0f}"),
    ("up B per player-s", "bytes_out_per_bot_s", "{:,.0f}"),
    ("snapshots per player-s", "snapshots_per_bot_s", "{:.1f}"),
    ("load gen cores", "loadgen_cores", "{:.2f}"),
    ("load gen CPU us per snapshot", "loadgen_cpu_us_per_snapshot", "{:.0f}"),
    ("other processes' cores", "other_cores", "{:.2f}"),
    ("tick us per player: read", "tick_us_per_player_read", "{:.1f}"),
    ("simulate", "tick_us_per_player_simulate", "{:.1f}"),
    ("snapshot", "tick_us_per_player_snapshot", "{:.1f}"),
    ("send", "tick_us_per_player_send", "{:.1f}"),
]


# Shown when a run had joins refused (the node over capacity).
OVERLOAD_COLUMNS = [
    ("refused joins", "refused", "{:.0f}"),
    ("refusal p99 ms", "refusal_p99_ms", "{:.0f}"),
    ("refusal max ms", "refusal_max_ms", "{:.0f}"),
    ("seated: lowest snapshots/s", "seated_rate_min", "{:.1f}"),
    ("seated below 18/s", "seated_below_18", "{:.0f}"),
]


def cell(values: list, fmt: str) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1 or min(values) == max(values):
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


SUMMARY_KEYS = (
    "server_cpu_ms_per_ccu_s", "server_cores", "tick_p50_ms", "tick_p99_ms", "rtt_p50_ms", "rtt_p99_ms",
    "snapshots_per_bot_s", "bytes_in_per_bot_s", "bytes_out_per_bot_s", "loadgen_cores", "loadgen_cpu_us_per_snapshot",
    "tick_us_per_player_read", "tick_us_per_player_simulate", "tick_us_per_player_snapshot", "tick_us_per_player_send",
    "tick_us_per_player_total",
)  # fmt: skip


def spread(runs: list[dict]) -> dict:
    """min/median/max over the runs of each headline figure, plus the
    connected count and the errors (which must be zero) of every run."""
    out: dict = {
        "ccu": runs[0]["ccu"],
        "runs": len(runs),
        "connected": [r["connected"] for r in runs],
        "errors": [r["errors"] for r in runs],
    }
    for key in SUMMARY_KEYS:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = {"min": min(values), "median": statistics.median(values), "max": max(values)} if values else None
    return out


def held(runs: list[dict], max_tick_p99_ms: float, max_rtt_p99_ms: float = 100.0) -> bool:
    """A size is held when its median tick p99 and RTT p99 are under the
    limits, its bots got at least 90% of their snapshots (20 Hz) and every
    bot connected. Tick p99 alone is not enough: a saturated process keeps
    its ticks short and falls behind between them, which RTT shows."""
    ticks = [r["tick_p99_ms"] for r in runs if r["tick_p99_ms"] is not None]
    return (
        bool(ticks)
        and statistics.median(ticks) < max_tick_p99_ms
        and statistics.median(r["rtt_p99_ms"] for r in runs) <= max_rtt_p99_ms
        and statistics.median(r["snapshots_per_bot_s"] for r in runs) >= 18
        and all(r["connected"] == r["ccu"] for r in runs)
    )


def largest_held(results: dict[str, list[dict]], max_tick_p99_ms: float, max_rtt_p99_ms: float = 100.0) -> int | None:
    sizes = [runs[0]["ccu"] for runs in results.values() if held(runs, max_tick_p99_ms, max_rtt_p99_ms)]
    return max(sizes) if sizes else None


def render(
    results: dict[str, list[dict]],
    command: str,
    max_tick_p99_ms: float = 25.0,
    max_rtt_p99_ms: float = 100.0,
    section: str | None = None,
) -> str:
    columns = COLUMNS
    if any(r.get("refused") for runs in results.values() for r in runs):
        columns = COLUMNS + OVERLOAD_COLUMNS
    head = "| size | " + " | ".join(name for name, _, _ in columns) + " | errors |"
    rows = [head, "| --- |" + " ---: |" * (len(columns) + 1)]
    for size, runs in results.items():
        errors = sum(r["errors"] for r in runs)
        connected = f"{min(r['connected'] for r in runs)}/{runs[0]['ccu']}"
        rows.append(
            f"| {size} ({len(runs)} runs, {connected} connected) | "
            + " | ".join(cell([r.get(key) for r in runs], fmt) for _, key, fmt in columns)
            + f" | {errors} |"
        )
    machine = f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), Python {platform.python_version()}, {platform.system()} {platform.machine()}"
    best = largest_held(results, max_tick_p99_ms, max_rtt_p99_ms)
    begin, end = markers(section)
    return "\n".join([
        begin,
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {machine}. Cells: median (min-max) over the runs.",
        "",
        *rows,
        "",
        f"Largest CCU held (median tick p99 < {max_tick_p99_ms:g} ms, median RTT p99 <= {max_rtt_p99_ms:g} ms, "
        f">= 90% of snapshots, all connected): {best if best is not None else 'none'}.",
        end,
    ])  # fmt: skip


def write_section(path: Path, block: str, section: str | None = None) -> None:
    begin, end = markers(section)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Load tester against one server process\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tickroom.loadtest.bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="10x8,10x10,20x10,40x10",
        help="ROOMSxBOTS,... in the order to run (default 10x8,10x10,20x10,40x10)",
    )
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--ramp-up", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3, help="runs per size (min/median/max)")
    parser.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--max-tick-p99-ms", type=float, default=25.0, help="stop stepping up past this tick p99")
    parser.add_argument(
        "--max-rtt-p99-ms", type=float, default=100.0, help="... or past this RTT p99 (default 100: 2 ticks)"
    )
    parser.add_argument(
        "--server-repo", type=Path, default=REPO, help="run the server from this checkout (before/after figures)"
    )
    parser.add_argument("--section", help="write between the markers of this name (several tables in one file)")
    parser.add_argument("--keep-going", action="store_true", help="run every size, even past the limits")
    parser.add_argument("--write", metavar="FILE.md", help="write the table into this file (between the bench markers)")
    parser.add_argument("--json", metavar="FILE.json", help="write every run's figures here")
    parser.add_argument(
        "--bot-kind",
        choices=("client", "raw"),
        default="client",
        help="the load tester's bots (default client; raw: cheap epoll bots)",
    )
    parser.add_argument(
        "--scenario", default="steady", help="the load tester's scenario (steady, churn, burst: all join at once)"
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument of `tickroom serve`, e.g. --server-arg=--capacity-cpu=0 (repeat for more)",
    )
    parser.add_argument(
        "--protocol",
        type=int,
        choices=SUPPORTED_VERSIONS,
        default=PROTOCOL_VERSION,
        help="wire protocol version of the bots: 1 (deprecated) against a --server-repo older than version 2",
    )
    parser.add_argument(
        "--render",
        metavar="FILE.json",
        nargs="+",
        help="run nothing: render (and --write) the table from --json files, sizes in CCU order",
    )
    args = parser.parse_args(argv)
    command = "python -m tickroom.loadtest.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    results: dict[str, list[dict]] = {}
    if args.render:
        for path in args.render:
            results.update(json.loads(Path(path).read_text()))
        results = dict(sorted(results.items(), key=lambda item: item[1][0]["ccu"]))
    for size in [] if args.render else args.sizes.split(","):
        rooms, per_room = (int(x) for x in size.lower().split("x"))
        runs = []
        for i in range(args.runs):
            run = one_run(
                rooms,
                per_room,
                duration=args.duration,
                ramp_up=args.ramp_up,
                processes=args.processes,
                seed=i + 1,
                bot_kind=args.bot_kind,
                server_repo=args.server_repo.resolve(),
                server_args=tuple(args.server_arg),
                scenario=args.scenario,
                protocol=args.protocol,
            )
            print(json.dumps({"size": size, "run": i + 1, **run}), flush=True)
            runs.append(run)
        results[size] = runs
        print(json.dumps({"size": size, "summary": spread(runs)}), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        if not args.keep_going and not held(runs, args.max_tick_p99_ms, args.max_rtt_p99_ms):
            tick = statistics.median([r["tick_p99_ms"] or 0 for r in runs])
            snaps = statistics.median([r["snapshots_per_bot_s"] for r in runs])
            print(f"stopping at {size}: tick p99 {tick} ms, {snaps} snapshots per bot-second", flush=True)
            break
    block = render(results, command, args.max_tick_p99_ms, args.max_rtt_p99_ms, args.section)
    best = largest_held(results, args.max_tick_p99_ms, args.max_rtt_p99_ms)
    print(
        json.dumps(
            {"largest_ccu_held": best, "max_tick_p99_ms": args.max_tick_p99_ms, "max_rtt_p99_ms": args.max_rtt_p99_ms}
        ),
        flush=True,
    )
    print(block)
    if args.write:
        write_section(Path(args.write), block, args.section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
