"""The control API's bearer key: who gets in, and how keys are compared."""

from __future__ import annotations

import hmac

import pytest

from tickroom.server.control import auth
from tickroom.server.control.auth import InsecureControlAPI, authorized, check_exposure

from .conftest import API_KEY, control_server


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}, {"Authorization": f"Basic {API_KEY}"}],
)
async def test_a_missing_or_wrong_key_is_401(anonymous, headers) -> None:
    for method, path in [("POST", "/v1/rooms"), ("GET", "/v1/rooms"), ("GET", "/v1/rooms/x"), ("POST", "/v1/drain")]:
        response = await anonymous.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.json()["reason"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert API_KEY not in response.text


async def test_the_right_key_gets_in(http) -> None:
    assert (await http.get("/v1/rooms")).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_health_and_metrics_need_no_key(anonymous, path) -> None:
    assert (await anonymous.get(path)).status_code == 200


def test_keys_are_compared_in_constant_time(monkeypatch) -> None:
    calls = []
    original = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert authorized([(b"authorization", b"Bearer k1")], "k1")
    assert not authorized([(b"authorization", b"Bearer k2")], "k1")
    assert not authorized([], "k1")
    assert len(calls) == 3  # every outcome, the missing header too


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "10.1.2.3", "example.com"])
def test_without_a_key_only_loopback_is_allowed(host) -> None:
    with pytest.raises(InsecureControlAPI) as caught:
        check_exposure(host, None)
    assert "--api-key" in str(caught.value)
    check_exposure(host, "a-key")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "127.3.4.5"])
def test_loopback_needs_no_key(host) -> None:
    check_exposure(host, None)


async def test_without_a_key_on_loopback_everything_is_open() -> None:
    import httpx

    async with control_server(api_key=None) as server, httpx.AsyncClient(base_url=server.control_url) as client:
        assert (await client.get("/v1/rooms")).status_code == 200


def test_the_server_refuses_to_expose_an_open_api() -> None:
    from tickroom.server.config import ServerConfig
    from tickroom.server.node import GameServer

    with pytest.raises(InsecureControlAPI):
        GameServer(ServerConfig(host="0.0.0.0", control_host="0.0.0.0", control_port=0))
    GameServer(ServerConfig(host="0.0.0.0", control_port=0))  # no key: the API stays on loopback
    GameServer(ServerConfig(host="0.0.0.0", control_port=None))  # no API, nothing exposed
