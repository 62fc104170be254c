"""A real Prometheus scraping a real tickroom node with players: every
dashboard panel's PromQL and every alert expression is valid and returns
series, and Prometheus evaluates every alert rule without error.

The node runs as the matchmaker path does in production (API key, ticket
secret, a real redis-server, so the failover families and their alerts are
live): rooms are allocated over the control API and players join with
tickets; one client joins with a forged ticket, so the refusal series the
rules and panels read exist too. Prometheus scrapes every second with the
shipped config's job name and rule file (tests/ops/prometheus.py).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
import pytest
import trio

from tests.integration.harness import raw_client, running_server
from tickroom.client import JoinFailed, connect
from tickroom.protocol.errors import Code
from tickroom.protocol.tickets import sign_ticket

from .prometheus import alert_rules, alert_signal, dashboard_queries, prometheus_process, scrape_config

pytestmark = pytest.mark.integration

API_KEY = "prometheus-test-key-0123456789"
TICKET_SECRET = "prometheus-test-secret-0123456789"
ROOMS, PLAYERS_PER_ROOM = 2, 2
READY_TIMEOUT_S = 60.0  # a few 1 s scrapes on a busy machine, with margin
NOT_MSGPACK = b"\xc1"  # the one byte msgpack never uses
PLAY_LIMIT_S = READY_TIMEOUT_S + 30.0  # players stop by themselves even if the test hangs


async def play(ws_url: str, ticket: str, stop: trio.Event) -> None:
    """A player moving and acknowledging snapshots until ``stop``."""
    with trio.move_on_after(PLAY_LIMIT_S):
        async with connect(ws_url, ticket=ticket) as player:
            while not stop.is_set():
                await player.send_input(mx=1.0, aim=0.5)
                await player.next_world()


async def query(prom: httpx.AsyncClient, expr: str) -> tuple[str, list]:
    """(status, result) of an instant query; status "error" for invalid PromQL."""
    answer = (await prom.get("/api/v1/query", params={"query": expr})).json()
    return answer["status"], answer.get("data", {}).get("result", [])


async def missing_series(prom: httpx.AsyncClient, queries: list[tuple[str, str]]) -> list[str]:
    """The queries that return no series yet; invalid ones fail the test at once."""
    missing = []
    for name, expr in queries:
        status, result = await query(prom, expr)
        assert status == "success", f"{name}: invalid PromQL: {expr}"
        if not result:
            missing.append(f"{name}: {expr}")
    return missing


async def test_dashboard_and_alerts_against_a_real_prometheus(redis_url) -> None:
    with running_server(
        "--api-key", API_KEY, "--ticket-secret", TICKET_SECRET, "--node-id", "prom-node", "--redis-url", redis_url
    ) as node:
        target = urlsplit(node.control_url).netloc
        with prometheus_process(scrape_config(target)) as prometheus_url:
            headers = {"Authorization": f"Bearer {API_KEY}"}
            async with (
                httpx.AsyncClient(base_url=node.control_url, headers=headers) as api,
                httpx.AsyncClient(base_url=prometheus_url, timeout=10.0) as prom,
                trio.open_nursery() as nursery,
            ):
                stop = trio.Event()
                for i in range(ROOMS):
                    room = (await api.post("/v1/rooms", json={"labels": {"test": "prometheus", "n": str(i)}})).json()
                    players = [f"p{i}-{j}" for j in range(PLAYERS_PER_ROOM)]
                    issued = await api.post(f"/v1/rooms/{room['room_id']}/tickets", json={"players": players})
                    for ticket in issued.json()["tickets"].values():
                        nursery.start_soon(play, room["ws_url"], ticket, stop)
                # A ticket signed with another secret (tickets refused,
                # "forged"), and a frame that is not msgpack (client errors,
                # BAD_MESSAGE).
                forged = sign_ticket(b"not-the-secret", room["room_id"], "mallory", int(time.time()) + 60, "nonce12345")
                with pytest.raises(JoinFailed):
                    async with connect(room["ws_url"], ticket=forged):
                        pass
                async with raw_client(node.url) as raw:
                    await raw.ws.send_message(NOT_MSGPACK)
                    await raw.expect_error(Code.BAD_MESSAGE)

                alerts = [(rule["alert"], alert_signal(rule["expr"])) for rule in alert_rules()]
                wanted = [*dashboard_queries(), *alerts]
                missing: list[str] = wanted  # type: ignore[assignment]
                with trio.move_on_after(READY_TIMEOUT_S):
                    while missing:
                        missing = await missing_series(prom, wanted)
                        if missing:
                            await trio.sleep(0.5)
                assert missing == [], "queries with no series from a live node"

                # The full alert expressions are valid PromQL too (none fires:
                # the node is healthy, so they return nothing).
                for rule in alert_rules():
                    status, result = await query(prom, rule["expr"])
                    assert status == "success", rule["alert"]
                    assert result == [], f"{rule['alert']} fires on a healthy node: {result}"

                # Prometheus itself evaluates every rule of the shipped file
                # without error.
                evaluated: dict[str, dict] = {}
                with trio.move_on_after(READY_TIMEOUT_S):
                    while len(evaluated) < len(alerts) or any(r["health"] != "ok" for r in evaluated.values()):
                        groups = (await prom.get("/api/v1/rules")).json()["data"]["groups"]
                        evaluated = {
                            r["name"]: r
                            for g in groups
                            for r in g["rules"]
                            if r.get("lastEvaluation", "").startswith("2")
                        }
                        await trio.sleep(0.5)
                assert sorted(evaluated) == sorted(name for name, _ in alerts)
                assert {name: r["health"] for name, r in evaluated.items()} == {name: "ok" for name, _ in alerts}

                # The forged join is counted as a connection refused with its
                # code (once a scrape after its close has landed).
                counted: list[float] = []
                with trio.move_on_after(READY_TIMEOUT_S):
                    while counted != [1.0]:
                        _, refused = await query(prom, 'tickroom_connections_refused_total{code="INVALID_TICKET"}')
                        counted = [float(series["value"][1]) for series in refused]
                        await trio.sleep(0.5)
                assert counted == [1.0]

                # The per-room panel names the rooms the players are in.
                _, slowest = await query(prom, dict(dashboard_queries())["Slowest rooms (tick p99)"])
                assert len({series["metric"]["room"] for series in slowest}) == ROOMS
                stop.set()
