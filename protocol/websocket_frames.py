"""RFC 6455 frames, sans-IO, for both ends: one parser of the frames the
peer sends, and builders of the frames we send.

Like wsproto's ``FrameProtocol(client=...)``, the role decides the masking
rule: a server (``FrameParser(limit)``) reads client frames, which must be
masked; a client (``FrameParser(limit, client=True)``) reads server frames,
which must not be (RFC 6455 5.1). The server transport
(tickroom.server.transport.websocket) and the raw load bots
(tickroom.loadtest.rawbots) both use it.

Why it exists: reading client messages through wsproto events on a task per
connection costs ~60 us per tiny message, and every player sends one small
input per tick (docs/benchmarks.md). Instead, the room does one non-blocking
``recv`` per player per tick and feeds the bytes to a ``FrameParser``, which
returns every message they complete. The common server case, one whole
20-60 byte masked binary frame with FIN set in an otherwise empty buffer,
takes a dedicated fast path of a few comparisons and one XOR; everything
else goes through a general loop that is correct for every case of the RFC.
The raw bots exist to cost ~10-20 us per message, so they cannot afford a
library's per-message machinery either.

Rules (each one is a ``ProtocolViolation`` when broken, code 1002 unless
said otherwise):
- no RSV bit may be set: no extension is ever negotiated;
- client frames must be masked, server frames must not be (RFC 6455 5.1);
- opcodes are 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong;
- 16-bit and 64-bit lengths are read (a 64-bit length with its top bit set is
  refused); non-minimal length encodings are accepted;
- a fragmented message starts with a text/binary frame with FIN clear and
  ends with the continuation frame with FIN set; a continuation without a
  message in progress, or a new text/binary frame during one, is refused;
  control frames may come between fragments and are returned at once;
- a message may come in at most ``MAX_FRAGMENTS`` frames: the next
  continuation frame is refused from its header (close 1009), so a peer
  cannot make the parser hold an unbounded list of (say, empty) fragments;
- control frames must have FIN set and at most 125 bytes of payload;
- a message (all fragments together) longer than ``max_message_bytes`` is a
  ``MessageTooBig`` as soon as the frame header declaring the excess is
  parsed, before its payload arrives: it is never buffered, so the buffer
  holds at most one frame of ``max_message_bytes`` + 14 header bytes;
- a close payload is empty (code 1005) or a valid code (RFC 6455 7.4.1, plus
  1012-1014) and a UTF-8 reason (1007 when not UTF-8); one byte is refused;
- text messages must be valid UTF-8 as a whole (1007); nobody here speaks
  text, so only their size is kept.

A complete binary message is returned as plain ``bytes`` (no wrapper object
on the hot path). After a ``MessageTooBig``, ``ProtocolViolation`` or
``CloseFrame`` the parser is finished: the event is the last in its list and
later data is ignored (``after_refusal`` finds where the peer's frames
resume after a refused frame, for an endpoint that is closing). No input
raises: malformed bytes become events.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class TextMessage:
    size: int


@dataclass(frozen=True, slots=True)
class PingFrame:
    payload: bytes


@dataclass(frozen=True, slots=True)
class PongFrame:
    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseFrame:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class MessageTooBig:
    size: int


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    code: int
    reason: str


#: Frames one message may come in (its first frame and its continuations).
#: Nobody needs more: a client SHOULD send one frame per message, and a
#: message is at most a few KiB. Each fragment held costs a list slot and a
#: bytes object, which is what a flood of empty continuations piles up.
MAX_FRAGMENTS = 64

#: From this payload size on numpy unmasks faster than Python's big ints
#: (measured: slower at 512 bytes, 4.2 vs 5.9 us at 1 KiB, 4x faster at
#: 4 KiB, 35x at 64 KiB; big-int XOR is linear but its constant is high).
_NUMPY_UNMASK_FROM = 1024

# Unmasking a payload of n <= 125 bytes (every control frame, and the usual
# input) without building the repeated mask as bytes: read the 4 mask bytes
# and the payload as one big-endian int w, so the mask is w >> 8n; the mask
# repeated over ceil(n / 4) * 4 bytes is mask * _REPEAT[n] (1 every 32 bits)
# and its first n bytes are that >> _CUT[n]; _LOW[n] keeps the payload's
# bits of w. Measured 35-40% faster than (mask * (n // 4 + 1))[:n] + two
# from_bytes for a 32-byte payload. Tables of 126 small ints: ~20 KB.
_REPEAT = [sum(1 << 32 * i for i in range((n + 3) // 4)) for n in range(126)]
_CUT = [8 * ((n + 3) // 4 * 4 - n) for n in range(126)]
_LOW = [(1 << 8 * n) - 1 for n in range(126)]


def _unmask(buf, start: int, n: int) -> bytes:
    """Unmask the payload ``buf[start:start + n]`` with the 4-byte mask just
    before it (where the frame header puts it)."""
    if n < 126:
        w = int.from_bytes(buf[start - 4 : start + n])
        return ((w & _LOW[n]) ^ ((w >> 8 * n) * _REPEAT[n] >> _CUT[n])).to_bytes(n)
    mask = buf[start - 4 : start]
    if n < _NUMPY_UNMASK_FROM:
        # One big-int XOR instead of a byte loop: the whole payload against
        # the mask repeated to its length, in C.
        return (
            int.from_bytes(buf[start : start + n], "little") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "little")
        ).to_bytes(n, "little")
    # 8 bytes at a time straight from the buffer (no slice copy); the mask
    # repeats every 4 bytes, so twice it is the 64-bit key at any 8-aligned
    # offset of the payload. The < 8 byte tail (8-aligned, so the mask
    # starts over) goes the big-int way.
    words = n >> 3
    key = np.uint64(int.from_bytes(mask * 2, "little"))
    head = (np.frombuffer(buf, dtype="<u8", count=words, offset=start) ^ key).tobytes()
    done = words << 3
    if done == n:
        return head
    tail = n - done
    return head + (int.from_bytes(buf[start + done : start + n]) ^ int.from_bytes((mask * 2)[:tail])).to_bytes(tail)


def _valid_close_code(code: int) -> bool:
    # RFC 6455 7.4.1/7.4.2: 1004-1006 and 1015 are reserved and never sent;
    # 1012-1014 are registered with IANA since; 3000-4999 are for libraries
    # and applications; everything else is unassigned or invalid.
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class FrameParser:
    """The peer's frames in, events out; see the module docstring for the
    rules. ``client=False`` (a server) reads masked client frames;
    ``client=True`` reads unmasked server frames."""

    __slots__ = (
        "_max", "_fast_max", "_mask_bit", "_buf", "_need", "_frag_opcode", "_frag", "_frag_size",
        "_frag_count",
        "_skip", "_after", "finished", "client",
    )  # fmt: skip

    def __init__(self, max_message_bytes: int, *, client: bool = False) -> None:
        self.client = client
        self._max = max_message_bytes
        # The fast paths read masked frames only: a client's limit for them
        # is -1, so they never match (no extra test on the server's path).
        self._fast_max = -1 if client else max_message_bytes
        self._mask_bit = 0 if client else 0x80
        # Bytes of an incomplete frame, from its first byte; _need is how
        # many the buffer must hold before parsing can make progress, so
        # feeding a large frame in small reads does not re-parse each time.
        self._buf = bytearray()
        self._need = 0
        # Message in progress: opcode of its first frame (0: none), its
        # unmasked fragments and their total size.
        self._frag_opcode = 0
        self._frag: list[bytes] = []
        self._frag_size = 0
        self._frag_count = 0
        # After a MessageTooBig: bytes of the refused frame still to come
        # and bytes already read past its end; _skip is -1 when the parser
        # did not finish on one (then no frame boundary is known).
        self._skip = -1
        self._after = b""
        self.finished = False

    def receive(self, data: bytes | bytearray) -> list:
        """Feed bytes read from the socket; return the events completed by
        them, in order (binary messages as ``bytes``)."""
        if self.finished:
            return []
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < self._need:
                return []
            events, pos = self._parse(buf)
            if self.finished:
                buf.clear()
            else:
                del buf[:pos]
            return events
        # Fast path: exactly one whole masked binary frame with FIN set and a
        # 7-bit length, no message in progress. ``data[1] - 0x80`` equals
        # n >= 0 only when the MASK bit is set; n < 126 rules out the 16- and
        # 64-bit length forms.
        n = len(data) - 6
        if 0 <= n < 126 and data[0] == 0x82 and data[1] - 0x80 == n and n <= self._fast_max and not self._frag_opcode:
            # _unmask inlined, on the whole frame: the & drops the header.
            w = int.from_bytes(data)
            return [((w & _LOW[n]) ^ ((w >> 8 * n & 0xFFFFFFFF) * _REPEAT[n] >> _CUT[n])).to_bytes(n)]
        events, pos = self._parse(data)
        if pos < len(data) and not self.finished:
            # Parse straight from ``data``; only an incomplete tail is copied.
            buf += memoryview(data)[pos:]
        return events

    def after_refusal(self, data: bytes | bytearray) -> bytes | None:
        """For an endpoint closing after a ``MessageTooBig``: the bytes of
        ``data`` that come after the refused frame (``b""`` while its payload
        is still arriving; the first call also returns what had already been
        read past it). Feed them to a new parser to find the peer's close.

        Returns None when the parser did not finish on a ``MessageTooBig``
        (after a protocol violation no frame boundary is known)."""
        if self._skip < 0:
            return None
        after, self._after = self._after, b""
        skip = self._skip
        if skip >= len(data):
            self._skip = skip - len(data)
            return after
        self._skip = 0
        return after + bytes(data[skip:])

    def _fail(self, events: list, event: object) -> tuple[list, int]:
        self.finished = True
        self._frag = []
        events.append(event)
        return events, 0

    def _refuse(self, events: list, size: int, buf: bytes | bytearray, frame_end: int) -> tuple[list, int]:
        """MessageTooBig, remembering where the refused frame ends."""
        end = len(buf)
        self._skip = max(0, frame_end - end)
        self._after = bytes(buf[frame_end:end]) if frame_end < end else b""
        return self._fail(events, MessageTooBig(size))

    def _parse(self, buf: bytes | bytearray) -> tuple[list, int]:
        """Parse every whole frame in ``buf``; return the events and the
        offset of the first byte not consumed (an incomplete frame)."""
        events: list = []
        pos = 0
        end = len(buf)
        mask_bit = self._mask_bit
        mask_size = 4 if mask_bit else 0
        while True:
            avail = end - pos
            if avail < 2:
                self._need = 2
                return events, pos
            b0 = buf[pos]
            b1 = buf[pos + 1]
            # The common client frame again (several per read): whole masked
            # binary frame, FIN, 7-bit length, no message in progress.
            if b0 == 0x82 and 0x80 <= b1 < 0xFE and not self._frag_opcode:
                n = b1 - 0x80
                stop = pos + 6 + n
                if stop <= end and n <= self._fast_max:
                    w = int.from_bytes(buf[pos + 2 : stop])
                    events.append(((w & _LOW[n]) ^ ((w >> 8 * n) * _REPEAT[n] >> _CUT[n])).to_bytes(n))
                    pos = stop
                    continue
            if b0 & 0x70:
                return self._fail(events, ProtocolViolation(1002, "RSV bits set without a negotiated extension"))
            if b1 & 0x80 != mask_bit:
                reason = "server frames must not be masked" if self.client else "client frames must be masked"
                return self._fail(events, ProtocolViolation(1002, reason))
            fin = b0 & 0x80
            opcode = b0 & 0x0F
            length = b1 & 0x7F
            if opcode >= 8:
                if opcode > 10:
                    return self._fail(events, ProtocolViolation(1002, f"unknown opcode {opcode}"))
                if not fin:
                    return self._fail(events, ProtocolViolation(1002, "fragmented control frame"))
                if length > 125:
                    return self._fail(events, ProtocolViolation(1002, "control frame payload over 125 bytes"))
                header = 2 + mask_size
            else:
                if opcode > 2:
                    return self._fail(events, ProtocolViolation(1002, f"unknown opcode {opcode}"))
                if opcode == 0:
                    if not self._frag_opcode:
                        return self._fail(
                            events, ProtocolViolation(1002, "continuation frame without a message in progress")
                        )
                    if self._frag_count >= MAX_FRAGMENTS:
                        return self._fail(
                            events, ProtocolViolation(1009, f"message in more than {MAX_FRAGMENTS} fragments")
                        )
                elif self._frag_opcode:
                    return self._fail(
                        events, ProtocolViolation(1002, "new data frame while a fragmented message is in progress")
                    )
                if length < 126:
                    header = 2 + mask_size
                elif length == 126:
                    header = 4 + mask_size
                    if avail < 4:
                        self._need = 4
                        return events, pos
                    length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                else:
                    header = 10 + mask_size
                    if avail < 10:
                        self._need = 10
                        return events, pos
                    length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                    if length >> 63:
                        return self._fail(events, ProtocolViolation(1002, "64-bit length with the top bit set"))
                # Refuse from the header: the payload is never waited for.
                size = self._frag_size + length
                if size > self._max:
                    return self._refuse(events, size, buf, pos + header + length)
            start = pos + header
            stop = start + length
            if stop > end:
                self._need = stop - pos
                return events, pos
            payload = _unmask(buf, start, length) if mask_size else bytes(buf[start:stop])
            pos = stop
            if opcode == 2:
                if fin:
                    events.append(payload)
                else:
                    self._start(2, payload, length)
            elif opcode == 0:
                self._frag.append(payload)
                self._frag_size += length
                self._frag_count += 1
                if fin:
                    message = b"".join(self._frag)
                    first = self._frag_opcode
                    self._frag_opcode = 0
                    self._frag = []
                    self._frag_size = 0
                    self._frag_count = 0
                    if first == 2:
                        events.append(message)
                    elif not self._text(events, message):
                        return events, 0
            elif opcode == 1:
                if fin:
                    if not self._text(events, payload):
                        return events, 0
                else:
                    self._start(1, payload, length)
            elif opcode == 9:
                events.append(PingFrame(payload))
            elif opcode == 10:
                events.append(PongFrame(payload))
            else:
                return self._close(events, payload)

    def _start(self, opcode: int, payload: bytes, length: int) -> None:
        self._frag_opcode = opcode
        self._frag = [payload]
        self._frag_size = length
        self._frag_count = 1

    def _text(self, events: list, message: bytes) -> bool:
        try:
            message.decode("utf-8")
        except UnicodeDecodeError:
            self._fail(events, ProtocolViolation(1007, "text message is not valid UTF-8"))
            return False
        events.append(TextMessage(len(message)))
        return True

    def _close(self, events: list, payload: bytes) -> tuple[list, int]:
        if not payload:
            return self._fail(events, CloseFrame(1005, ""))
        if len(payload) == 1:
            return self._fail(events, ProtocolViolation(1002, "close payload of 1 byte"))
        code = int.from_bytes(payload[:2], "big")
        if not _valid_close_code(code):
            return self._fail(events, ProtocolViolation(1002, f"invalid close code {code}"))
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            return self._fail(events, ProtocolViolation(1007, "close reason is not valid UTF-8"))
        return self._fail(events, CloseFrame(code, reason))


# -- Builders ---------------------------------------------------------------------

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


def mask_payload(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` repeated (an involution):
    one big-int XOR, far cheaper in CPython than a per-byte loop."""
    n = len(payload)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def _header(opcode: int, n: int, mask_bit: int) -> bytes:
    if opcode >= 8 and n > 125:
        raise ValueError("control frame payload over 125 bytes")
    if n < 126:
        return bytes((0x80 | opcode, mask_bit | n))
    if n < 1 << 16:
        return bytes((0x80 | opcode, mask_bit | 126)) + _U16.pack(n)
    return bytes((0x80 | opcode, mask_bit | 127)) + _U64.pack(n)


def server_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame (servers never mask, RFC 6455 5.1), with the
    shortest length encoding. Raises ValueError for a control frame
    (``opcode`` >= 8) over 125 bytes."""
    return _header(opcode, len(payload), 0) + payload


def client_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """One final frame masked with the 4-byte ``mask`` (clients must mask,
    RFC 6455 5.3; draw it at random per frame, e.g. ``os.urandom(4)``).
    Raises ValueError like ``server_frame``."""
    return _header(opcode, len(payload), 0x80) + mask + mask_payload(payload, mask)


def binary_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented binary server frame (FIN + opcode 0x2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x82, n)) + payload
    return _header(OP_BINARY, n, 0) + payload


def pong_frame(payload: bytes) -> bytes:
    """An unmasked server Pong frame. Raises ValueError over 125 bytes."""
    return server_frame(OP_PONG, payload)


def close_payload(code: int, reason: str = "") -> bytes:
    """A close frame's payload: the code, then the reason cut to the 123
    bytes a control frame leaves; "ignore" drops only the character the cut
    split (the rest was valid UTF-8)."""
    text = reason.encode("utf-8")[:123].decode("utf-8", "ignore").encode("utf-8")
    return _U16.pack(code) + text


def close_frame(code: int, reason: str = "") -> bytes:
    """An unmasked server Close frame (reason cut as by ``close_payload``)."""
    return server_frame(OP_CLOSE, close_payload(code, reason))
