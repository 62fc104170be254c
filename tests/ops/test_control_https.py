"""https on the control port, end to end: a real node serves its control API
over TLS with a certificate the test makes (--control-tls-cert/-key); a
client that trusts it gets the API (auth included), one that does not, or
that speaks plain http, gets nothing; a bad pair stops the node at start."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.certs import make_self_signed
from tests.integration.harness import REPO, running_server

pytestmark = pytest.mark.integration

API_KEY = "https-test-key-0123456789"


async def test_control_api_over_https(tmp_path) -> None:
    cert = make_self_signed(tmp_path)
    with running_server(
        "--api-key", API_KEY, "--control-tls-cert", str(cert.cert_file), "--control-tls-key", str(cert.key_file)
    ) as node:
        assert node.control_url.startswith("https://127.0.0.1:")
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=node.control_url, verify=cert.client_context()) as api:
            assert (await api.get("/healthz")).json() == {"status": "ok"}
            assert "tickroom_rooms" in (await api.get("/metrics")).text
            assert (await api.get("/v1/rooms")).status_code == 401
            created = await api.post("/v1/rooms", json={"labels": {"via": "https"}}, headers=headers)
            assert created.status_code == 201
            listed = (await api.get("/v1/rooms", headers=headers)).json()["rooms"]
            assert [r["room_id"] for r in listed] == [created.json()["room_id"]]
            # The demo page and its modules come over the same TLS port.
            assert (await api.get("/play")).status_code == 200

        # A client that does not trust the certificate refuses the server.
        async with httpx.AsyncClient(base_url=node.control_url) as untrusting:
            with pytest.raises(httpx.ConnectError):
                await untrusting.get("/healthz")
        # Plain http to the TLS port gets no API answer.
        plain_url = node.control_url.replace("https://", "http://")
        async with httpx.AsyncClient(base_url=plain_url) as plain:
            try:
                answer = await plain.get("/healthz")
            except httpx.TransportError:
                pass
            else:
                assert answer.status_code != 200


def test_a_key_that_does_not_match_stops_the_node_at_start(tmp_path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "other").mkdir()
    one, other = make_self_signed(tmp_path / "one"), make_self_signed(tmp_path / "other")
    result = subprocess.run(
        [sys.executable, "-m", "tickroom.server", "serve", "--port", "0", "--control-port", "0",
         "--control-tls-cert", str(one.cert_file), "--control-tls-key", str(other.key_file)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "control API TLS" in result.stderr


def test_a_cert_without_its_key_stops_the_node_at_start(tmp_path) -> None:
    cert = make_self_signed(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "tickroom.server", "serve", "--port", "0", "--control-tls-cert", str(cert.cert_file)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--control-tls-key" in result.stderr
