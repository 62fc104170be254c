"""Joins with tickets over real sockets: the matchmaker flow in process, and
every refusal answered with its documented code, then a close."""

from __future__ import annotations

import time

import pytest
import trio

from tests.integration.harness import raw_client
from tickroom.client import connect
from tickroom.protocol.errors import Code
from tickroom.protocol.tickets import sign_ticket

from .conftest import TICKET_SECRET, control_server

SECRET = TICKET_SECRET.encode()


async def allocate_with_tickets(http, players, **body):
    room = (await http.post("/v1/rooms", json=body)).json()
    tickets = (await http.post(f"/v1/rooms/{room['room_id']}/tickets", json={"players": players})).json()
    return room, tickets["tickets"]


async def test_players_join_with_their_tickets_and_play(http, server) -> None:
    room, tickets = await allocate_with_tickets(http, ["alice", "bob"], max_players=2)
    url = room["ws_url"]
    async with (
        connect(url, ticket=tickets["alice"], name="ignored") as alice,
        connect(url, ticket=tickets["bob"]) as bob,
    ):
        assert alice.welcome.room == bob.welcome.room == room["room_id"]
        names = {pid: name for pid, name in bob.welcome.players}
        assert names[bob.player] == "bob" and "ignored" not in names.values()
        with trio.fail_after(5):
            for _ in range(5):
                await alice.send_input(mx=1.0)
                await bob.next_world()
    info = (await http.get(f"/v1/rooms/{room['room_id']}")).json()
    assert {p["name"] for p in info["players"]} <= {"alice", "bob"}
    assert server.registry.admission.accepted == 2


async def refused_with(url: str, code: Code, **join) -> None:
    async with raw_client(url) as raw:
        await raw.ws.send_message(raw.session.join(**join))
        with trio.fail_after(5):
            await raw.expect_close(code)
        assert [e.code for e in raw.errors] == [code]


def url_of(server) -> str:
    return f"ws://127.0.0.1:{server.ports[0]}/"


async def test_a_missing_ticket_is_refused(server, http) -> None:
    room, _ = await allocate_with_tickets(http, ["a"])
    await refused_with(url_of(server), Code.INVALID_TICKET, room=room["room_id"], name="a")
    await refused_with(url_of(server), Code.INVALID_TICKET, name="quick-match")


async def test_forged_expired_wrong_room_and_malformed_tickets_are_refused(server, http) -> None:
    room, tickets = await allocate_with_tickets(http, ["a"])
    other, _ = await allocate_with_tickets(http, ["a"])
    room_id, now = room["room_id"], int(time.time())
    cases = [
        (Code.INVALID_TICKET, {"ticket": sign_ticket(b"not the secret", room_id, "a", now + 60, "n1")}),
        (Code.INVALID_TICKET, {"ticket": "v1.two-parts"}),
        (Code.INVALID_TICKET, {"ticket": tickets["a"][:-2] + "xx"}),
        (Code.TICKET_EXPIRED, {"ticket": sign_ticket(SECRET, room_id, "a", now - 60, "n2")}),
        (Code.TICKET_WRONG_ROOM, {"ticket": tickets["a"], "room": other["room_id"]}),
    ]
    for code, join in cases:
        await refused_with(url_of(server), code, **join)
    refused = server.registry.admission.refused
    assert (refused["forged"], refused["malformed"], refused["expired"], refused["wrong_room"]) == (2, 1, 1, 1)


async def test_a_ticket_admits_one_connection(server, http) -> None:
    room, tickets = await allocate_with_tickets(http, ["a"])
    async with connect(room["ws_url"], ticket=tickets["a"]):
        await refused_with(url_of(server), Code.INVALID_TICKET, ticket=tickets["a"])


async def test_a_ticket_for_a_room_not_here_is_room_not_found(server) -> None:
    ticket = sign_ticket(SECRET, "arena-elsewhere", "a", int(time.time()) + 60, "n")
    await refused_with(url_of(server), Code.ROOM_NOT_FOUND, ticket=ticket)
    await refused_with(url_of(server), Code.ROOM_NOT_FOUND, ticket=ticket)  # not used up


async def test_a_full_room_does_not_use_the_ticket_up(server, http) -> None:
    room, tickets = await allocate_with_tickets(http, ["a", "b"], max_players=1)
    async with connect(room["ws_url"], ticket=tickets["a"]):
        await refused_with(url_of(server), Code.ROOM_FULL, ticket=tickets["b"])
    with trio.fail_after(5):
        while server.registry.get(room["room_id"]).players:  # a's seat frees at the next tick
            await trio.sleep(0.01)
    async with connect(room["ws_url"], ticket=tickets["b"]) as b:
        assert b.welcome.room == room["room_id"]


@pytest.mark.parametrize("allow", [True, False])
async def test_client_rooms_default_off_with_tickets_explicit_on_allowed(allow) -> None:
    async with control_server(allow_client_rooms=allow) as server:
        if allow:
            async with connect(url_of(server), room="dev-room", name="dev") as client:
                assert client.welcome.room == "dev-room"
        else:
            await refused_with(url_of(server), Code.INVALID_TICKET, room="dev-room", name="dev")


async def test_two_tickets_for_one_player_seat_one_avatar(server, http) -> None:
    # docs/protocol.md 3.9: a ticket's "p" is one player in its room.
    room, first = await allocate_with_tickets(http, ["alice"])
    second = (await http.post(f"/v1/rooms/{room['room_id']}/tickets", json={"players": ["alice"]})).json()["tickets"]
    assert first["alice"] != second["alice"]  # another nonce: not a reused ticket
    async with connect(room["ws_url"], ticket=first["alice"]) as alice:
        await refused_with(url_of(server), Code.INVALID_TICKET, ticket=second["alice"])
        assert [p.name for p in server.registry.get(room["room_id"]).players] == ["alice"]
        await alice.next_world()
    # "leave" frees the seat at once; the second ticket was not used up by its refusal.
    with trio.fail_after(5):
        while server.registry.get(room["room_id"]).players:
            await trio.sleep(0.01)
    async with connect(room["ws_url"], ticket=second["alice"]) as again:
        assert again.welcome.room == room["room_id"]
