"""The upgrade read without wsproto (tickroom.server.transport.fast_upgrade)
gives what wsproto gives for every request it takes, and takes nothing that
wsproto would answer otherwise: each request here goes through both."""

from __future__ import annotations

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request
from wsproto.utilities import RemoteProtocolError

from tickroom.server.transport.fast_upgrade import fast_upgrade

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
BASE = [
    b"GET / HTTP/1.1",
    b"Host: 127.0.0.1:7350",
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Sec-WebSocket-Key: " + KEY,
    b"Sec-WebSocket-Version: 13",
]


def request(lines: list[bytes]) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n"


def with_wsproto(head: bytes) -> tuple[Request, bytes] | None:
    """wsproto's Request and 101 for ``head``; None when it does not accept it."""
    conn = WSConnection(ConnectionType.SERVER)
    try:
        conn.receive_data(head)
        events = list(conn.events())
    except RemoteProtocolError:
        return None
    found = [e for e in events if isinstance(e, Request)]
    if not found:
        return None
    return found[0], conn.send(AcceptConnection())


BROWSER = [
    *BASE[:3],
    b"Connection: keep-alive, Upgrade",
    b"Origin: https://game.example",
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    b"Sec-WebSocket-Protocol: a, b",
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64)",
    *BASE[4:],
]


@pytest.mark.parametrize(
    "lines",
    [
        BASE,
        BROWSER,
        [b"GET /play?room=a%20b HTTP/1.1", *BASE[1:]],
        [BASE[0], b"host: example.com", b"UPGRADE: WebSocket", b"connection: upgrade", *BASE[4:]],
        [*BASE[:5], b"Sec-WebSocket-Version:13"],
        [*BASE, b"X-Empty:"],
        [*BASE, b"X-Tab:\tvalue\t"],
    ],
)
def test_a_plain_upgrade_is_read_as_wsproto_reads_it(lines):
    head = request(lines)
    fast = fast_upgrade(head)
    assert fast is not None
    assert fast == with_wsproto(head)


@pytest.mark.parametrize(
    "lines",
    [
        [b"POST / HTTP/1.1", *BASE[1:]],
        [b"GET / HTTP/1.0", *BASE[1:]],
        [b"GET http://example.com/ HTTP/1.1", *BASE[1:]],  # absolute form: wsproto's call
        [BASE[0], *BASE[2:]],  # no Host
        [*BASE[:4], *BASE[5:]],  # no key
        [*BASE[:5], b"Sec-WebSocket-Version: 8"],  # wsproto answers 426
        [BASE[0], BASE[1], b"Upgrade: h2c", *BASE[3:]],
        [BASE[0], BASE[1], BASE[2], b"Connection: keep-alive", *BASE[4:]],
        [*BASE, b"Host: twice.example"],  # a repeated header
        [*BASE, b" folded: continuation"],
        [*BASE, b"Bad Name: x"],
        [*BASE, b"X-Bin: \x00"],
        [*BASE, "X-Latin: caf\u00e9".encode("latin-1")],
        [*BASE, b"NoColon"],
    ],
)
def test_anything_else_goes_to_wsproto(lines):
    assert fast_upgrade(request(lines)) is None
