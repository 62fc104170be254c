"""The matchmaker flow against a real server process: allocate over HTTP,
issue tickets, two clients join with them and play; plus the operator's
side (auth, metrics, drain, SIGTERM) and the refusal to expose an open API."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tickroom.client import connect
from tickroom.protocol.errors import Code

from .harness import REPO, eventually, raw_client, running_server

API_KEY = "e2e-key-0123456789"
TICKET_SECRET = "e2e-ticket-secret-9876543210"


@pytest.fixture(scope="module")
def node():
    with running_server("--api-key", API_KEY, "--ticket-secret", TICKET_SECRET, "--node-id", "node-e2e") as proc:
        yield proc


def counters(text: str) -> dict[str, float]:
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


async def test_matchmaker_flow_end_to_end(node) -> None:
    async with httpx.AsyncClient(base_url=node.control_url, headers={"Authorization": f"Bearer {API_KEY}"}) as api:
        before = counters((await api.get("/metrics")).text)
        body = {"game": "arena", "max_players": 2, "labels": {"mode": "duel"}, "idempotency_key": "match-1"}
        created = await api.post("/v1/rooms", json=body)
        assert created.status_code == 201
        room = created.json()
        assert room["node_id"] == "node-e2e" and room["ws_url"] == node.url
        again = await api.post("/v1/rooms", json=body)
        assert again.status_code == 200 and again.json()["room_id"] == room["room_id"]

        issued = await api.post(f"/v1/rooms/{room['room_id']}/tickets", json={"players": ["alice", "bob"], "ttl_s": 60})
        assert issued.status_code == 200
        tickets = issued.json()["tickets"]

        async with (
            connect(room["ws_url"], ticket=tickets["alice"]) as alice,
            connect(room["ws_url"], ticket=tickets["bob"]) as bob,
        ):
            assert alice.welcome.room == bob.welcome.room == room["room_id"]
            await bob.next_world()
            start = bob.entity(alice.player)
            for _ in range(20):
                await alice.send_input(mx=1.0)
                await bob.send_input(my=1.0)
                await alice.next_world()
            await eventually(lambda: bob.entity(alice.player)["pos"][0] > start["pos"][0], what="bob to see alice move")
            info = (await api.get(f"/v1/rooms/{room['room_id']}")).json()
            assert sorted(p["name"] for p in info["players"]) == ["alice", "bob"]
            assert all(p["connected"] for p in info["players"])
            assert info["max_players"] == 2

            # A copy of alice's ticket seats nobody: a ticket admits one connection.
            async with raw_client(node.url) as raw:
                await raw.ws.send_message(raw.session.join(ticket=tickets["alice"]))
                await raw.expect_close(Code.INVALID_TICKET)

            after = counters((await api.get("/metrics")).text)
        for name in ("tickroom_ticks_total", "tickroom_inputs_accepted_total", "tickroom_bytes_sent_total",
                     "tickroom_messages_received_total", "tickroom_tickets_issued_total", "tickroom_tickets_accepted_total"):  # fmt: skip
            assert after[name] > before.get(name, 0), name
        assert after["tickroom_players_connected"] == 2

        listed = (await api.get("/v1/rooms", params={"label": "mode:duel"})).json()
        assert [r["room_id"] for r in listed["rooms"]] == [room["room_id"]]
        assert (await api.delete(f"/v1/rooms/{room['room_id']}")).status_code == 202


async def test_the_api_key_is_required_and_never_logged(node) -> None:
    async with httpx.AsyncClient(base_url=node.control_url) as anonymous:
        assert (await anonymous.post("/v1/rooms", json={})).status_code == 401
        bad = await anonymous.get("/v1/rooms", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
        assert (await anonymous.get("/readyz")).status_code == 200
    log = node.log()
    assert API_KEY not in log and TICKET_SECRET not in log


async def test_drain_then_sigterm_exits_cleanly() -> None:
    with running_server("--api-key", API_KEY) as proc:
        async with httpx.AsyncClient(base_url=proc.control_url, headers={"Authorization": f"Bearer {API_KEY}"}) as api:
            assert (await api.post("/v1/rooms", json={})).status_code == 201
            assert (await api.post("/v1/drain")).status_code == 202
            assert (await api.get("/readyz")).status_code == 503
            refused = await api.post("/v1/rooms", json={})
            assert refused.status_code == 503 and refused.json()["reason"] == "draining"
        assert await trio.to_thread.run_sync(proc.stop) == 0


def test_without_an_api_key_the_api_stays_on_loopback() -> None:
    from tickroom.server.config import ServerConfig

    assert ServerConfig(host="0.0.0.0").control_bind_host() == "127.0.0.1"
    assert ServerConfig(host="0.0.0.0", api_key="k").control_bind_host() == "0.0.0.0"
    assert ServerConfig(host="0.0.0.0", control_host="10.1.2.3").control_bind_host() == "10.1.2.3"


def test_an_open_api_on_the_network_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKROOM_")}
    result = subprocess.run(
        [sys.executable, "-m", "tickroom.server", "serve", "--host", "0.0.0.0", "--port", "0", "--control-port", "0",
         "--control-host", "0.0.0.0", "--ticket-secret", TICKET_SECRET],
        cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "without an API key" in result.stderr and "--api-key" in result.stderr
    assert TICKET_SECRET not in result.stderr + result.stdout


def test_secret_files_are_read(tmp_path) -> None:
    from tickroom.server.cli.main import build_parser, config_from_args

    (tmp_path / "key").write_text("from-a-file\n")
    (tmp_path / "secret").write_text("ticket-secret-from-a-file\n")
    args = build_parser().parse_args(
        ["serve", "--api-key-file", str(tmp_path / "key"), "--ticket-secret-file", str(tmp_path / "secret")]
    )
    config = config_from_args(args)
    assert (config.api_key, config.ticket_secret, config.control_port) == (
        "from-a-file",
        "ticket-secret-from-a-file",
        7351,
    )
    assert not config.client_rooms_allowed
    assert "from-a-file" not in repr(config)
