"""/v1/nodes/{node_id}/...: any node's rooms through this node's control
API (tickroom.server.control.node_proxy). Two real nodes share a real
redis-server; node A answers for node B with B's own answers, and says
which part failed when B cannot answer."""

from __future__ import annotations

import socket

import httpx
import trio

from tickroom.server.cluster.store.base import NodeInfo

from .conftest import AUTH, DEADLINE_S, control_server


async def wait_for_nodes(api: httpx.AsyncClient, ids: list[str]) -> None:
    """Until exactly ``ids`` are listed, each with its control URL (a node
    heartbeats once with its game port, again once its control API is bound)."""

    def ready(nodes: list[dict]) -> bool:
        return [n["node_id"] for n in nodes] == ids and all(n["control_url"] for n in nodes)

    with trio.fail_after(DEADLINE_S):
        while not ready((await api.get("/v1/nodes")).json()["nodes"]):
            await trio.sleep(0.05)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_node_a_reads_and_acts_on_node_b_rooms(redis_url) -> None:
    cluster = {"redis_url": redis_url, "lease_ttl_s": 1.5}
    async with (
        control_server(node_id="node-a", **cluster) as a,
        control_server(node_id="node-b", **cluster) as b,
        httpx.AsyncClient(base_url=a.control_url, headers=AUTH, timeout=DEADLINE_S) as via_a,
        httpx.AsyncClient(base_url=b.control_url, headers=AUTH, timeout=DEADLINE_S) as on_b,
    ):
        await wait_for_nodes(via_a, ["node-a", "node-b"])
        assert (await via_a.get("/v1/nodes")).json()["this_node"] == "node-a"
        here_only = {"X-Tickroom-Forwarded": "1"}  # allocate on the node asked, not by cluster placement
        room = (await on_b.post("/v1/rooms", json={"labels": {"mode": "duel"}}, headers=here_only)).json()
        assert room["node_id"] == "node-b"
        here = (await via_a.post("/v1/rooms", json={}, headers=here_only)).json()

        # B's list through A is B's list; A's own is answered by A.
        listed = (await via_a.get("/v1/nodes/node-b/rooms", params={"label": "mode:duel"})).json()
        assert [r["room_id"] for r in listed["rooms"]] == [room["room_id"]]
        assert (await via_a.get("/v1/nodes/node-b/rooms", params={"label": "mode:solo"})).json()["rooms"] == []
        own = (await via_a.get("/v1/nodes/node-a/rooms")).json()
        assert [r["room_id"] for r in own["rooms"]] == [here["room_id"]]

        detail = (await via_a.get(f"/v1/nodes/node-b/rooms/{room['room_id']}")).json()
        assert detail["node_id"] == "node-b" and detail["labels"] == {"mode": "duel"}
        times = (await via_a.get(f"/v1/nodes/node-b/rooms/{room['room_id']}/tick-times")).json()
        assert times["room_id"] == room["room_id"] and times["timed"] >= 0

        # B's errors come back as B gave them.
        missing = await via_a.get("/v1/nodes/node-b/rooms/no-such-room")
        assert missing.status_code == 404 and missing.json()["reason"] == "room_not_found"
        kick = await via_a.delete(f"/v1/nodes/node-b/rooms/{room['room_id']}/players/7")
        assert kick.status_code == 404 and kick.json()["reason"] == "player_not_found"
        bad = await via_a.get("/v1/nodes/node-b/rooms", params={"limit": "0"})
        assert bad.status_code == 400 and bad.json()["reason"] == "bad_request"

        # Closing B's room from A closes it on B.
        closing = await via_a.delete(f"/v1/nodes/node-b/rooms/{room['room_id']}", params={"reason": "from A"})
        assert closing.status_code == 202 and closing.json()["status"] == "closing"
        with trio.fail_after(DEADLINE_S):
            while (await on_b.get(f"/v1/rooms/{room['room_id']}")).status_code != 404:
                await trio.sleep(0.05)

        # Draining B from A: B drains, A does not.
        assert (await via_a.post("/v1/nodes/node-b/drain")).status_code == 202
        assert (await on_b.get("/readyz")).json()["status"] == "draining"
        assert (await via_a.get("/readyz")).json()["status"] == "ready"
        assert b.registry.taking_rooms is False and a.registry.taking_rooms is True


async def test_a_node_that_is_gone_or_unreachable_gets_a_clear_error(redis_url) -> None:
    cluster = {"redis_url": redis_url, "lease_ttl_s": 1.5}
    async with (
        control_server(node_id="node-a", **cluster) as a,
        httpx.AsyncClient(base_url=a.control_url, headers=AUTH, timeout=DEADLINE_S) as via_a,
    ):
        gone = await via_a.get("/v1/nodes/node-z/rooms")
        assert gone.status_code == 404 and gone.json()["reason"] == "node_not_found"

        # A heartbeat whose control API no longer answers (a crashed node
        # before its lease runs out).
        assert a.failover is not None
        ghost = NodeInfo("node-ghost", "ws://127.0.0.1:1", 4, control_url=f"http://127.0.0.1:{closed_port()}")
        await a.failover.store.heartbeat(ghost, 30.0)
        refused = await via_a.delete("/v1/nodes/node-ghost/rooms/r1")
        assert refused.status_code == 502 and refused.json()["reason"] == "node_unreachable"

        mute = NodeInfo("node-mute", "ws://127.0.0.1:1", 4)  # no control URL registered
        await a.failover.store.heartbeat(mute, 30.0)
        silent = await via_a.post("/v1/nodes/node-mute/drain")
        assert silent.status_code == 502 and silent.json()["reason"] == "node_no_control_api"
        assert a.registry.taking_rooms  # nothing was drained here


async def test_a_node_with_another_key_is_reported_not_passed_on_as_401(redis_url) -> None:
    cluster = {"redis_url": redis_url, "lease_ttl_s": 1.5}
    async with (
        control_server(node_id="node-a", **cluster) as a,
        control_server(node_id="node-b", api_key="another-key", **cluster),
        httpx.AsyncClient(base_url=a.control_url, headers=AUTH, timeout=DEADLINE_S) as via_a,
    ):
        await wait_for_nodes(via_a, ["node-a", "node-b"])
        answer = await via_a.get("/v1/nodes/node-b/rooms")
        assert answer.status_code == 502 and answer.json()["reason"] == "node_refused_key"


async def test_without_redis_the_node_answers_for_itself_only(http, anonymous, server) -> None:
    room = (await http.post("/v1/rooms", json={})).json()
    own = (await http.get(f"/v1/nodes/{server.node_id}/rooms")).json()
    assert [r["room_id"] for r in own["rooms"]] == [room["room_id"]]
    assert (await http.get("/v1/nodes/elsewhere/rooms")).json()["reason"] == "node_not_found"
    assert (await anonymous.get(f"/v1/nodes/{server.node_id}/rooms")).status_code == 401
