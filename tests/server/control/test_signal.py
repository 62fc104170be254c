"""POST /v1/rooms/{id}/signal over real HTTP to an in-process server that
runs the lifecycle game: the game's answer, its documented errors, and what
the game does on a signal (labels listed by GET /v1/rooms?label=, a kick, the
match's end) as a client sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from tests.in_process import serving
from tests.server.control.conftest import API_KEY, AUTH, DEADLINE_S, TICKET_SECRET
from tickroom.client import ClientClosed, connect
from tickroom.protocol.errors import Code
from tickroom.server.config import ServerConfig
from tickroom.server.control.validation import MAX_SIGNAL_BYTES
from tickroom.server.node import GameServer
from tickroom.server.rooms.game_catalog import GameCatalog


@pytest.fixture
async def lifecycle_server() -> AsyncIterator[GameServer]:
    config = ServerConfig(
        host="127.0.0.1", port=0, control_port=0, api_key=API_KEY, ticket_secret=TICKET_SECRET,
        stats_interval_s=0, graceful_timeout_s=2.0,
    )  # fmt: skip
    games = GameCatalog.discover("tests.games.lifecycle:Lifecycle")
    async with serving(GameServer(config, games=games)) as running:
        yield running


@pytest.fixture
async def api(lifecycle_server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=lifecycle_server.control_url, headers=AUTH, timeout=DEADLINE_S) as client:
        yield client


async def allocate(api: httpx.AsyncClient, **body) -> dict:
    response = await api.post("/v1/rooms", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def ticket(api: httpx.AsyncClient, room: dict, player: str) -> str:
    response = await api.post(f"/v1/rooms/{room['room_id']}/tickets", json={"players": [player]})
    return response.json()["tickets"][player]


async def test_a_signal_s_answer_comes_back_and_labels_the_game_sets_are_listed(api) -> None:
    room = await allocate(api, labels={"mode": "duel"})
    signal = f"/v1/rooms/{room['room_id']}/signal"
    response = await api.post(signal, json={"op": "status"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "room_id": room["room_id"],
        "answer": {"tick": response.json()["answer"]["tick"], "players": []},
    }
    assert (await api.post(signal, json={"op": "labels", "labels": {"phase": "playing"}})).status_code == 200
    listed = (await api.get("/v1/rooms", params={"label": "phase:playing"})).json()["rooms"]
    assert [r["room_id"] for r in listed] == [room["room_id"]]
    assert listed[0]["labels"] == {"mode": "duel", "phase": "playing"}
    assert (await api.get("/v1/rooms", params={"label": "phase:lobby"})).json()["rooms"] == []


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"[1, 2]", 400, "bad_request"),
        (b"not json", 400, "bad_request"),
        (b'{"pad": "' + b"x" * MAX_SIGNAL_BYTES + b'"}', 400, "bad_request"),
        (b'{"op": "big"}', 500, "signal_failed"),
    ],
)
async def test_bad_signals_and_bad_answers_get_documented_errors(api, body, status, reason) -> None:
    room = await allocate(api)
    response = await api.post(f"/v1/rooms/{room['room_id']}/signal", content=body)
    assert (response.status_code, response.json()["reason"]) == (status, reason)
    # The room plays on.
    assert (await api.post(f"/v1/rooms/{room['room_id']}/signal", json={"op": "status"})).status_code == 200


async def test_a_signal_to_a_missing_room_is_404_and_needs_the_api_key(api, lifecycle_server) -> None:
    response = await api.post("/v1/rooms/nowhere/signal", json={})
    assert (response.status_code, response.json()["reason"]) == (404, "room_not_found")
    async with httpx.AsyncClient(base_url=lifecycle_server.control_url, timeout=DEADLINE_S) as anonymous:
        assert (await anonymous.post("/v1/rooms/nowhere/signal", json={})).status_code == 401


async def test_a_kick_and_the_match_s_end_reach_the_clients_with_their_codes(api) -> None:
    room = await allocate(api)
    signal = f"/v1/rooms/{room['room_id']}/signal"
    with trio.fail_after(DEADLINE_S * 2):
        async with connect(room["ws_url"], ticket=await ticket(api, room, "ada")) as ada:
            async with connect(room["ws_url"], ticket=await ticket(api, room, "bob")) as bob:
                await bob.next_world()
                response = await api.post(signal, json={"op": "kick", "player": bob.player, "reason": "afk"})
                assert response.status_code == 200
                with pytest.raises(ClientClosed) as kicked:
                    while True:
                        await bob.next_world()
                assert (kicked.value.code, kicked.value.reason) == (Code.KICKED, "afk")
            # ada plays on, and bob is gone from her world.
            while (await ada.next_world()).entity(bob.player) is not None:
                pass
            assert (await api.post(signal, json={"op": "end", "reason": "ada wins"})).status_code == 200
            with pytest.raises(ClientClosed) as ended:
                while True:
                    await ada.next_world()
            assert (ended.value.code, ended.value.reason) == (Code.MATCH_ENDED, "ada wins")
        # The room is gone: a signal now is 404 (or 409 while it ends).
        response = await api.post(signal, json={"op": "status"})
        assert response.status_code in (404, 409)
