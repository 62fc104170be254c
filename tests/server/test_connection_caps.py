"""Who gets in, against a real in-process server on 127.0.0.1: the total and
per-address connection caps, the Origin allowlist, and wss:// with a
certificate made by the test (the handshake bounded by the handshake timeout).
"""

from __future__ import annotations

import ssl

import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from tests.certs import make_self_signed
from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession
from tickroom.protocol.errors import Code
from tickroom.server.transport import listener

from .test_connection_limits import DEADLINE, SHORT, joined, read_until_closed, running_server, url, wait_for


async def test_the_connection_over_the_total_cap_gets_server_full():
    async with running_server(max_connections=2) as server:
        async with open_websocket_url(url(server)) as a, open_websocket_url(url(server)) as b:
            await joined(a, ClientSession(), "cap", "a")
            await joined(b, ClientSession(), "cap", "b")
            async with open_websocket_url(url(server)) as extra:
                received, code = await read_until_closed(extra, ClientSession())
            assert code == Code.SERVER_FULL == 4201
            assert [(type(e), e.code) for e in received] == [(m.Error, 4201)]
            assert "maximum of 2 connections" in received[0].message
            assert server.refused_connections == 1
            # The admitted ones are untouched.
            assert len(server.registry.get("cap").players) == 2
        # Once they are gone, there is room again.
        await wait_for(lambda: not server.connections, "the clients to go")
        async with open_websocket_url(url(server)) as again:
            await joined(again, ClientSession(), "cap", "again")


async def test_the_connection_over_the_per_address_cap_gets_too_many_connections():
    async with running_server(max_connections_per_ip=1) as server:
        async with open_websocket_url(url(server)) as first:
            await joined(first, ClientSession(), "per-ip", "first")
            async with open_websocket_url(url(server)) as second:
                received, code = await read_until_closed(second, ClientSession())
            assert code == Code.TOO_MANY_CONNECTIONS == 4011
            assert [e.code for e in received] == [4011]
        await wait_for(lambda: not server.connections, "the first client to go")
        async with open_websocket_url(url(server)) as third:
            await joined(third, ClientSession(), "per-ip", "third")
        assert server.refused_connections == 1


ALLOWED = "https://game.example, https://Beta.Example:8443/"


@pytest.mark.parametrize("origin", ["https://game.example", "https://beta.example:8443", None])
async def test_allowed_origins_and_non_browsers_get_in(origin):
    headers = [("Origin", origin)] if origin else []
    async with running_server(allowed_origins=ALLOWED) as server:
        async with open_websocket_url(url(server), extra_headers=headers) as ws:
            await joined(ws, ClientSession(), "origins")


@pytest.mark.parametrize("origin", ["https://evil.example", "http://game.example", "null"])
async def test_other_origins_are_refused_at_the_handshake_with_403(origin):
    async with running_server(allowed_origins=ALLOWED) as server:
        with pytest.raises(ConnectionRejected) as refused:
            with trio.fail_after(DEADLINE):
                async with open_websocket_url(url(server), extra_headers=[("Origin", origin)]):
                    pass  # pragma: no cover
        assert refused.value.status_code == 403
        await wait_for(lambda: not server.connections, "the refused connection to close")


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_self_signed(tmp_path_factory.mktemp("tls"))


async def test_wss_end_to_end_in_process(cert):
    async with running_server(tls_cert=str(cert.cert_file), tls_key=str(cert.key_file)) as server:
        session = ClientSession()
        wss = f"wss://localhost:{server.ports[0]}/"
        async with open_websocket_url(wss, ssl_context=cert.client_context()) as ws:
            await joined(ws, session, "tls-room")
            snaps = 0
            with trio.fail_after(DEADLINE):
                while snaps < 5:
                    msg = session.receive(await ws.get_message())
                    if isinstance(msg, m.Snapshot):
                        snaps += 1
                        await ws.send_message(session.input(mx=1.0))
        assert session.last_processed_seq >= 1


async def test_a_client_that_never_finishes_the_tls_handshake_is_dropped_at_the_timeout(cert):
    async with running_server(
        tls_cert=str(cert.cert_file), tls_key=str(cert.key_file), handshake_timeout_s=SHORT
    ) as server:
        stream = await trio.open_tcp_stream("127.0.0.1", server.ports[0])
        await stream.send_all(b"\x16\x03\x01")  # the start of a ClientHello, and nothing more
        await wait_for(lambda: len(server.connections) == 1, "the server to accept")
        (conn,) = server.connections
        await wait_for(lambda: conn.closed, "the handshake timeout")
        with trio.fail_after(DEADLINE):
            while await stream.receive_some():
                pass
        await stream.aclose()


async def test_plain_websocket_to_a_tls_port_is_refused(cert):
    async with running_server(tls_cert=str(cert.cert_file), tls_key=str(cert.key_file)) as server:
        with pytest.raises(Exception):  # noqa: B017 - trio-websocket raises several kinds
            with trio.fail_after(DEADLINE):
                async with open_websocket_url(url(server)):
                    pass  # pragma: no cover
        await wait_for(lambda: not server.connections, "the connection to close")


def test_tls_needs_both_files(cert):
    from tickroom.server.config import ServerConfig

    with pytest.raises(ValueError):
        ServerConfig(tls_cert=str(cert.cert_file)).ssl_context  # noqa: B018
    assert isinstance(
        ServerConfig(tls_cert=str(cert.cert_file), tls_key=str(cert.key_file)).ssl_context, ssl.SSLContext
    )
    assert ServerConfig().ssl_context is None


async def test_past_the_refusals_in_progress_a_refused_connection_is_just_closed(monkeypatch):
    monkeypatch.setattr(listener, "MAX_REFUSING", 0)
    async with running_server(max_connections=1) as server:
        async with open_websocket_url(url(server)) as ws:
            await joined(ws, ClientSession(), "refusing")
            stream = await trio.open_tcp_stream("127.0.0.1", server.ports[0])
            with trio.fail_after(DEADLINE):
                assert await stream.receive_some() == b""  # closed before any upgrade
            await stream.aclose()
            assert server.refused_connections == 1
