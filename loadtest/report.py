"""The JSON report, the --fail-on thresholds and the summary table."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from tickroom.loadtest.stats import Totals
from tickroom.percentiles import percentiles

REPORT_VERSION = 1
# A seated player under this many snapshots/s (at 20 Hz) is one the server
# let down; an overloaded node must keep it at 0 (docs/benchmarks.md, "Overload").
SEATED_RATE_FLOOR = 18


def build(totals: Totals, *, meta: dict, bots: int, duration: float, server: dict | None, failures: list[str]) -> dict:
    """The report: every figure the issue lists, plus a per-second series.

    Rates per bot-second are over the time bots were connected (summed
    over bots), so ramp-up, churn and reconnects do not dilute them."""
    rtt = totals.rtt()
    gaps = totals.intervals()
    r50, r95, r99 = percentiles(rtt, (50, 95, 99))
    g50, g99 = percentiles(gaps, (50, 99))
    joins = totals.joins()
    j50, j99 = percentiles(joins, (50, 99))
    refusal_ms = totals.refusal_times()
    f50, f99 = percentiles(refusal_ms, (50, 99))
    seated = totals.seated_rates()
    counts = totals.counts
    per_bot_s = max(counts["connected_ms"] / 1e3, 1e-9)
    connect_at = sorted(totals.connect_at)
    return {
        "version": REPORT_VERSION,
        **meta,
        "bots": bots,
        "connected": counts["ever_connected"],
        "errors": dict(sorted(totals.errors.items())),
        "errors_total": sum(totals.errors.values()),
        "rtt_ms": {
            "p50": _ms(r50),
            "p95": _ms(r95),
            "p99": _ms(r99),
            "max": _ms(float(rtt.max()) if rtt.size else math.nan),
        },
        "rtt_samples": int(rtt.size),
        "snapshot_interval_ms": {
            "p50": _ms(g50),
            "p99": _ms(g99),
            "max": _ms(float(gaps.max()) if gaps.size else math.nan),
        },
        "max_gap_ms": _ms(totals.max_gap_ms),
        "join_ms": {"p50": _ms(j50), "p99": _ms(j99), "max": _ms(float(joins.max()) if joins.size else math.nan)},
        # Joins refused by the server (4203: over capacity), by close code,
        # and the time from the TCP connect to the code.
        "refusals": {str(code): n for code, n in sorted(totals.refusals.items())},
        "refusals_total": sum(totals.refusals.values()),
        "refusal_ms": {
            "p50": _ms(f50),
            "p99": _ms(f99),
            "max": _ms(float(refusal_ms.max()) if refusal_ms.size else math.nan),
        },
        # Seated connections (raw bots): each one's lowest snapshots/s over
        # its windows; how many fell under SEATED_RATE_FLOOR.
        "seated": {
            "connections": int(seated.size),
            "rate_min": round(float(seated.min()), 2) if seated.size else None,
            "below_18": int((seated < SEATED_RATE_FLOOR).sum()),
        },
        "bot_seconds": round(counts["connected_ms"] / 1e3, 1),
        "inputs": counts["inputs"],
        "snapshots": counts["snapshots"],
        "inputs_per_bot_s": round(counts["inputs"] / per_bot_s, 2),
        "snapshots_per_bot_s": round(counts["snapshots"] / per_bot_s, 2),
        "bytes_in_per_bot_s": round(counts["bytes_in"] / per_bot_s, 1),
        "bytes_out_per_bot_s": round(counts["bytes_out"] / per_bot_s, 1),
        "joins": counts["joins"],
        "leaves": counts["leaves"],
        "reconnects": counts["reconnects"],
        "redirects": counts["redirects"],
        "desyncs": counts["desyncs"],
        # The load generator's own cost (its worker processes' CPU time), to
        # tell a server limit from a load-generator limit.
        "worker_cpu_s": round(counts["cpu_ms"] / 1e3, 2),
        "worker_cpu_us_per_snapshot": round(counts["cpu_ms"] * 1e3 / counts["snapshots"], 1)
        if counts["snapshots"]
        else None,
        "connect_spread_s": round(connect_at[-1] - connect_at[0], 3) if connect_at else None,
        "server": server,
        "worker_failures": failures,
        "series": totals.series(),
    }


def _ms(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 2)


# --fail-on: name -> (where in the report, which way is good). "max": the
# value must be <= the threshold; "min": >=.
METRICS: dict[str, tuple[tuple[str, ...], str]] = {
    "rtt_p50_ms": (("rtt_ms", "p50"), "max"),
    "rtt_p95_ms": (("rtt_ms", "p95"), "max"),
    "rtt_p99_ms": (("rtt_ms", "p99"), "max"),
    "rtt_max_ms": (("rtt_ms", "max"), "max"),
    "snapshot_interval_p50_ms": (("snapshot_interval_ms", "p50"), "max"),
    "snapshot_interval_p99_ms": (("snapshot_interval_ms", "p99"), "max"),
    "snapshot_interval_max_ms": (("snapshot_interval_ms", "max"), "max"),
    "max_gap_ms": (("max_gap_ms",), "max"),
    "join_p99_ms": (("join_ms", "p99"), "max"),
    "refusal_max_ms": (("refusal_ms", "max"), "max"),
    "seated_below_18": (("seated", "below_18"), "max"),
    "errors": (("errors_total",), "max"),
    "desyncs": (("desyncs",), "max"),
    "reconnects": (("reconnects",), "max"),
    "bytes_in_per_bot_s": (("bytes_in_per_bot_s",), "max"),
    "bytes_out_per_bot_s": (("bytes_out_per_bot_s",), "max"),
    "connected": (("connected",), "min"),
    "connected_ratio": (("connected_ratio",), "min"),
    "snapshots_per_bot_s": (("snapshots_per_bot_s",), "min"),
    "server_tick_p50_ms": (("server", "tick_p50_ms"), "max"),
    "server_tick_p99_ms": (("server", "tick_p99_ms"), "max"),
    "server_overruns": (("server", "overruns"), "max"),
}
FAIL_ON_HELP = (
    "comma-separated thresholds, e.g. 'rtt_p99_ms=100,errors=0'; the run exits 1 when one is not met. "
    "NAME=V means at most V, except connected, connected_ratio and snapshots_per_bot_s (at least V); "
    "NAME<=V and NAME>=V say it explicitly. Names: " + ", ".join(METRICS)
)
_TERM = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=|=)\s*([-+0-9.eE]+)\s*$")


# Close and error codes that mean the bots sent something the server refused
# (docs/protocol.md, section 8: 4000 BAD_MESSAGE, 4001 INVALID_MESSAGE, 4002
# MESSAGE_TOO_BIG). The bots build their inputs from the welcome, so one of
# these is the load tester's own failure: the run fails whatever --fail-on says.
BAD_INPUT_CODES = (4000, 4001, 4002)
_BAD_INPUT_KINDS = frozenset(f"{prefix}_{code}" for code in BAD_INPUT_CODES for prefix in ("closed", "server_error"))


def bad_input(report: dict) -> list[str]:
    """One sentence when the server refused any of the bots' messages
    (BAD_INPUT_CODES, as an error or a close), else nothing."""
    refused = {kind: n for kind, n in report["errors"].items() if kind in _BAD_INPUT_KINDS}
    if not refused:
        return []
    counts = ", ".join(f"{kind}={n}" for kind, n in sorted(refused.items()))
    return [f"the server refused the bots' messages ({counts}): their inputs do not fit the game"]


@dataclass(frozen=True)
class Threshold:
    name: str
    op: str  # "<=" or ">="
    limit: float


def parse_fail_on(text: str) -> list[Threshold]:
    """Raises ValueError naming the bad term."""
    out = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        found = _TERM.match(term)
        if not found or found.group(1) not in METRICS:
            raise ValueError(f"bad --fail-on term {term!r}; known metrics: {', '.join(METRICS)}")
        name, op, value = found.groups()
        if op == "=":
            op = "<=" if METRICS[name][1] == "max" else ">="
        out.append(Threshold(name, op, float(value)))
    return out


def metric(report: dict, name: str) -> float | None:
    if name == "connected_ratio":
        return report["connected"] / report["bots"] if report["bots"] else None
    value: Any = report
    for key in METRICS[name][0]:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def check(report: dict, thresholds: list[Threshold]) -> list[str]:
    """The thresholds not met, as sentences; a metric without a value (no
    samples, no --control for server figures) fails: it proves nothing."""
    broken = []
    for th in thresholds:
        value = metric(report, th.name)
        if value is None:
            broken.append(
                f"{th.name}: no value (needs samples{', --control' if th.name.startswith('server_') else ''})"
            )
        elif not (value <= th.limit if th.op == "<=" else value >= th.limit):
            broken.append(f"{th.name} = {value} (wanted {th.op} {th.limit:g})")
    return broken


def summary_table(report: dict):
    """A rich Table of the headline figures."""
    from rich.table import Table

    table = Table(title=f"tickroom load test: {report['scenario']}, {report['bots']} bots, {report['duration_s']} s")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rtt, gaps = report["rtt_ms"], report["snapshot_interval_ms"]
    rows = [
        ("bots connected", f"{report['connected']} / {report['bots']}"),
        ("RTT p50 / p95 / p99 / max (ms)", " / ".join(_fmt(rtt[k]) for k in ("p50", "p95", "p99", "max"))),
        ("snapshot interval p50 / p99 / max (ms)", " / ".join(_fmt(gaps[k]) for k in ("p50", "p99", "max"))),
        ("longest gap without a snapshot (ms)", _fmt(report["max_gap_ms"])),
        ("join p50 / p99 / max (ms)", " / ".join(_fmt(report["join_ms"][k]) for k in ("p50", "p99", "max"))),
        ("snapshots / inputs per bot-second", f"{report['snapshots_per_bot_s']} / {report['inputs_per_bot_s']}"),
        (
            "bytes in / out per bot-second",
            f"{report['bytes_in_per_bot_s']:,.0f} / {report['bytes_out_per_bot_s']:,.0f}",
        ),
        (
            "joins / leaves / reconnects / redirects",
            f"{report['joins']} / {report['leaves']} / {report['reconnects']} / {report['redirects']}",
        ),
        ("desyncs", str(report["desyncs"])),
        (
            "refused joins by code; p50 / p99 / max to the code (ms)",
            f"{report['refusals'] or 0}; " + " / ".join(_fmt(report["refusal_ms"][k]) for k in ("p50", "p99", "max")),
        ),
        (
            "seated connections; lowest snapshots/s; below 18",
            f"{report['seated']['connections']}; {_fmt(report['seated']['rate_min'])}; {report['seated']['below_18']}",
        ),
        ("worker CPU per snapshot (us)", _fmt(report.get("worker_cpu_us_per_snapshot"))),
        ("errors", ", ".join(f"{k}={v}" for k, v in report["errors"].items()) or "0"),
    ]
    if report.get("server"):
        s = report["server"]
        rows.append(
            (
                "server tick p50 / p99 (ms), overruns",
                f"{_fmt(s['tick_p50_ms'])} / {_fmt(s['tick_p99_ms'])}, {s['overruns']}",
            )
        )
    for row in rows:
        table.add_row(*row)
    return table


def _fmt(value) -> str:
    return "-" if value is None else f"{value:,.1f}"
