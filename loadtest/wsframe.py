"""The few pieces of RFC 6455 a raw load bot needs, sans-IO.

Why not a WebSocket library: the raw bots (loadtest/rawbots.py) exist to
cost ~10-20 us of CPU per message, so that one core drives 1,500 players.
A library's per-message machinery (events, state objects, UTF-8 checks) is
most of that budget. The server's side of the wire is narrow
(docs/protocol.md section 1: binary messages, never fragmented, never
masked, no extensions), so a bot needs only: the upgrade request and its
answer, masked client frames, and an incremental parser of server frames.

Everything here is pure (bytes in, bytes out) so that it is unit-tested
without sockets (tests/loadtest/test_rawbots.py).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
MAX_RESPONSE_HEAD = 16 * 1024  # an upgrade answer longer than this is not one
MAX_MESSAGE = 16 * 1024 * 1024  # the protocol's floor for server messages (section 1)

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


class HandshakeError(Exception):
    """The server's answer to the upgrade is not a valid 101."""


class FrameError(Exception):
    """A server frame breaks the protocol (masked, reserved bits, too big)."""


def new_key() -> bytes:
    """A Sec-WebSocket-Key: 16 random bytes, base64 (RFC 6455 4.1)."""
    return base64.b64encode(os.urandom(16))


def accept_for(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept a server must answer ``key`` with."""
    return base64.b64encode(hashlib.sha1(key + GUID, usedforsecurity=False).digest())  # RFC 6455 mandates SHA-1


def upgrade_request(host: str, port: int, path: str, key: bytes) -> bytes:
    """The HTTP/1.1 upgrade request. No subprotocol and no extension: the
    server negotiates neither (docs/protocol.md section 1)."""
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

    Raises HandshakeError for anything but a 101 with the right accept."""
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


def mask_payload(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` repeated: one big-int XOR,
    far cheaper in CPython than a per-byte loop for the 10-100 byte
    messages bots send."""
    n = len(payload)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def client_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """One final, masked client frame (clients must mask, RFC 6455 5.3)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + _U16.pack(n)
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + _U64.pack(n)
    return head + mask + mask_payload(payload, mask)


def close_payload(code: int, reason: str = "") -> bytes:
    return _U16.pack(code) + reason.encode("utf-8")[:123]


def parse_close(payload: bytes) -> tuple[int, str]:
    """(code, reason) of a close frame's payload; 1005 when it has none."""
    if len(payload) < 2:
        return 1005, ""
    return _U16.unpack_from(payload)[0], payload[2:].decode("utf-8", "replace")


class FrameParser:
    """Incremental parser of server frames: feed it what recv() returned,
    get whole frames back. The server never fragments and never masks, so
    a fragment or a masked frame is an error rather than something to join.
    """

    __slots__ = ("buf", "max_message")

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self.buf = b""
        self.max_message = max_message

    def feed(self, data: bytes) -> list[tuple[int, bytes, int]]:
        """Every complete frame in the buffered bytes, as (opcode, payload,
        bytes on the wire incl. the header); a partial frame stays buffered."""
        buf = self.buf + data if self.buf else data
        frames = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if b0 & 0x70 or b1 & 0x80:
                raise FrameError("reserved bits or a mask on a server frame")
            opcode = b0 & 0x0F
            if not b0 & 0x80 or opcode == OP_CONT:
                raise FrameError("fragmented server frame")
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if end - pos < 4:
                    break
                n = _U16.unpack_from(buf, pos + 2)[0]
                head = 4
            elif n == 127:
                if end - pos < 10:
                    break
                n = _U64.unpack_from(buf, pos + 2)[0]
                head = 10
            if n > self.max_message:
                raise FrameError(f"server frame of {n} bytes")
            stop = pos + head + n
            if stop > end:
                break
            frames.append((opcode, buf[pos + head : stop], head + n))
            pos = stop
        self.buf = buf[pos:] if pos < end else b""
        return frames
