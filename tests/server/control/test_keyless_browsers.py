"""The keyless control API (loopback only) against web pages in the
operator's browser (issue 16, item 8), and bad input that must be a 400,
never a 500 (item 9). A real in-process node serves the API on loopback;
httpx sends what a browser would (Origin, Sec-Fetch-Site, a rebound Host)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickroom.server.control.auth import body_refusal, browser_refusal, is_loopback_name

from .conftest import DEADLINE_S, control_server


@pytest.fixture
async def keyless() -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with control_server(api_key=None, ticket_secret=None) as server:
        async with httpx.AsyncClient(base_url=server.control_url, timeout=DEADLINE_S) as client:
            yield client, server.control_url.removeprefix("http://")


async def _still_taking_rooms(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).json()["ready"]


async def test_a_cross_site_post_cannot_drain_the_node(keyless) -> None:
    client, _ = keyless
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame or a file: page
        {"Origin": "http://localhost:8080"},  # another local web app is another origin too
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        response = await client.post("/v1/drain", headers=headers)
        assert response.status_code == 403, headers
        assert response.json()["reason"] == "cross_origin"
        response = await client.post(
            "/v1/rooms", headers={**headers, "Content-Type": "application/json"}, content=b"{}"
        )
        assert response.status_code == 403, headers
    assert await _still_taking_rooms(client)
    assert (await client.get("/v1/rooms")).json()["rooms"] == []


async def test_a_rebound_host_name_is_refused(keyless) -> None:
    client, _ = keyless
    for path in ("/v1/rooms", "/metrics", "/healthz"):
        response = await client.get(path, headers={"Host": "attacker.example:7351"})
        assert response.status_code == 403, path
        assert response.json()["reason"] == "forbidden_host"
    assert (await client.post("/v1/drain", headers={"Host": "attacker.example"})).status_code == 403
    assert await _still_taking_rooms(client)


async def test_a_body_must_be_declared_json(keyless) -> None:
    client, _ = keyless
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = await client.post("/v1/rooms", headers=headers, content=b'{"max_players": 2}')
        assert response.status_code == 415, content_type
        assert response.json()["reason"] == "unsupported_media_type"
    assert (await client.get("/v1/rooms")).json()["rooms"] == []
    ok = await client.post("/v1/rooms", headers={"Content-Type": "application/json; charset=utf-8"}, content=b"{}")
    assert ok.status_code == 201


async def test_scripts_and_the_apis_own_pages_get_in(keyless) -> None:
    client, own = keyless
    assert (await client.post("/v1/rooms", json={"max_players": 2})).status_code == 201  # curl, a script
    for host in (own, f"localhost:{own.rpartition(':')[2]}"):
        same_origin = {"Host": host, "Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
        assert (await client.get("/v1/rooms", headers=same_origin)).status_code == 200
        assert (await client.post("/v1/rooms", headers=same_origin, json={})).status_code == 201
    assert (await client.post("/v1/drain")).status_code == 202  # no body: no content type needed


async def test_with_a_key_the_api_answers_any_host() -> None:
    # A keyed API is reached by name from other machines; a browser cannot add the key.
    async with control_server() as server:
        async with httpx.AsyncClient(base_url=server.control_url, timeout=DEADLINE_S) as client:
            headers = {"Host": "game-a.example:7351", "Authorization": "Bearer test-api-key"}
            assert (await client.get("/v1/rooms", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("limit=²", None),
        ("limit=٣", None),  # an Arabic-Indic digit: isdigit() is True, int() takes it, the API must not
        ("limit=99999999999999999999", None),
        ("limit=-1", None),
        ("limit=", None),
        ("cursor=%FF%FE", None),
        (None, b"[" * 50_000 + b"]" * 50_000),
        (None, b'{"labels":' * 20_000 + b"1" + b"}" * 20_000),
        (None, b'{"max_players": 1e999}'),
        (None, b'{"seed": ' + b"9" * 5000 + b"}"),
        (None, b"\xff\xfe{}"),
    ],
)
async def test_bad_input_is_a_400(keyless, query, body) -> None:
    client, _ = keyless
    if body is None:
        response = await client.get(f"/v1/rooms?{query}")
    else:
        response = await client.post("/v1/rooms", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 413), response.text  # 413: over the 64 KiB body limit
    assert response.json()["reason"] in ("bad_request", "too_large")


HEADER_NAMES = st.sampled_from([b"host", b"origin", b"sec-fetch-site", b"content-type"])
HEADER_VALUES = st.binary(max_size=40) | st.sampled_from(
    [b"127.0.0.1:1", b"[::1]:2", b"localhost", b"a.localhost.", b"http://127.0.0.1:1", b"null", b"[", b"::1", b":"]
)


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=4), body=st.binary(max_size=20))
def test_the_header_checks_never_raise(headers, body) -> None:
    refusal = browser_refusal(headers)
    assert refusal is None or refusal.status == 403
    refusal = body_refusal(headers, body)
    assert refusal is None or refusal.status == 415


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:7351", True),
        ("[::1]:7351", True),
        ("localhost", True),
        ("LOCALHOST.:80", True),
        ("console.localhost:7351", True),
        ("127.9.9.9", True),
        ("localhost.evil.example", False),
        ("10.0.0.1:7351", False),
        ("evil.example", False),
        ("[::ffff:10.0.0.1]", False),
        ("", False),
    ],
)
def test_loopback_names(host: str, loopback: bool) -> None:
    assert is_loopback_name(host) is loopback
