"""The common WebSocket upgrade, answered without wsproto.

wsproto (through h11) takes ~250 us of CPU to read an upgrade request and
write its 101 on the reference machine: a quarter of what refusing a
client costs a node over capacity (4203, tickroom.server.ops.overload), and
paid by every join. A plain, valid upgrade (what every browser and client
library sends) is read here in a few dozen microseconds; anything else
(another method or version, a repeated or malformed header, a character
h11 would refuse, a missing or wrong WebSocket header) returns None and goes
to wsproto as before, which answers it, with its error status when it is
not an upgrade at all. The server negotiates no extension and no
subprotocol (docs/protocol.md section 1), so offers of either are left
unanswered, as wsproto's answer leaves them.
"""

from __future__ import annotations

import re

from wsproto.events import Request

from tickroom.protocol.websocket_handshake import accept_for

# A request line or header line h11 would take as it is: printable ASCII
# and tabs (no other control character, no byte over 0x7e).
_PLAIN = re.compile(rb"[\t\x20-\x7e]*")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a header name (RFC 9110 token)
_ANSWERED = {b"host", b"sec-websocket-extensions", b"sec-websocket-protocol"}  # not in wsproto's extra_headers


def fast_upgrade(head: bytes) -> tuple[Request, bytes] | None:
    """``head``: an HTTP request through its blank line. The wsproto
    ``Request`` event for it and the 101 answer, or None when it is not a
    plain valid upgrade (wsproto then reads it)."""
    lines = head.split(b"\r\n")
    if len(lines) < 4 or lines[-2:] != [b"", b""]:
        return None
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[0] != b"GET" or parts[2] != b"HTTP/1.1" or not parts[1].startswith(b"/"):
        return None
    fields: dict[bytes, bytes] = {}
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[:-2]:
        if not _PLAIN.fullmatch(line):
            return None
    for line in lines[1:-2]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            return None
        name, value = name.lower(), value.strip(b" \t")
        if name in fields:
            return None  # a repeated header: wsproto's rules decide
        fields[name] = value
        headers.append((name, value))
    key = fields.get(b"sec-websocket-key")
    if (
        not fields.get(b"host")
        or not key
        or fields.get(b"upgrade", b"").lower() != b"websocket"
        or b"upgrade" not in [token.strip().lower() for token in fields.get(b"connection", b"").split(b",")]
        or fields.get(b"sec-websocket-version") != b"13"
    ):
        return None
    request = Request(
        host=fields[b"host"].decode("ascii"),
        target=parts[1].decode("ascii"),
        extensions=_listed(fields.get(b"sec-websocket-extensions")),
        extra_headers=[(name, value) for name, value in headers if name not in _ANSWERED],
        subprotocols=_listed(fields.get(b"sec-websocket-protocol")),
    )
    answer = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_for(key) + b"\r\n\r\n"
    )
    return request, answer


def _listed(value: bytes | None) -> list[str]:
    if value is None:
        return []
    return [item.strip().decode("ascii") for item in value.split(b",") if item.strip()]
