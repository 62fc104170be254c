"""Property check of the control API (in the spirit of schemathesis): no
generated request, however wrong, gets a 500. The ASGI application is driven
directly, without sockets, against a real registry."""

from __future__ import annotations

import json

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from tickroom.server.config import ServerConfig
from tickroom.server.control.api import ControlAPI
from tickroom.server.node import GameServer
from tickroom.server.rooms.placement import LocalPlacement

from .conftest import API_KEY

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(["game", "max_players", "tick_rate", "seed", "labels", "idempotency_key", "players", "ttl_s"])
BODIES = (
    JSON.map(lambda v: json.dumps(v).encode())
    | st.dictionaries(FIELDS, JSON, max_size=4).map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=40)
)
PATHS = st.sampled_from(
    [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/rooms",
        "/v1/rooms/{id}",
        "/v1/rooms/{id}/tickets",
        "/v1/drain",
        "/v1/rooms/{id}/x",
    ]
)
QUERY = st.lists(
    st.tuples(st.sampled_from(["game", "label", "limit", "cursor", "reason", "x"]), st.text(max_size=12)), max_size=3
)


async def call(app: ControlAPI, method: str, path: str, query: bytes, body: bytes, headers) -> int:
    sent = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "query_string": query, "headers": headers}
    await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start" and sent[-1]["type"] == "http.response.body"
    return sent[0]["status"]


@settings(max_examples=100)
@given(
    requests=st.lists(
        st.tuples(
            st.sampled_from(["GET", "POST", "DELETE", "PUT", "HEAD"]),
            PATHS,
            st.text(max_size=70),
            QUERY,
            BODIES,
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_no_request_gets_a_500(requests) -> None:
    from urllib.parse import quote, urlencode

    async def main() -> None:
        config = ServerConfig(host="127.0.0.1", port=0, api_key=API_KEY, ticket_secret="s", max_rooms=3)
        server = GameServer(config)
        async with trio.open_nursery() as nursery:
            await nursery.start(server.registry.run)
            server.health.ports = [1]
            app = server.control_api(LocalPlacement(server.registry, node_id="n", ws_url="ws://n:1"))
            room = server.registry.create()
            for method, path, room_id, query, body, auth in requests:
                path = path.replace("{id}", quote(room_id, safe="") if room_id else room.room_id)
                headers = [(b"authorization", f"Bearer {API_KEY}".encode())] if auth else []
                status = await call(app, method, path, urlencode(query).encode(), body, headers)
                assert status != 500, (method, path, query, body)
            nursery.cancel_scope.cancel()

    trio.run(main)
