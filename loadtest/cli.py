"""The load tester: headless bots against a node (--url), or through the
control API as a matchmaker would (--control). ``tickroom loadtest`` and
``python -m tickroom.loadtest`` run it; it needs the ``loadtest`` extra
(pip install 'tickroom[loadtest]': rich for its output, matplotlib for --plot).

    python -m tickroom.loadtest --url ws://127.0.0.1:7350 --rooms 10 --bots-per-room 10 --duration 60 \\
        --report report.json --plot report.png --fail-on "rtt_p99_ms=100,errors=0"

Exit codes: 0 the run finished and every --fail-on threshold holds; 1 a
threshold is broken, or the server refused the bots' messages (an error or
a close 4000-4002, whatever --fail-on says); 2 bad flags or the control API
refused.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import secrets
import sys
import time
from typing import Any

from tickroom.loadtest.bots import Target
from tickroom.loadtest.matchmaker import ControlError, allocate, fetch_metrics, server_figures
from tickroom.loadtest.plot import write_plot
from tickroom.loadtest.report import FAIL_ON_HELP, bad_input, build, check, parse_fail_on, summary_table
from tickroom.loadtest.scenarios import SCENARIOS, schedule
from tickroom.loadtest.stats import Totals
from tickroom.loadtest.workers import run_workers
from tickroom.percentiles import percentiles
from tickroom.protocol import messages as m

MAX_BOTS = 100_000  # a bound on one run, whatever the flags
EXTRA_HINT = "pip install 'tickroom[loadtest]'"
# The summary paragraph of the docstring (--help's description); the rest
# (an example, the exit codes) is --help's epilog.
_SUMMARY, _, _DETAILS = (__doc__ or "").partition("\n\n")


def build_parser(prog: str = "python -m tickroom.loadtest") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=_SUMMARY.replace("``", ""),
        epilog=_DETAILS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", default="ws://127.0.0.1:7350", help="WebSocket URL of a node or load balancer (ignored with --control)"
    )
    parser.add_argument(
        "--control", help="control API base URL: rooms and tickets come from it, server figures from its /metrics"
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("TICKROOM_API_KEY"), help="control API key [env TICKROOM_API_KEY]"
    )
    parser.add_argument("--rooms", type=int, default=10, help="rooms (default 10)")
    parser.add_argument("--bots-per-room", type=int, default=10, help="bots in each room at once (default 10)")
    parser.add_argument(
        "--duration",
        type=float,
        default=30.0,
        help="seconds from the start to the end of the run, ramp-up included (default 30)",
    )
    parser.add_argument(
        "--ramp-up", type=float, default=5.0, help="seconds over which the bots join (steady, churn; default 5)"
    )
    parser.add_argument(
        "--input-rate",
        type=float,
        default=None,
        help="inputs per second per bot (default: the room's tick rate from the welcome)",
    )
    parser.add_argument(
        "--processes", type=int, default=None, help="worker processes for the bots (default: the cores available)"
    )
    parser.add_argument(
        "--scenario", choices=SCENARIOS, default="steady", help="steady, churn or burst (default steady)"
    )
    parser.add_argument("--report", metavar="FILE.json", help="write the JSON report here")
    parser.add_argument(
        "--plot", metavar="FILE.png", help="write a PNG of RTT, snapshot rate and connected bots over time"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the schedule and the bots' inputs (default 1)")
    parser.add_argument("--fail-on", default="", metavar="THRESHOLDS", help=FAIL_ON_HELP)
    parser.add_argument("--game", default="arena", help="game of the rooms allocated through --control (default arena)")
    parser.add_argument("--no-progress", action="store_true", help="no live progress display")
    parser.add_argument(
        "--bot-kind",
        choices=("client", "raw"),
        default="client",
        help="client: the full Python client per bot (applies every delta, ~0.6 ms CPU per snapshot); "
        "raw: cheap protocol bots on one epoll loop per process (~30-40 us per snapshot, one input per snapshot, ws:// only) "
        "(default client)",
    )
    parser.add_argument(
        "--protocol",
        type=int,
        choices=m.SUPPORTED_VERSIONS,
        default=m.PROTOCOL_VERSION,
        help=f"wire protocol version the bots speak: 1 (deprecated) for servers older than version 2 "
        f"(default {m.PROTOCOL_VERSION})",
    )
    return parser


def main(argv: list[str] | None = None, *, prog: str = "python -m tickroom.loadtest") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        thresholds = parse_fail_on(args.fail_on)
    except ValueError as exc:
        parser.error(str(exc))
    if args.rooms < 1 or args.bots_per_room < 1 or args.duration <= 0 or args.ramp_up < 0:
        parser.error("--rooms and --bots-per-room must be >= 1, --duration > 0, --ramp-up >= 0")
    if args.input_rate is not None and not 0 < args.input_rate <= 1000:
        parser.error("--input-rate must be in (0, 1000]")
    if args.bot_kind == "raw" and args.input_rate is not None:
        parser.error("--input-rate does not apply to --bot-kind raw: raw bots send one input per snapshot")
    if args.bot_kind == "raw" and not args.control and not args.url.startswith("ws://"):
        parser.error("--bot-kind raw needs a ws:// URL (no TLS)")
    specs = schedule(
        args.scenario,
        rooms=args.rooms,
        bots_per_room=args.bots_per_room,
        duration=args.duration,
        ramp_up=args.ramp_up,
        seed=args.seed,
    )
    if len(specs) > MAX_BOTS:
        parser.error(f"{len(specs)} bots: more than {MAX_BOTS} in one run")
    processes = args.processes or len(os.sched_getaffinity(0))
    missing = missing_modules(["rich"] + (["matplotlib"] if args.plot else []))
    if missing:
        # Before the run, not after it: a long run must not end without its plot.
        print(f"{parser.prog}: needs {' and '.join(missing)}, the load tester's extra: {EXTRA_HINT}", file=sys.stderr)
        return 2

    # rich is optional (the loadtest extra): a plain install serves games
    # without it, so it is imported only once a run is sure to need it.
    from rich.console import Console

    console = Console(stderr=True)
    before = None
    if args.control:
        try:
            targets = _targets_from_control(args, specs, allocate)
            before = fetch_metrics(args.control, args.api_key)
        except ControlError as exc:
            console.print(f"[red]control API: {exc}[/red]")
            return 2
    else:
        # A nonce keeps two runs with the same seed out of each other's rooms.
        nonce = secrets.token_hex(3)
        targets = {
            s.index: Target(args.url, f"load-{args.seed}-{nonce}-{s.room}", protocol=args.protocol) for s in specs
        }
    if args.bot_kind == "raw" and any(not t.url.startswith("ws://") for t in targets.values()):
        console.print("[red]--bot-kind raw needs ws:// game URLs; the control API gave others[/red]")
        return 2

    started = time.time()
    with _Progress(console, len(specs), enabled=not args.no_progress) as progress:
        totals, failures, t0_unix = run_workers(
            [(s, targets[s.index]) for s in specs],
            processes=processes,
            duration=args.duration,
            input_rate=args.input_rate,
            on_delta=progress.update,
            bot_kind=args.bot_kind,
        )
    server = None
    if args.control:
        try:
            server = server_figures_after(args, before)
        except Exception as exc:  # noqa: BLE001 - the run's figures still count
            failures.append(f"/metrics: {exc}")
    meta = {
        "scenario": args.scenario,
        "bot_kind": args.bot_kind,
        "seed": args.seed,
        "rooms": args.rooms,
        "bots_per_room": args.bots_per_room,
        "duration_s": args.duration,
        "ramp_up_s": args.ramp_up,
        "input_rate_hz": args.input_rate,
        "processes": min(processes, len(specs)),
        "target": args.control or args.url,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "t0_unix": round(t0_unix, 3),  # the schedule's time zero; series "t" counts from it
    }
    report = build(totals, meta=meta, bots=len(specs), duration=args.duration, server=server, failures=failures)
    for failure in failures:
        console.print(f"[red]{failure}[/red]")
    Console().print(summary_table(report))
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    if args.plot:
        write_plot(report, args.plot)
    # Bad input is the load tester's own failure: never a passing run.
    broken = bad_input(report) + check(report, thresholds)
    for line in broken:
        console.print(f"[red]FAIL[/red] {line}")
    return 1 if broken else 0


def _targets_from_control(args, specs, allocate) -> dict[int, Target]:
    by_room: dict[int, list[str]] = {}
    for s in specs:
        by_room.setdefault(s.room, []).append(s.name)
    targets: dict[int, Target] = {}
    rooms = {}
    for room, players in sorted(by_room.items()):
        rooms[room] = allocate(args.control, args.api_key, players=players, game=args.game, ttl_s=args.duration + 60)
    for s in specs:
        got = rooms[s.room]
        # The room id goes with the ticket: a node that verifies tickets
        # checks they match; one that does not yet still seats the bot there.
        targets[s.index] = Target(got.ws_url, got.room_id, got.tickets[s.name], protocol=args.protocol)
    return targets


def missing_modules(names: list[str]) -> list[str]:
    """The optional modules among ``names`` that are not installed."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def server_figures_after(args, before: str | None) -> dict:
    return server_figures(before, fetch_metrics(args.control, args.api_key))


class _Progress:
    """Live progress on stderr: bots connected, inputs/s, snapshots/s, RTT
    p99 of the last 5 s, errors. Off (one line every 5 s instead) when
    stderr is not a terminal, so CI logs stay readable."""

    def __init__(self, console, bots: int, *, enabled: bool) -> None:
        self.console = console
        self.bots = bots
        self.live: Any = None  # a rich Live while it shows
        self.enabled = enabled
        self.last_line = 0.0
        self.last: tuple[float, int, int] = (0.0, 0, 0)
        self.rates = (0.0, 0.0)

    def __enter__(self) -> _Progress:
        if self.enabled and self.console.is_terminal:
            from rich.live import Live  # optional (the loadtest extra), as in main()

            self.live = Live(self._render_text("starting workers..."), console=self.console, refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, totals: Totals, elapsed: float) -> None:
        t, inputs, snaps = self.last
        if elapsed - t >= 1.0:
            dt = elapsed - t
            self.rates = ((totals.counts["inputs"] - inputs) / dt, (totals.counts["snapshots"] - snaps) / dt)
            self.last = (elapsed, totals.counts["inputs"], totals.counts["snapshots"])
        (p99,) = percentiles(totals.recent_rtt(5), (99,))
        line = (
            f"{elapsed:5.0f} s  bots {totals.connected}/{self.bots}  inputs/s {self.rates[0]:,.0f}  "
            f"snapshots/s {self.rates[1]:,.0f}  RTT p99 {'-' if math.isnan(p99) else f'{p99:.0f} ms'}  "
            f"errors {sum(totals.errors.values())}  reconnects {totals.counts['reconnects']}"
        )
        if self.live is not None:
            self.live.update(self._render_text(line))
        elif self.enabled and elapsed - self.last_line >= 5.0:
            self.last_line = elapsed
            print(line, file=sys.stderr, flush=True)

    @staticmethod
    def _render_text(line: str) -> Any:
        from rich.text import Text  # optional (the loadtest extra), as in main()

        return Text(line)
