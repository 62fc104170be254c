"""TLS and secrets against real server processes: wss:// end to end with a
certificate the test makes, and the Sentry DSN kept out of --help and logs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.certs import make_self_signed
from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession
from tickroom.protocol.errors import Code

from .harness import REPO, RawClient, running_server

pytestmark = pytest.mark.integration

SECRET = "s3cr3tk3y0123456789"  # noqa: S105 - a made-up value the test looks for in logs
DSN = f"https://{SECRET}@127.0.0.1:9/42"  # port 9 (discard): nothing is ever sent in these tests


async def test_wss_with_a_self_signed_certificate(tmp_path):
    cert = make_self_signed(tmp_path)
    with running_server("--tls-cert", str(cert.cert_file), "--tls-key", str(cert.key_file)) as server:
        assert server.url.startswith("wss://localhost:")
        session = ClientSession()
        async with open_websocket_url(server.url, ssl_context=cert.client_context()) as ws:
            await ws.send_message(session.join(room="tls", name="secure"))
            snapshots = 0
            with trio.fail_after(10):
                while snapshots < 10:
                    msg = session.receive(await ws.get_message())
                    if isinstance(msg, m.Snapshot):
                        snapshots += 1
                        await ws.send_message(session.input(mx=1.0))
            assert session.welcome is not None and session.welcome.room == "tls"
            assert session.world.entity(session.welcome.player) is not None
            assert session.last_processed_seq >= 1


async def test_a_too_big_frame_over_tls_is_closed_4002_not_reset(tmp_path):
    # The server refuses the frame from its header, then reads and drops the
    # rest while it closes: a socket closed with unread data is reset, and
    # the reset would destroy the close frame (the client would see 1006).
    cert = make_self_signed(tmp_path)
    with running_server("--tls-cert", str(cert.cert_file), "--tls-key", str(cert.key_file)) as server:
        async with open_websocket_url(server.url, ssl_context=cert.client_context()) as ws:
            raw = RawClient(ws)
            await raw.join("tls-big", name="big")
            try:
                await ws.send_message(b"\x00" * 2**20)
            except ConnectionClosed:
                pass
            with trio.fail_after(10):
                await raw.expect_close(Code.MESSAGE_TOO_BIG)


def test_a_missing_certificate_stops_the_server_at_start(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tickroom.server", "serve", "--port", "0", "--tls-cert", str(tmp_path / "no.pem"), "--tls-key", str(tmp_path / "no.key")],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2 and "TLS" in result.stderr


def test_help_never_shows_the_dsn_from_the_environment():
    env = {**os.environ, "PYTHONPATH": str(REPO), "TICKROOM_SENTRY_DSN": DSN}
    result = subprocess.run(
        [sys.executable, "-m", "tickroom.server", "serve", "--help"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and "--sentry-dsn-file" in result.stdout
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("how", ["file", "env", "invalid-in-env"])
def test_the_dsn_never_appears_in_the_log(tmp_path, monkeypatch, how):
    args = ["--log-level", "DEBUG"]
    if how == "file":
        dsn_file = tmp_path / "dsn"
        dsn_file.write_text(DSN + "\n")
        args += ["--sentry-dsn-file", str(dsn_file)]
    elif how == "env":
        monkeypatch.setenv("TICKROOM_SENTRY_DSN", DSN)
    else:
        monkeypatch.setenv("TICKROOM_SENTRY_DSN", f"not a dsn {SECRET}")
    with running_server(*args) as server:
        pass
    log = server.log()
    assert "listening on" in log
    assert ("Sentry disabled" in log) == (how == "invalid-in-env")
    assert SECRET not in log
