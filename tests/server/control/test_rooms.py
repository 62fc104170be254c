"""Allocation, lookup, listing, closing and draining over real HTTP."""

from __future__ import annotations

import time

import pytest
import trio

from tickroom.client import connect
from tickroom.protocol.errors import Code
from tickroom.protocol.tickets import verify_ticket

from .conftest import TICKET_SECRET, control_server


async def allocate(http, **body):
    response = await http.post("/v1/rooms", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_allocate_with_defaults(http, server) -> None:
    room = await allocate(http)
    assert set(room) == {
        "room_id",
        "node_id",
        "ws_url",
        "game",
        "max_players",
        "tick_rate",
        "labels",
        "options",
        "created_at",
    }
    assert room["game"] == "arena" and room["labels"] == {}
    assert (room["max_players"], room["tick_rate"]) == (server.config.max_players, server.config.tick_rate)
    assert room["ws_url"] == f"ws://127.0.0.1:{server.ports[0]}"
    assert room["node_id"] == server.node_id
    assert room["created_at"].endswith("Z")
    assert server.registry.get(room["room_id"]) is not None


async def test_per_room_max_players_and_tick_rate_really_apply(http, server) -> None:
    body = await allocate(http, game="arena", max_players=3, tick_rate=30, seed=7, labels={"mode": "duel"})
    assert (body["max_players"], body["tick_rate"], body["labels"]) == (3, 30, {"mode": "duel"})
    room = server.registry.get(body["room_id"])
    assert (room.config.max_players, room.config.tick_rate) == (3, 30)
    assert (room.game.config.max_players, room.game.config.tick_rate) == (3, 30)
    assert (server.registry.config.room.max_players, server.registry.config.room.tick_rate) == (16, 20)


async def test_the_same_idempotency_key_returns_the_same_room(http, server) -> None:
    first = await allocate(http, idempotency_key="match-42", labels={"mode": "duel"})
    again = await http.post("/v1/rooms", json={"idempotency_key": "match-42", "labels": {"mode": "duel"}})
    assert again.status_code == 200 and again.json() == first
    other = await allocate(http, idempotency_key="match-43", labels={"mode": "duel"})
    assert other["room_id"] != first["room_id"]
    assert len(server.registry.rooms()) == 2


async def test_an_idempotency_key_reused_for_another_request_is_409(http) -> None:
    await allocate(http, idempotency_key="k", max_players=2)
    response = await http.post("/v1/rooms", json={"idempotency_key": "k", "max_players": 4})
    assert response.status_code == 409 and response.json()["reason"] == "idempotency_conflict"


async def test_an_idempotency_key_of_an_ended_room_allocates_afresh(http, server) -> None:
    first = await allocate(http, idempotency_key="k")
    assert (await http.delete(f"/v1/rooms/{first['room_id']}")).status_code == 202
    with trio.fail_after(5):
        while server.registry.get(first["room_id"]) is not None:
            await trio.sleep(0.01)
    second = await allocate(http, idempotency_key="k")
    assert second["room_id"] != first["room_id"]


@pytest.mark.parametrize(
    "body",
    [[1], "x", {"game": "no/such"}, {"max_players": 0}, {"max_players": True}, {"tick_rate": 1000},
     {"seed": -1}, {"labels": ["a"]}, {"labels": {"a b": "x"}}, {"labels": {"a": 1}}, {"idempotency_key": ""},
     {"extra": 1}],
)  # fmt: skip
async def test_bad_allocation_bodies_are_400(http, body) -> None:
    response = await http.post("/v1/rooms", json=body)
    assert response.status_code == 400 and response.json()["reason"] == "bad_request", response.text


async def test_invalid_json_is_400_and_unknown_game_422(http) -> None:
    response = await http.post("/v1/rooms", content=b"{nope")
    assert response.status_code == 400
    response = await http.post("/v1/rooms", json={"game": "chess"})
    assert response.status_code == 422 and response.json()["reason"] == "unknown_game"


async def test_a_full_node_answers_503_with_a_reason() -> None:
    import httpx

    from .conftest import AUTH

    async with (
        control_server(max_rooms=1) as server,
        httpx.AsyncClient(base_url=server.control_url, headers=AUTH) as http,
    ):
        await allocate(http)
        response = await http.post("/v1/rooms", json={})
        assert response.status_code == 503
        assert response.json()["reason"] == "max_rooms" and response.json()["error"]
        assert "retry-after" in response.headers


async def test_get_a_room(http, server) -> None:
    room = await allocate(http, labels={"mode": "duel"})
    response = await http.get(f"/v1/rooms/{room['room_id']}")
    assert response.status_code == 200
    info = response.json()
    assert {k: info[k] for k in room} == room
    assert info["status"] == "open" and info["players"] == [] and info["tick"] >= 0
    assert info["statistics"]["room_id"] == room["room_id"]


async def test_an_unknown_room_is_404_json(http) -> None:
    for method, path in [("GET", "/v1/rooms/nope"), ("DELETE", "/v1/rooms/nope")]:
        response = await http.request(method, path)
        assert response.status_code == 404 and response.json()["reason"] == "room_not_found"
    response = await http.post("/v1/rooms/nope/tickets", json={"players": ["a"]})
    assert response.status_code == 404


async def test_unknown_routes_and_methods(http) -> None:
    assert (await http.get("/v2/rooms")).status_code == 404
    response = await http.put("/v1/rooms")
    assert response.status_code == 405 and set(response.headers["allow"].split(", ")) == {"GET", "POST"}


async def test_list_filters_by_game_and_label_and_pages(http) -> None:
    duels = [await allocate(http, labels={"mode": "duel"}) for _ in range(5)]
    await allocate(http, labels={"mode": "ffa"})
    seen, cursor, pages = [], None, 0
    while True:
        params = {"label": "mode:duel", "limit": 2, "game": "arena", **({"cursor": cursor} if cursor else {})}
        body = (await http.get("/v1/rooms", params=params)).json()
        pages += 1
        assert len(body["rooms"]) <= 2
        seen += [room["room_id"] for room in body["rooms"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(room["room_id"] for room in duels) and pages == 3
    assert (await http.get("/v1/rooms", params={"game": "other"})).json() == {"rooms": [], "next_cursor": None}
    everything = (await http.get("/v1/rooms")).json()
    assert len(everything["rooms"]) == 6 and everything["rooms"][0]["players"] == 0


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "limit=501", "label=nocolon", "cursor=%%%", "bogus=1"])
async def test_bad_list_queries_are_400(http, query) -> None:
    assert (await http.get(f"/v1/rooms?{query}")).status_code == 400


async def test_delete_closes_the_clients_with_room_closed_and_the_reason(http, server) -> None:
    room = await allocate(http)
    tickets = (await http.post(f"/v1/rooms/{room['room_id']}/tickets", json={"players": ["ann"]})).json()["tickets"]
    async with connect(room["ws_url"], ticket=tickets["ann"]) as client:
        await client.next_world()
        response = await http.delete(f"/v1/rooms/{room['room_id']}", params={"reason": "match over"})
        assert response.status_code == 202 and response.json() == {"room_id": room["room_id"], "status": "closing"}
        with trio.fail_after(5):
            closed = await client.wait_closed()
    assert closed.code == Code.ROOM_CLOSED and "match over" in closed.reason


async def test_tickets_are_signed_for_the_room(http, server) -> None:
    room = await allocate(http)
    response = await http.post(f"/v1/rooms/{room['room_id']}/tickets", json={"players": ["alice", "bob"], "ttl_s": 30})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"room_id", "ws_url", "tickets", "expires_at"}
    assert body["ws_url"] == room["ws_url"] and set(body["tickets"]) == {"alice", "bob"}
    for player, token in body["tickets"].items():
        claims = verify_ticket(TICKET_SECRET.encode(), token, time.time(), room["room_id"])
        assert claims.player == player
    assert body["expires_at"].endswith("Z")


@pytest.mark.parametrize(
    "body", [{}, {"players": []}, {"players": ["a", "a"]}, {"players": ["a b"]}, {"players": ["a"], "ttl_s": 0}]
)
async def test_bad_ticket_requests_are_400(http, body) -> None:
    room = await allocate(http)
    assert (await http.post(f"/v1/rooms/{room['room_id']}/tickets", json=body)).status_code == 400


async def test_without_a_ticket_secret_tickets_are_409() -> None:
    import httpx

    from .conftest import AUTH

    async with (
        control_server(ticket_secret=None) as server,
        httpx.AsyncClient(base_url=server.control_url, headers=AUTH) as http,
    ):
        room = await allocate(http)
        response = await http.post(f"/v1/rooms/{room['room_id']}/tickets", json={"players": ["a"]})
        assert response.status_code == 409 and response.json()["reason"] == "tickets_disabled"


async def test_drain_stops_allocations_and_readiness(http, anonymous, server) -> None:
    room = await allocate(http)
    assert (await anonymous.get("/readyz")).status_code == 200
    response = await http.post("/v1/drain")
    assert response.status_code == 202 and response.json() == {"status": "draining", "rooms": 1}
    ready = await anonymous.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "draining"
    refused = await http.post("/v1/rooms", json={})
    assert refused.status_code == 503 and refused.json()["reason"] == "draining"
    assert not server.registry.taking_rooms and server.registry.get(room["room_id"]) is not None  # rooms play on
    assert (await anonymous.get("/healthz")).json() == {"status": "ok"}


async def test_a_closing_room_is_shown_as_closing_and_takes_no_tickets(http, server) -> None:
    room = await allocate(http, tick_rate=1)  # the room notices at its next tick, a second away
    server.registry.get(room["room_id"]).closed = True  # what a close request does at the tick boundary
    info = await http.get(f"/v1/rooms/{room['room_id']}")
    assert info.status_code == 200 and info.json()["status"] == "closing"
    response = await http.post(f"/v1/rooms/{room['room_id']}/tickets", json={"players": ["a"]})
    assert response.status_code == 409 and response.json()["reason"] == "room_closing"
