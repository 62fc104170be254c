"""/metrics: Prometheus text that parses, with the named metrics moving as
clients play, and counters that survive the end of rooms and connections."""

from __future__ import annotations

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import raw_client
from tickroom.client import connect
from tickroom.protocol.errors import Code

from .conftest import AUTH, DEADLINE_S, control_server


async def scrape(anonymous) -> dict[tuple[str, tuple], float]:
    response = await anonymous.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_metrics_move_when_clients_play(http, anonymous, server) -> None:
    room = (await http.post("/v1/rooms", json={"max_players": 2})).json()
    tickets = (await http.post(f"/v1/rooms/{room['room_id']}/tickets", json={"players": ["a", "b"]})).json()["tickets"]
    before = await scrape(anonymous)
    async with connect(room["ws_url"], ticket=tickets["a"]) as a, connect(room["ws_url"], ticket=tickets["b"]) as b:
        with trio.fail_after(5):
            for _ in range(10):
                await a.send_input(mx=1.0)
                await b.send_input(my=-1.0)
                await a.next_world()
        during = await scrape(anonymous)
    async with raw_client(f"ws://127.0.0.1:{server.ports[0]}/") as raw:
        await raw.ws.send_message(raw.session.join(ticket="v1.garbage"))
        await raw.expect_close(Code.INVALID_TICKET)

    assert value(during, "tickroom_rooms") == 1
    assert value(during, "tickroom_players") == 2 and value(during, "tickroom_players_connected") == 2
    assert value(during, "tickroom_connections") == 2
    assert value(during, "tickroom_allocations_total", result="created") == 1
    assert value(during, "tickroom_tickets_issued_total") == 2
    assert value(during, "tickroom_tickets_accepted_total") == 2
    for name in ("tickroom_ticks_total", "tickroom_bytes_sent_total", "tickroom_bytes_received_total",
                 "tickroom_messages_sent_total", "tickroom_messages_received_total", "tickroom_inputs_accepted_total",
                 "tickroom_deltas_encoded_total"):  # fmt: skip
        assert value(during, name) > value(before, name), name
    assert value(during, "tickroom_inputs_rejected_total", reason="stale") >= 0
    assert value(during, "tickroom_tick_overruns_total") >= 0
    ticks = value(during, "tickroom_ticks_total")
    assert value(during, "tickroom_tick_duration_seconds_count") == ticks
    assert value(during, "tickroom_tick_duration_seconds_bucket", le="+Inf") == ticks
    assert 0 < value(during, "tickroom_tick_duration_seconds_sum") < ticks * 0.05
    assert value(during, "tickroom_room_tick_duration_seconds_count", room=room["room_id"]) == ticks

    # The clients left and the room may end: counters never go down.
    await http.delete(f"/v1/rooms/{room['room_id']}")
    with trio.fail_after(5):
        while server.registry.rooms():
            await trio.sleep(0.01)
    after = await scrape(anonymous)
    assert value(after, "tickroom_rooms") == 0 and value(after, "tickroom_connections") == 0
    assert value(after, "tickroom_tickets_refused_total", reason="malformed") == 1
    for name in ("tickroom_ticks_total", "tickroom_bytes_sent_total", "tickroom_messages_received_total",
                 "tickroom_inputs_accepted_total", "tickroom_tick_duration_seconds_count"):  # fmt: skip
        assert value(after, name) >= value(during, name), name
    assert ("tickroom_room_tick_duration_seconds_count", (("room", room["room_id"]),)) not in after


async def test_each_server_has_its_own_registry(http, anonymous) -> None:
    await http.post("/v1/rooms", json={})
    async with control_server() as other:
        assert b"tickroom_rooms 0.0" in other.metrics.render()
    assert value(await scrape(anonymous), "tickroom_rooms") == 1


async def test_draining_shows_in_the_metrics(http, anonymous) -> None:
    assert value(await scrape(anonymous), "tickroom_draining") == 0
    await http.post("/v1/drain")
    assert value(await scrape(anonymous), "tickroom_draining") == 1
    assert (await http.post("/v1/rooms", json={})).status_code == 503
    samples = await scrape(anonymous)
    assert value(samples, "tickroom_allocations_total", result="no_capacity") == 1
    assert value(samples, "tickroom_allocations_total", result="created") == 0


async def scrape_until(anonymous, done, what: str) -> dict[tuple[str, tuple], float]:
    """Scrape until ``done(samples)``: a refusal is counted once the refused
    connection has closed, a moment after the client saw the close."""
    with trio.move_on_after(DEADLINE_S):
        while True:
            samples = await scrape(anonymous)
            if done(samples):
                return samples
            await trio.sleep(0.02)
    raise AssertionError(f"no {what} in the metrics within {DEADLINE_S} s")


@pytest.mark.parametrize(
    ("cap", "code"),
    [("max_connections", Code.SERVER_FULL), ("max_connections_per_ip", Code.TOO_MANY_CONNECTIONS)],
)
async def test_connections_refused_are_counted_by_close_code(cap, code) -> None:
    async with (
        control_server(**{cap: 1}) as node,
        httpx.AsyncClient(base_url=node.control_url, headers=AUTH, timeout=DEADLINE_S) as http,
        httpx.AsyncClient(base_url=node.control_url, timeout=DEADLINE_S) as anonymous,
    ):
        game_url = f"ws://127.0.0.1:{node.ports[0]}/"
        refused = "tickroom_connections_refused_total"
        before = await scrape(anonymous)
        # Both admission codes are there from the start, at 0.
        assert value(before, refused, code="SERVER_FULL") == value(before, refused, code="TOO_MANY_CONNECTIONS") == 0

        # A join the registry refuses: a ticket that is not one.
        async with raw_client(game_url) as raw:
            await raw.ws.send_message(raw.session.join(ticket="v1.garbage"))
            await raw.expect_close(Code.INVALID_TICKET)
        await scrape_until(anonymous, lambda s: (refused, (("code", "INVALID_TICKET"),)) in s, "the join refusal")

        # The cap: one player holds the only connection allowed; the next
        # connection is refused at admission with the cap's code.
        room = (await http.post("/v1/rooms", json={})).json()
        tickets = (await http.post(f"/v1/rooms/{room['room_id']}/tickets", json={"players": ["a"]})).json()["tickets"]
        async with connect(room["ws_url"], ticket=tickets["a"]) as player:
            await player.next_world()
            async with raw_client(game_url) as raw:
                await raw.expect_close(code)
            samples = await scrape_until(anonymous, lambda s: value(s, refused, code=code.name) == 1, "the refusal")
        assert value(samples, refused, code="INVALID_TICKET") == 1
        other = "TOO_MANY_CONNECTIONS" if code == Code.SERVER_FULL else "SERVER_FULL"
        assert value(samples, refused, code=other) == 0
        # The refusal touched nobody else: the player is still in.
        assert value(samples, "tickroom_players_connected") == 1
