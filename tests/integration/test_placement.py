"""Cluster placement end to end: two real nodes sharing one real redis-server.

Every allocation goes through node A's control API; each room lands on the
node with the most free capacity (A itself, or B through a forwarded
request), and once both nodes run their maximum of rooms the next
allocation answers 503 with reason cluster_full."""

from __future__ import annotations

import httpx
import redis
import trio

from .harness import eventually, running_server

API_KEY = "placement-key-0123456789"
MAX_ROOMS = 2
TTL_S = 1.5


def node(redis_url: str, node_id: str):
    return running_server(
        "--redis-url", redis_url, "--api-key", API_KEY, "--node-id", node_id,
        "--max-rooms", str(MAX_ROOMS), "--lease-ttl", str(TTL_S),
    )  # fmt: skip


def registered(redis_url: str) -> set[str]:
    """The node ids with a live heartbeat and a control API URL."""
    client = redis.Redis.from_url(redis_url)
    try:
        return {
            node_id.decode()
            for node_id in client.smembers("tickroom:nodes")
            if client.hget(f"tickroom:node:{node_id.decode()}", "control_url")
        }
    finally:
        client.close()


async def test_allocations_spread_over_the_cluster_and_a_full_cluster_answers_503(redis_url):
    with node(redis_url, "node-a") as a, node(redis_url, "node-b") as b:
        await eventually(
            lambda: registered(redis_url) == {"node-a", "node-b"}, timeout=10, what="both nodes to register"
        )
        headers = {"Authorization": f"Bearer {API_KEY}"}
        by_node = {"node-a": (a, []), "node-b": (b, [])}
        async with httpx.AsyncClient(base_url=a.control_url, headers=headers) as api:
            placed = []
            for i in range(2 * MAX_ROOMS):
                answer = await api.post("/v1/rooms", json={"labels": {"n": str(i)}})
                assert answer.status_code == 201, answer.text
                room = answer.json()
                placed.append(room["node_id"])
                owner, rooms = by_node[room["node_id"]]
                assert room["ws_url"] == owner.url
                rooms.append(room["room_id"])
            # Each went to the node with the most free capacity (ties: node id).
            assert placed == ["node-a", "node-b", "node-a", "node-b"], placed

            for owner, rooms in by_node.values():
                async with httpx.AsyncClient(base_url=owner.control_url, headers=headers) as there:
                    for room_id in rooms:
                        found = await there.get(f"/v1/rooms/{room_id}")
                        assert found.status_code == 200, found.text
                        assert found.json()["room_id"] == room_id

            full = await api.post("/v1/rooms", json={})
            assert full.status_code == 503, full.text
            assert full.json()["reason"] == "cluster_full"
            assert full.headers["retry-after"]

            # A room ends on B: a keyed allocation through A goes there, and
            # its retry finds the same room (B's idempotency, forwarded key).
            closed = by_node["node-b"][1][0]
            async with httpx.AsyncClient(base_url=b.control_url, headers=headers) as at_b:
                assert (await at_b.delete(f"/v1/rooms/{closed}")).status_code == 202
            body = {"idempotency_key": "match-7"}
            with trio.fail_after(10):
                while (again := await api.post("/v1/rooms", json=body)).status_code == 503:
                    await trio.sleep(0.1)
            assert again.status_code == 201, again.text
            assert again.json()["node_id"] == "node-b"
            retry = await api.post("/v1/rooms", json=body)
            assert retry.status_code == 200, retry.text
            assert retry.json()["room_id"] == again.json()["room_id"]


async def test_a_retried_allocation_through_another_node_returns_the_same_room(redis_url):
    with node(redis_url, "node-a") as a, node(redis_url, "node-b") as b:
        await eventually(
            lambda: registered(redis_url) == {"node-a", "node-b"}, timeout=10, what="both nodes to register"
        )
        headers = {"Authorization": f"Bearer {API_KEY}"}
        body = {"idempotency_key": "match-x", "labels": {"mode": "duel"}, "max_players": 2}
        async with (
            httpx.AsyncClient(base_url=a.control_url, headers=headers) as at_a,
            httpx.AsyncClient(base_url=b.control_url, headers=headers) as at_b,
        ):
            first = await at_a.post("/v1/rooms", json=body)
            assert first.status_code == 201, first.text
            room = first.json()
            for api in (at_b, at_a):  # the retry reaches either node
                retry = await api.post("/v1/rooms", json=body)
                assert retry.status_code == 200, retry.text
                assert {k: retry.json()[k] for k in ("room_id", "node_id", "ws_url")} == {
                    k: room[k] for k in ("room_id", "node_id", "ws_url")
                }
            conflict = await at_b.post("/v1/rooms", json={**body, "max_players": 3})
            assert conflict.status_code == 409 and conflict.json()["reason"] == "idempotency_conflict"

            # Two requests with a new key at once, one through each node: one room.
            answers = {}

            async def post(name, api):
                answers[name] = await api.post("/v1/rooms", json={"idempotency_key": "match-y"})

            async with trio.open_nursery() as nursery:
                nursery.start_soon(post, "a", at_a)
                nursery.start_soon(post, "b", at_b)
            assert sorted(r.status_code for r in answers.values()) == [200, 201], [r.text for r in answers.values()]
            assert answers["a"].json()["room_id"] == answers["b"].json()["room_id"]

            # Once the room has ended, the key allocates a new room.
            owner = at_a if room["node_id"] == "node-a" else at_b
            assert (await owner.delete(f"/v1/rooms/{room['room_id']}")).status_code == 202
            with trio.fail_after(20):
                while (again := await at_b.post("/v1/rooms", json=body)).status_code == 200:
                    await trio.sleep(0.1)
            assert again.status_code == 201, again.text
            assert again.json()["room_id"] != room["room_id"]
