"""DELETE /v1/rooms/{id}/players/{player}: the kicked client is closed with
4108 KICKED and the operator's reason, its avatar leaves, its session is
void (a rejoin gets 4110), and the other player plays on; unknown rooms and
players are 404, a bad reason 400."""

from __future__ import annotations

import pytest
import trio

from tickroom.client import ClientClosed, JoinFailed, connect, rejoin
from tickroom.protocol.errors import Code

from .test_ticket_joins import allocate_with_tickets


async def test_kicked_player_is_closed_removed_and_cannot_rejoin(http) -> None:
    room, tickets = await allocate_with_tickets(http, ["alice", "bob"], max_players=2)
    room_id = room["room_id"]
    async with connect(room["ws_url"], ticket=tickets["bob"]) as bob:
        kicked = None
        async with connect(room["ws_url"], ticket=tickets["alice"]) as alice:
            await alice.next_world()
            answer = await http.delete(f"/v1/rooms/{room_id}/players/{alice.player}", params={"reason": "cheating"})
            assert answer.status_code == 202 and answer.json()["player"] == alice.player
            with trio.fail_after(5), pytest.raises(ClientClosed) as closed:
                while True:
                    await alice.send_input(mx=1.0)
                    await alice.next_world()
            kicked = alice
        assert closed.value.code == Code.KICKED and "cheating" in closed.value.reason
        with trio.fail_after(5), pytest.raises(JoinFailed) as refused:
            async with rejoin(kicked):
                pass
        assert refused.value.code == Code.SESSION_UNKNOWN
        # The room goes on with bob alone.
        with trio.fail_after(5):
            while kicked.player in {e for e in (await bob.next_world()).ids}:
                pass
        info = (await http.get(f"/v1/rooms/{room_id}")).json()
        assert [p["name"] for p in info["players"]] == ["bob"] and info["status"] == "open"


async def test_kick_refuses_unknown_rooms_players_and_bad_reasons(http) -> None:
    room, _ = await allocate_with_tickets(http, ["carol"])
    room_id = room["room_id"]
    assert (await http.delete("/v1/rooms/nope/players/1")).json()["reason"] == "room_not_found"
    assert (await http.delete(f"/v1/rooms/{room_id}/players/99")).json()["reason"] == "player_not_found"
    assert (await http.delete(f"/v1/rooms/{room_id}/players/abc")).status_code == 404
    bad = await http.delete(f"/v1/rooms/{room_id}/players/1", params={"reason": ""})
    assert bad.status_code == 400
