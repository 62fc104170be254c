"""GET /v1/nodes (the console's node list): this node alone without Redis;
with a shared Redis, every node with a live heartbeat, this one live."""

from __future__ import annotations

import httpx
import trio

from .conftest import AUTH, DEADLINE_S, control_server


async def test_a_node_without_redis_lists_itself_live(http, server) -> None:
    (alone,) = (await http.get("/v1/nodes")).json()["nodes"]
    assert alone["node_id"] == server.node_id and alone["rooms"] == 0 and not alone["draining"]
    await http.post("/v1/rooms", json={})
    await http.post("/v1/drain")
    (alone,) = (await http.get("/v1/nodes")).json()["nodes"]
    assert alone["rooms"] == 1 and alone["draining"] and alone["capacity"] == server.config.max_rooms


async def test_nodes_sharing_redis_list_each_other(redis_url) -> None:
    cluster = {"redis_url": redis_url, "lease_ttl_s": 1.5}
    async with (
        control_server(node_id="node-a", **cluster) as a,
        control_server(node_id="node-b", **cluster),
        httpx.AsyncClient(base_url=a.control_url, headers=AUTH, timeout=DEADLINE_S) as api,
    ):
        # A node heartbeats once with its game port, then again once its
        # control API is bound: wait for both nodes with their control URLs.
        with trio.fail_after(DEADLINE_S):
            while not _both_listed_with_control_urls((await api.get("/v1/nodes")).json()["nodes"]):
                await trio.sleep(0.05)
        created = await api.post("/v1/rooms", json={"labels": {"where": "here"}})
        assert created.json()["node_id"] == "node-a"  # both empty: the tie goes to the first id
        nodes = {n["node_id"]: n for n in (await api.get("/v1/nodes")).json()["nodes"]}
        assert nodes["node-a"]["rooms"] == 1 and nodes["node-b"]["rooms"] == 0
        assert all(n["control_url"] for n in nodes.values())


def _both_listed_with_control_urls(nodes: list[dict]) -> bool:
    return [n["node_id"] for n in nodes] == ["node-a", "node-b"] and all(n["control_url"] for n in nodes)
