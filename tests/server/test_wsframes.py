"""protocol/websocket_frames.py: the client-frame parser, against hand-made frames and
wsproto's client side, fed whole, in every split and byte by byte."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode

from tickroom.protocol.websocket_frames import (
    CloseFrame,
    FrameParser,
    MessageTooBig,
    PingFrame,
    PongFrame,
    ProtocolViolation,
    TextMessage,
    close_frame,
    pong_frame,
)

MASK = b"\x37\xfa\x21\x3d"
LIMIT = 1 << 16


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = MASK,
    length_size: int | None = None,
    length: int | None = None,
) -> bytes:
    """One client frame, by hand; ``length_size`` (1, 2 or 8 bytes) forces an
    encoding, ``length`` a declared length other than the payload's."""
    n = len(payload) if length is None else length
    if length_size is None:
        length_size = 1 if n < 126 else 2 if n < 1 << 16 else 8
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if length_size == 1:
        head += bytes([mask_bit | n])
    elif length_size == 2:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def binary(payload: bytes, **kw) -> bytes:
    return frame(2, payload, **kw)


def feed(parser: FrameParser, *chunks: bytes) -> list:
    events = []
    for chunk in chunks:
        events += parser.receive(chunk)
    return events


def parse(data: bytes, limit: int = LIMIT) -> list:
    return FrameParser(limit).receive(data)


def violation(events: list) -> ProtocolViolation:
    assert isinstance(events[-1], ProtocolViolation), events
    return events[-1]


# -- Masking, lengths, the common case ----------------------------------------


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 32, 125, 126, 1023, 1024, 1025, 1031, 4096, 65535])
def test_masked_frames_are_unmasked(n):
    payload = bytes((i * 7 + 3) % 256 for i in range(n))
    assert parse(binary(payload)) == [payload]


def test_one_small_frame_is_plain_bytes():
    (message,) = parse(binary(b"\x01" * 32))
    assert type(message) is bytes and message == b"\x01" * 32


def test_unmasked_client_frame_is_refused():
    for data in (binary(b"hello", mask=None), frame(9, b"", mask=None)):
        parser = FrameParser(LIMIT)
        assert parser.receive(data) == [ProtocolViolation(1002, "client frames must be masked")]
        assert parser.finished


def test_16_and_64_bit_lengths():
    payload = bytes(range(256)) * 300  # 76800 bytes: needs the 64-bit form
    assert parse(binary(payload[:300]), 1 << 20) == [payload[:300]]
    assert parse(binary(payload), 1 << 20) == [payload]
    assert binary(payload)[1] == 0x80 | 127


def test_non_minimal_length_encodings_are_accepted():
    for size in (2, 8):
        assert parse(binary(b"abc", length_size=size)) == [b"abc"]
        assert parse(binary(b"x" * 200, length_size=size)) == [b"x" * 200]


def test_64_bit_length_with_top_bit_set_is_refused():
    data = binary(b"", length_size=8, length=1 << 63)[:14]
    assert violation(parse(data, 1 << 70)).code == 1002


# -- Several frames per read, frames split across reads ------------------------

STREAM_MESSAGES = [b"first", b"", b"x" * 300, bytes(range(256)) * 5, b"last"]


def stream() -> bytes:
    """Several frames: plain, empty, 16-bit length, fragmented with a ping in
    between, numpy-sized, and a pong."""
    return (
        binary(STREAM_MESSAGES[0])
        + binary(STREAM_MESSAGES[1])
        + binary(STREAM_MESSAGES[2][:100], fin=False)
        + frame(9, b"ping")
        + frame(0, STREAM_MESSAGES[2][100:], fin=True)
        + binary(STREAM_MESSAGES[3])
        + frame(10, b"pong")
        + binary(STREAM_MESSAGES[4])
    )


STREAM_EVENTS = [
    STREAM_MESSAGES[0],
    STREAM_MESSAGES[1],
    PingFrame(b"ping"),
    STREAM_MESSAGES[2],
    STREAM_MESSAGES[3],
    PongFrame(b"pong"),
    STREAM_MESSAGES[4],
]


def test_several_frames_in_one_read():
    assert parse(stream()) == STREAM_EVENTS
    assert parse(binary(b"a") * 5) == [b"a"] * 5


def test_every_split_point():
    data = stream()
    for i in range(len(data) + 1):
        assert feed(FrameParser(LIMIT), data[:i], data[i:]) == STREAM_EVENTS, i


def test_every_pair_of_split_points_in_small_frames():
    data = binary(b"abc") + frame(9, b"p") + binary(b"x" * 130, fin=False) + frame(0, b"yz")
    expected = [b"abc", PingFrame(b"p"), b"x" * 130 + b"yz"]
    for i in range(len(data) + 1):
        for j in range(i, len(data) + 1):
            assert feed(FrameParser(LIMIT), data[:i], data[i:j], data[j:]) == expected, (i, j)


def test_byte_at_a_time():
    data = stream()
    parser = FrameParser(LIMIT)
    events = feed(parser, *(data[i : i + 1] for i in range(len(data))))
    assert events == STREAM_EVENTS
    assert not parser._buf


def test_bytearray_and_empty_reads():
    parser = FrameParser(LIMIT)
    data = stream()
    assert feed(parser, b"", bytearray(data[:50]), b"", bytearray(data[50:])) == STREAM_EVENTS


# -- Fragmentation --------------------------------------------------------------


def test_binary_in_two_fragments():
    assert parse(binary(b"hello ", fin=False) + frame(0, b"world")) == [b"hello world"]


def test_binary_in_three_fragments_with_a_ping_between():
    data = binary(b"a", fin=False) + frame(0, b"b", fin=False) + frame(9, b"?") + frame(0, b"c")
    assert parse(data) == [PingFrame(b"?"), b"abc"]
    parser = FrameParser(LIMIT)
    assert parser.receive(data[:-7]) == [PingFrame(b"?")]
    assert parser.receive(data[-7:]) == [b"abc"]


def test_empty_fragments():
    assert parse(binary(b"", fin=False) + frame(0, b"", fin=False) + frame(0, b"")) == [b""]


def test_continuation_without_a_message_is_refused():
    assert violation(parse(frame(0, b"x"))).code == 1002
    assert violation(parse(binary(b"a", fin=False) + frame(0, b"b") + frame(0, b"c")))


@pytest.mark.parametrize("opcode", [1, 2])
def test_data_frame_during_a_fragmented_message_is_refused(opcode):
    events = parse(binary(b"a", fin=False) + frame(opcode, b"b"))
    assert events == [ProtocolViolation(1002, "new data frame while a fragmented message is in progress")]
    # The single-frame fast path must not skip the check either.
    parser = FrameParser(LIMIT)
    assert parser.receive(binary(b"a", fin=False)) == []
    assert violation(parser.receive(binary(b"b" * 32))).code == 1002


# -- Control frames -------------------------------------------------------------


def test_ping_and_pong():
    assert parse(frame(9, b"") + frame(9, b"abc") + frame(10, b"x" * 125)) == [
        PingFrame(b""),
        PingFrame(b"abc"),
        PongFrame(b"x" * 125),
    ]


@pytest.mark.parametrize("opcode", [8, 9, 10])
def test_oversized_control_frame_is_refused(opcode):
    assert violation(parse(frame(opcode, b"x" * 126))).code == 1002
    # Refused from the header: the payload is not waited for.
    assert violation(parse(frame(opcode, b"x" * 126)[:2])).code == 1002


@pytest.mark.parametrize("opcode", [8, 9, 10])
def test_fragmented_control_frame_is_refused(opcode):
    assert parse(frame(opcode, b"x", fin=False)) == [ProtocolViolation(1002, "fragmented control frame")]


@pytest.mark.parametrize("rsv", [1, 2, 4, 7])
def test_rsv_bits_are_refused(rsv):
    assert violation(parse(binary(b"x", rsv=rsv))).code == 1002
    assert violation(parse(frame(9, b"", rsv=rsv))).code == 1002


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_unknown_opcode_is_refused(opcode):
    assert parse(frame(opcode, b"x")) == [ProtocolViolation(1002, f"unknown opcode {opcode}")]


# -- Close frames ---------------------------------------------------------------


def close(code: int, reason: bytes = b"") -> bytes:
    return frame(8, struct.pack("!H", code) + reason)


def test_close_with_code_and_reason():
    parser = FrameParser(LIMIT)
    assert parser.receive(close(1000, "au revoir é".encode())) == [CloseFrame(1000, "au revoir é")]
    assert parser.finished


def test_empty_close_is_1005():
    assert parse(frame(8)) == [CloseFrame(1005, "")]


def test_one_byte_close_is_refused():
    assert violation(parse(frame(8, b"\x03"))).code == 1002


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])
def test_valid_close_codes(code):
    assert parse(close(code)) == [CloseFrame(code, "")]


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_invalid_close_codes_are_refused(code):
    assert parse(close(code)) == [ProtocolViolation(1002, f"invalid close code {code}")]


def test_close_reason_must_be_utf8():
    assert violation(parse(close(1000, b"\xff\xfe"))).code == 1007


def test_nothing_after_a_close_is_read():
    parser = FrameParser(LIMIT)
    assert parser.receive(binary(b"a") + close(1001) + binary(b"b")) == [b"a", CloseFrame(1001, "")]
    assert parser.finished
    assert parser.receive(binary(b"c")) == []


# -- Text -----------------------------------------------------------------------


def test_valid_text_messages():
    text = "héllo wörld ✓ 😀".encode()
    assert parse(frame(1, text)) == [TextMessage(len(text))]
    # A character split between fragments is still valid once joined.
    data = frame(1, text[:2], fin=False) + frame(9) + frame(0, text[2:])
    assert parse(data) == [PingFrame(b""), TextMessage(len(text))]
    assert parse(frame(1, b"")) == [TextMessage(0)]


@pytest.mark.parametrize("bad", [b"\xff", b"abc\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"])
def test_invalid_text_is_refused_1007(bad):
    assert violation(parse(frame(1, bad))).code == 1007
    assert violation(parse(frame(1, bad[:1], fin=False) + frame(0, bad[1:]))).code == 1007


# -- Size limit -----------------------------------------------------------------


def test_message_at_the_limit_is_accepted():
    assert parse(binary(b"x" * 100), 100) == [b"x" * 100]
    assert parse(binary(b"x" * 60, fin=False) + frame(0, b"y" * 40), 100) == [b"x" * 60 + b"y" * 40]


@pytest.mark.parametrize("size", [101, 200, 70000, 1 << 20])
def test_message_too_big_from_the_header_alone(size):
    header = binary(b"", length=size)  # the header only: the payload never comes
    parser = FrameParser(100)
    assert parser.receive(header) == [MessageTooBig(size)]
    assert parser.finished
    assert parser.receive(b"\x00" * 1000) == []
    assert not parser._buf


def test_fast_path_respects_the_limit():
    assert parse(binary(b"x" * 32), 16) == [MessageTooBig(32)]


def test_fragmented_message_too_big_from_the_header():
    parser = FrameParser(100)
    assert parser.receive(binary(b"x" * 60, fin=False) + frame(9, b"p")) == [PingFrame(b"p")]
    assert parser.receive(frame(0, b"", fin=False, length=30)) == []  # header only: 90, fits
    assert parser.receive(b"y" * 30) == []
    assert parser.receive(frame(0, b"", length=11)) == [MessageTooBig(101)]
    assert parser.finished


def test_control_frames_are_not_subject_to_the_limit():
    assert parse(frame(9, b"x" * 125), 10) == [PingFrame(b"x" * 125)]


def test_buffer_stays_bounded():
    limit = 5000
    parser = FrameParser(limit)
    data = binary(b"z" * limit) * 3
    events = []
    for i in range(0, len(data), 7):
        events += parser.receive(data[i : i + 7])
        assert len(parser._buf) <= limit + 14
    assert events == [b"z" * limit] * 3


# -- Finished -------------------------------------------------------------------


def test_violation_is_last_and_finishes_the_parser():
    parser = FrameParser(LIMIT)
    assert parser.receive(binary(b"a") + binary(b"b", rsv=1) + binary(b"c")) == [
        b"a",
        ProtocolViolation(1002, "RSV bits set without a negotiated extension"),
    ]
    assert parser.finished
    assert parser.receive(binary(b"d")) == []


def test_violation_in_buffered_data_finishes_the_parser():
    parser = FrameParser(LIMIT)
    assert parser.receive(binary(b"a")[:3]) == []
    assert parser.receive(binary(b"a")[3:] + frame(5)) == [b"a", ProtocolViolation(1002, "unknown opcode 5")]
    assert parser.finished and not parser._buf


# -- Builders -------------------------------------------------------------------


def server_frames(data: bytes) -> list:
    """Decode server frames as a wsproto client does."""
    protocol = FrameProtocol(client=True, extensions=[])
    protocol.receive_bytes(data)
    return list(protocol.received_frames())


def test_pong_frame_round_trips():
    for payload in (b"", b"abc", b"x" * 125):
        (decoded,) = server_frames(pong_frame(payload))
        assert decoded.opcode is Opcode.PONG and decoded.payload == payload
    with pytest.raises(ValueError):
        pong_frame(b"x" * 126)


@pytest.mark.parametrize("reason", ["", "bye", "é" * 100, "a" + "😀" * 40, "x" * 200])
def test_close_frame_round_trips(reason):
    data = close_frame(1008, reason)
    assert len(data) <= 2 + 125
    (decoded,) = server_frames(data)
    assert decoded.opcode is Opcode.CLOSE
    code, text = decoded.payload
    assert code == 1008
    assert reason.startswith(text)
    assert len(text.encode()) <= 123
    assert len(text.encode()) > 123 - 4 or text == reason


# -- Properties -----------------------------------------------------------------


def wsproto_stream(messages: list[tuple[bytes, list[int]]]) -> tuple[bytes, list]:
    """Frames of wsproto's client side, and the events they must give: each
    message is cut into fragments at the given points, and a ping follows the
    first fragment of a fragmented message."""
    protocol = FrameProtocol(client=True, extensions=[])
    out, expected = b"", []
    for payload, cuts in messages:
        points = sorted({min(c, len(payload)) for c in cuts})
        pieces = [payload[a:b] for a, b in zip([0, *points], [*points, len(payload)], strict=True)]
        for i, piece in enumerate(pieces):
            out += protocol.send_data(piece, fin=i == len(pieces) - 1)
            if i == 0 and len(pieces) > 1:
                out += protocol.ping(b"between")
                expected.append(PingFrame(b"between"))
        expected.append(payload)
    return out, expected


messages_strategy = st.lists(
    st.tuples(
        st.one_of(st.binary(max_size=80), st.binary(min_size=100, max_size=3000)),
        st.lists(st.integers(0, 3000), max_size=3),
    ),
    min_size=1,
    max_size=8,
)


@given(messages_strategy, st.lists(st.integers(1, 400), min_size=1, max_size=60))
def test_any_chunking_of_wsproto_frames_yields_the_messages(messages, sizes):
    data, expected = wsproto_stream(messages)
    chunks, pos, i = [], 0, 0
    while pos < len(data):
        chunks.append(data[pos : pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    assert feed(FrameParser(LIMIT), *chunks) == expected
    if len(data) <= 3000:  # byte by byte too, while it stays quick
        assert feed(FrameParser(LIMIT), *(data[i : i + 1] for i in range(len(data)))) == expected


@given(messages_strategy)
def test_wsproto_close_and_text_are_read(messages):
    protocol = FrameProtocol(client=True, extensions=[])
    data = wsproto_stream(messages)[0] + protocol.send_data("texte ✓", fin=True)
    data += protocol.close(CloseReason.GOING_AWAY, "gone")
    events = parse(data)
    assert events[-2:] == [TextMessage(len("texte ✓".encode())), CloseFrame(1001, "gone")]


EVENT_TYPES = (bytes, TextMessage, PingFrame, PongFrame, CloseFrame, MessageTooBig, ProtocolViolation)


def check_never_raises(data: bytes, limit: int, cut: int) -> None:
    """Whole or cut in two, ``data`` gives the same events, of the event
    types only, with a finishing event only last."""
    whole = parse(data, limit)
    assert feed(FrameParser(limit), data[:cut], data[cut:]) == whole
    for i, event in enumerate(whole):
        assert type(event) in EVENT_TYPES
        if type(event) in (CloseFrame, MessageTooBig, ProtocolViolation):
            assert i == len(whole) - 1


@given(st.binary(max_size=400), st.integers(0, 200), st.integers(0, 400))
def test_random_bytes_never_raise(data, limit, cut):
    check_never_raises(data, limit, cut)


@given(
    messages_strategy,
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 10**6),
)
def test_mutated_streams_never_raise(messages, mutations, cut):
    data = bytearray(wsproto_stream(messages)[0] + frame(9, b"p") + frame(1, b"t") + close(1000, b"r"))
    for where, value in mutations:
        data[where % len(data)] = value
    check_never_raises(bytes(data), 4000, cut % (len(data) + 1))


@pytest.mark.parametrize("sizes", [range(0, 300), range(1016, 1048), range(8184, 8200)])
def test_unmask_every_size_and_tail(sizes):
    # Each size in every unmasking branch (table, big int, numpy + tail), at
    # an odd offset inside one read.
    for n in sizes:
        payload = bytes((i * 31 + n) % 256 for i in range(n))
        assert parse(frame(9, b"x") + binary(payload), 1 << 14) == [PingFrame(b"x"), payload], n
