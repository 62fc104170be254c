"""The client's half of the WebSocket opening handshake (RFC 6455 4.1), sans-IO.

The server answers upgrades with wsproto (tickroom.server.transport.websocket);
the raw load bots (tickroom.loadtest.rawbots) and tests that drive a bare
socket need only this much: the upgrade request and a check of its answer.
The server negotiates no subprotocol and no extension (docs/protocol.md
section 1), so neither is offered. Frames after the handshake:
tickroom.protocol.websocket_frames.
"""

from __future__ import annotations

import base64
import hashlib
import os

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
MAX_RESPONSE_HEAD = 16 * 1024  # an upgrade answer longer than this is not one


class HandshakeError(Exception):
    """The server's answer to the upgrade is not a valid 101."""


def new_key() -> bytes:
    """A Sec-WebSocket-Key: 16 random bytes, base64 (RFC 6455 4.1)."""
    return base64.b64encode(os.urandom(16))


def accept_for(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept a server must answer ``key`` with."""
    return base64.b64encode(hashlib.sha1(key + GUID, usedforsecurity=False).digest())  # RFC 6455 mandates SHA-1


def upgrade_request(host: str, port: int, path: str, key: bytes) -> bytes:
    """The HTTP/1.1 upgrade request for ``path`` on ``host:port``."""
    return (
        f"GET {path or '/'} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode('ascii')}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
    ).encode("ascii")


def parse_upgrade_response(buf: bytes | bytearray, key: bytes) -> int | None:
    """How many bytes of ``buf`` the server's answer head takes (frames may
    follow in the same read), or None while the head is incomplete.

    Raises HandshakeError for anything but a 101 with the right accept, or
    for a head over MAX_RESPONSE_HEAD bytes."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_RESPONSE_HEAD:
            raise HandshakeError("upgrade answer head too long")
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or not status[0].startswith("HTTP/1.") or status[1] != "101":
        raise HandshakeError(f"upgrade refused: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if headers.get("upgrade", "").lower() != "websocket":
        raise HandshakeError("101 without Upgrade: websocket")
    if headers.get("sec-websocket-accept", "").encode("ascii", "replace") != accept_for(key):
        raise HandshakeError("wrong Sec-WebSocket-Accept")
    return end + 4
