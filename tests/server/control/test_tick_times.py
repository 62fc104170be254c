"""GET /v1/rooms/{id}/tick-times, the console's chart data: the durations of
the room's ticks, only the new ones with ``after``; bad input is a 400,
an unknown room a 404, and it needs the API key."""

from __future__ import annotations

import trio

from .conftest import DEADLINE_S


async def test_tick_times_all_then_only_the_new_ones(http) -> None:
    room = (await http.post("/v1/rooms", json={})).json()["room_id"]
    path = f"/v1/rooms/{room}/tick-times"
    with trio.fail_after(DEADLINE_S):
        while (first := (await http.get(path)).json())["timed"] < 3:
            await trio.sleep(0.02)
    assert first["room_id"] == room and first["tick"] >= 1
    assert len(first["tick_ms"]) == first["timed"]  # under 2048 ticks: all of them
    assert all(ms >= 0 for ms in first["tick_ms"])
    with trio.fail_after(DEADLINE_S):
        while (later := (await http.get(path, params={"after": first["timed"]})).json())["timed"] == first["timed"]:
            await trio.sleep(0.02)
    assert len(later["tick_ms"]) == later["timed"] - first["timed"]
    current = (await http.get(path, params={"after": 10**12})).json()
    assert current["tick_ms"] == []  # ahead of the room: nothing new


async def test_tick_times_refuses_bad_input(http, anonymous) -> None:
    room = (await http.post("/v1/rooms", json={})).json()["room_id"]
    for params in ({"after": "-1"}, {"after": "x"}, {"after": str(2**60)}, {"since": "1"}):
        answer = await http.get(f"/v1/rooms/{room}/tick-times", params=params)
        assert answer.status_code == 400 and answer.json()["reason"] == "bad_request", params
    assert (await http.get("/v1/rooms/nope/tick-times")).status_code == 404
    assert (await anonymous.get(f"/v1/rooms/{room}/tick-times")).status_code == 401
