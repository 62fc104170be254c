"""The control API as a matchmaker uses it, and the server's /metrics.

The parent process does this before the workers start (and reads /metrics
before and after the run), so plain blocking HTTP from the standard library
is enough: a few requests per room, none on the bots' hot path.

Contract (docs of the control API):

    POST {control}/v1/rooms                     {"game", "max_players"} -> 201 {"room_id", "node_id", "ws_url", ...}
    POST {control}/v1/rooms/{room_id}/tickets   {"players", "ttl_s"}    -> 200 {"room_id", "ws_url", "tickets": {name: ticket}}
    GET  {control}/metrics                       Prometheus text
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from dataclasses import dataclass

HTTP_TIMEOUT_S = 10.0
TICKET_TTL_MIN_S = 300


class ControlError(Exception):
    """The control API refused or failed a request."""


@dataclass(frozen=True)
class Allocated:
    room_id: str
    ws_url: str
    tickets: dict[str, str]


def _request(method: str, url: str, api_key: str | None, body: dict | None = None) -> tuple[int, bytes]:
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if not url.startswith(("http://", "https://")):
        # urllib would also open file: and custom schemes; --control is HTTP.
        raise ValueError(f"--control must be an http(s) URL, not {url!r}")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:  # noqa: S310  # nosec B310 - scheme checked above
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        raise ControlError(f"{method} {url}: HTTP {exc.code} {exc.read()[:200]!r}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ControlError(f"{method} {url}: {exc}") from None


def allocate(
    control: str, api_key: str | None, *, players: list[str], game: str = "arena", ttl_s: float = TICKET_TTL_MIN_S
) -> Allocated:
    """Allocate one room for ``players`` and get a ticket for each."""
    base = control.rstrip("/")
    # max_players: the seats at once; with churn more players than seats
    # hold tickets, but they never play at the same time.
    status, raw = _request("POST", f"{base}/v1/rooms", api_key, {"game": game, "max_players": len(players)})
    room = json.loads(raw)
    if status != 201 or "room_id" not in room:
        raise ControlError(f"POST /v1/rooms: unexpected answer {status} {room!r}")
    body = {"players": players, "ttl_s": max(TICKET_TTL_MIN_S, math.ceil(ttl_s))}
    status, raw = _request("POST", f"{base}/v1/rooms/{room['room_id']}/tickets", api_key, body)
    answer = json.loads(raw)
    tickets = answer.get("tickets", {})
    missing = [p for p in players if p not in tickets]
    if status != 200 or missing:
        raise ControlError(f"POST /v1/rooms/{room['room_id']}/tickets: no ticket for {missing[:3]} ({status})")
    return Allocated(room["room_id"], answer.get("ws_url") or room["ws_url"], tickets)


def fetch_metrics(control: str, api_key: str | None) -> str:
    _, raw = _request("GET", control.rstrip("/") + "/metrics", api_key)
    return raw.decode()


TICK_HISTOGRAM = "tickroom_tick_duration_seconds"
OVERRUNS = "tickroom_tick_overruns_total"


def _scrape(text: str) -> tuple[dict[float, float], float, float]:
    """Cumulative tick-duration buckets (summed over label sets), the tick
    count, and the overrun counter."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[float, float] = {}
    count = overruns = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == TICK_HISTOGRAM + "_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif sample.name == TICK_HISTOGRAM + "_count":
                count += sample.value
            elif sample.name in (OVERRUNS, OVERRUNS.removesuffix("_total")) and family.name.startswith(
                "tickroom_tick_overruns"
            ):
                overruns += sample.value
    return buckets, count, overruns


def _bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus' histogram_quantile: linear inside the bucket holding the
    q-th tick; the +Inf bucket answers with the highest finite bound."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


def server_figures(before: str | None, after: str) -> dict:
    """Tick p50/p99 (ms, estimated from buckets) and overruns over the run:
    ``after`` minus ``before`` so earlier traffic on the node does not count."""
    b_after, n_after, o_after = _scrape(after)
    b_before, n_before, o_before = _scrape(before) if before else ({}, 0.0, 0.0)
    diff = sorted((le, c - b_before.get(le, 0.0)) for le, c in b_after.items())
    p50, p99 = _bucket_quantile(diff, 0.5), _bucket_quantile(diff, 0.99)
    return {
        "ticks": int(n_after - n_before),
        "tick_p50_ms": None if p50 is None else round(p50 * 1e3, 3),
        "tick_p99_ms": None if p99 is None else round(p99 * 1e3, 3),
        "overruns": int(o_after - o_before),
    }
