"""Merging workers' figures, the report, --fail-on, /metrics parsing and
the bots' reconnect decisions: all without sockets."""

from array import array
from collections import Counter

import numpy as np
import pytest

from tickroom.client import ClientClosed, Desynced
from tickroom.loadtest.bots import plan_reconnect
from tickroom.loadtest.matchmaker import server_figures
from tickroom.loadtest.report import METRICS, bad_input, build, check, parse_fail_on
from tickroom.loadtest.stats import Delta, Totals
from tickroom.percentiles import percentiles

META = {"scenario": "steady", "seed": 1, "rooms": 1, "bots_per_room": 2, "duration_s": 2.0}


def delta(worker, second, rtt, **kw):
    d = Delta(worker, second, **kw)
    d.rtt_ms = array("f", rtt)
    d.interval_ms = array("f", [50.0] * len(rtt))
    d.join_ms = array("f", [5.0] * d.joins)
    return d


def merged() -> Totals:
    totals = Totals()
    totals.add(
        delta(0, 1, [10, 20, 30], connected=1, inputs=20, snapshots=20, ever_connected=1, joins=1, connected_ms=1000)
    )
    totals.add(delta(1, 1, [40], connected=1, inputs=20, snapshots=20, ever_connected=1, joins=1, connected_ms=1000))
    totals.add(delta(0, 2, [50, 60], connected=0, inputs=20, snapshots=18, leaves=1, connected_ms=1000, bytes_in=2000))
    totals.add(delta(1, 2, [1000], connected=0, inputs=20, snapshots=20, leaves=1, connected_ms=1000, bytes_in=2000))
    # A third worker's bots were all refused (the node over capacity); the
    # two seated bots' lowest rates come with their leaves.
    totals.add(delta(2, 1, [], refusals=Counter({4203: 2}), refusal_ms=array("f", [120.0, 480.0])))
    totals.add(delta(0, 3, [], seated_rate_min=array("f", [19.5])))
    totals.add(delta(1, 3, [], seated_rate_min=array("f", [17.0])))
    return totals


def test_percentiles_are_exact_over_every_workers_samples():
    report = build(merged(), meta=META, bots=2, duration=2.0, server=None, failures=[])
    assert report["rtt_samples"] == 7
    assert report["rtt_ms"] == {"p50": 40.0, "p95": 1000.0, "p99": 1000.0, "max": 1000.0}
    assert report["connected"] == 2 and report["joins"] == 2 and report["leaves"] == 2
    assert report["snapshots_per_bot_s"] == 19.5  # 78 snapshots over 4 bot-seconds
    assert report["bytes_in_per_bot_s"] == 1000.0
    assert report["join_ms"] == {"p50": 5.0, "p99": 5.0, "max": 5.0}
    assert [row["connected"] for row in report["series"]] == [2, 0]
    assert report["series"][0] == {
        "t": 1,
        "connected": 2,
        "inputs_per_s": 40,
        "snapshots_per_s": 40,
        "rtt_p50_ms": 30.0,
        "rtt_p99_ms": 40.0,
    }


def test_refusals_by_code_their_latency_and_the_seated_rates():
    report = build(merged(), meta=META, bots=2, duration=2.0, server=None, failures=[])
    assert report["refusals"] == {"4203": 2} and report["refusals_total"] == 2
    assert report["refusal_ms"]["max"] == 480.0 and report["refusal_ms"]["p50"] == 480.0  # nearest rank, as for the RTT
    assert report["seated"] == {"connections": 2, "rate_min": 17.0, "below_18": 1}
    assert check(report, parse_fail_on("seated_below_18=0,refusal_max_ms=1000")) == [
        "seated_below_18 = 1 (wanted <= 0)"
    ]


def test_percentiles_of_nothing_are_nan_and_null_in_the_report():
    assert all(np.isnan(percentiles(np.empty(0), (50, 99))))
    report = build(Totals(), meta=META, bots=2, duration=2.0, server=None, failures=[])
    assert report["rtt_ms"]["p99"] is None and report["series"] == []
    assert check(report, parse_fail_on("rtt_p99_ms=100")) == ["rtt_p99_ms: no value (needs samples)"]


def test_fail_on_default_directions_and_explicit_operators():
    report = build(merged(), meta=META, bots=2, duration=2.0, server=None, failures=[])
    assert check(report, parse_fail_on("rtt_p99_ms=1000,errors=0,connected_ratio=1,snapshots_per_bot_s=15")) == []
    broken = check(report, parse_fail_on("rtt_p50_ms=39, snapshots_per_bot_s=20, rtt_max_ms>=2000"))
    assert [b.split()[0] for b in broken] == ["rtt_p50_ms", "snapshots_per_bot_s", "rtt_max_ms"]
    assert "server_tick_p99_ms: no value (needs samples, --control)" in check(
        report, parse_fail_on("server_tick_p99_ms=25")
    )


@pytest.mark.parametrize("bad", ["rtt=5", "rtt_p99_ms", "rtt_p99_ms=fast", "errors<0"])
def test_fail_on_refuses_unknown_names_and_bad_terms(bad):
    with pytest.raises(ValueError, match="bad --fail-on term"):
        parse_fail_on(bad)


def test_every_fail_on_metric_resolves_in_a_full_report():
    server = {"ticks": 10, "tick_p50_ms": 1.0, "tick_p99_ms": 2.0, "overruns": 0}
    report = build(merged(), meta=META, bots=2, duration=2.0, server=server, failures=[])
    assert check(report, parse_fail_on(",".join(f"{name}>=-1" for name in METRICS))) == []


METRICS_TEXT = """# TYPE tickroom_tick_duration_seconds histogram
tickroom_tick_duration_seconds_bucket{{room="a",le="0.005"}} {a}
tickroom_tick_duration_seconds_bucket{{room="a",le="0.01"}} {b}
tickroom_tick_duration_seconds_bucket{{room="a",le="+Inf"}} {c}
tickroom_tick_duration_seconds_count{{room="a"}} {c}
tickroom_tick_duration_seconds_sum{{room="a"}} 1.0
# TYPE tickroom_tick_overruns_total counter
tickroom_tick_overruns_total {o}
"""


def test_server_figures_are_the_runs_share_of_the_histogram():
    before = METRICS_TEXT.format(a=1000, b=1000, c=1000, o=7)  # earlier traffic: all fast
    after = METRICS_TEXT.format(a=1100, b=1198, c=1200, o=9)  # the run: 100 / 98 / 2 slow
    figures = server_figures(before, after)
    assert figures["ticks"] == 200 and figures["overruns"] == 2
    assert figures["tick_p50_ms"] == 5.0  # rank 100 is the 5 ms bucket's top
    assert figures["tick_p99_ms"] == 10.0  # rank 198: top of the 10 ms bucket
    assert server_figures(None, METRICS_TEXT.format(a=0, b=0, c=0, o=0))["tick_p99_ms"] is None


class Redirected(ClientClosed):
    def __init__(self, url):
        super().__init__(4300, "redirect")
        self.url = url


@pytest.mark.parametrize(
    ("exc", "joined", "action"),
    [
        (ClientClosed(1006, "connection lost"), True, "rejoin"),
        (ClientClosed(4112, "ack timeout"), True, "rejoin"),
        (ClientClosed(4105, "room recovering"), True, "rejoin"),
        (ClientClosed(1006, "connection lost"), False, "fresh"),
        (Desynced("bad delta"), True, "rejoin"),
        (ClientClosed(1001, "going away"), True, "fresh"),
        (ClientClosed(4110, "session unknown"), True, "fresh"),
        (ClientClosed(4101, "room full"), True, "stop"),
        (OSError("connection refused"), True, "rejoin"),
    ],
)
def test_reconnect_plan(exc, joined, action):
    plan = plan_reconnect(exc, joined=joined)
    assert plan.action == action and not plan.redirect


def test_a_redirect_is_followed_to_its_url():
    plan = plan_reconnect(Redirected("ws://127.0.0.1:9/"), joined=True)
    assert plan == type(plan)("rejoin", url="ws://127.0.0.1:9/", redirect=True)


@pytest.mark.parametrize("kind", ["closed_4000", "closed_4001", "closed_4002", "server_error_4001"])
def test_bad_input_fails_the_run_whatever_the_thresholds(kind):
    report = {"errors": {kind: 3, "closed_4101": 1}}
    (sentence,) = bad_input(report)
    assert f"{kind}=3" in sentence and "closed_4101" not in sentence


def test_other_errors_are_left_to_the_thresholds():
    assert bad_input({"errors": {"closed_4101": 2, "connect_ConnectionRefusedError": 1, "closed_1006": 1}}) == []
    assert bad_input({"errors": {}}) == []
