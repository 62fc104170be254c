"""protocol/websocket_frames.py, the one frame codec of both ends: the parser
in the server role (client frames, masked) against hand-made frames and
wsproto's client side, fed whole, in every split and byte by byte; the
client role (server frames, unmasked) the same way where it differs; the
builders of both roles against wsproto; and the properties, fuzzed once for
both roles."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode

from tickroom.protocol.websocket_frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    CloseFrame,
    FrameParser,
    MessageTooBig,
    PingFrame,
    PongFrame,
    ProtocolViolation,
    TextMessage,
    binary_frame,
    client_frame,
    close_frame,
    close_payload,
    mask_payload,
    pong_frame,
    server_frame,
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


def parse(data: bytes, limit: int = LIMIT, *, client: bool = False) -> list:
    return FrameParser(limit, client=client).receive(data)


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


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 72, 125, 126, 127, 65535, 65536, 70000])
def test_client_frames_decode_with_wsproto(n):
    payload = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
    data = client_frame(OP_BINARY, payload, b"\x01\x02\x03\x04")
    # wsproto is the server's own frame decoder; as a server it requires a mask.
    proto = FrameProtocol(client=False, extensions=[])
    proto.receive_bytes(data)
    got = list(proto.received_frames())
    assert len(got) == 1 and got[0].opcode is Opcode.BINARY and got[0].message_finished
    assert bytes(got[0].payload) == payload


@pytest.mark.parametrize("n", [0, 125, 126, 65535, 65536])
def test_binary_frames_of_the_server_decode_with_wsproto(n):
    payload = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
    for data in (binary_frame(payload), server_frame(OP_BINARY, payload)):
        (decoded,) = server_frames(data)
        assert decoded.opcode is Opcode.BINARY and decoded.message_finished and bytes(decoded.payload) == payload


def test_mask_is_an_involution_and_masks():
    payload = b"\x82\xa1t\xa5input\xa3seq\x01"
    masked = mask_payload(payload, b"\xaa\xbb\xcc\xdd")
    assert masked != payload and mask_payload(masked, b"\xaa\xbb\xcc\xdd") == payload
    assert masked[0] == payload[0] ^ 0xAA and masked[5] == payload[5] ^ 0xBB


def test_control_frames_over_125_bytes_are_not_built():
    with pytest.raises(ValueError):
        client_frame(OP_PING, b"x" * 126, MASK)
    with pytest.raises(ValueError):
        server_frame(OP_CLOSE, b"x" * 126)


def test_close_payloads():
    assert parse(server_frame(OP_CLOSE, close_payload(4101, "room full")), client=True) == [
        CloseFrame(4101, "room full")
    ]
    assert parse(server_frame(OP_CLOSE, b""), client=True) == [CloseFrame(1005, "")]
    assert len(close_payload(1000, "x" * 500)) == 2 + 123


# -- The client role --------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 125, 126, 65535, 65536])
def test_client_reads_every_length_encoding_byte_by_byte(n):
    payload = b"x" * n
    data = server_frame(OP_BINARY, payload)
    parser = FrameParser(1 << 20, client=True)
    assert feed(parser, *(data[i : i + 1] for i in range(len(data)))) == [payload]
    assert not parser._buf


def test_client_gets_several_frames_of_one_read_and_keeps_the_rest():
    a, b, c = (
        server_frame(OP_BINARY, b"one"),
        server_frame(OP_PING, b"p"),
        server_frame(OP_CLOSE, close_payload(1000, "bye")),
    )
    parser = FrameParser(LIMIT, client=True)
    assert parser.receive(a + b + c[:3]) == [b"one", PingFrame(b"p")]
    assert parser.receive(c[3:]) == [CloseFrame(1000, "bye")]


def test_client_refuses_masked_frames():
    # The same bytes a server reads are refused by a client, and the other way round.
    for data in (binary(b"hello"), frame(9, b"")):
        assert parse(data, client=True) == [ProtocolViolation(1002, "server frames must not be masked")]
    assert parse(server_frame(OP_BINARY, b"hello")) == [ProtocolViolation(1002, "client frames must be masked")]


@pytest.mark.parametrize(
    "data",
    [
        bytes((0x80, 3)) + b"abc",  # a continuation frame without a message
        bytes((0xC2, 3)) + b"abc",  # RSV1: no compression was negotiated
        bytes((0x8B, 0)),  # opcode 11
        bytes((0x09, 0)),  # a fragmented ping
    ],
)
def test_client_refuses_broken_server_frames(data):
    assert type(violation(parse(data, client=True))) is ProtocolViolation


def test_client_joins_fragments():
    data = frame(2, b"ab", fin=False, mask=None) + frame(0, b"cd", mask=None)
    assert parse(data, client=True) == [b"abcd"]


def test_client_refuses_an_oversized_frame_from_its_header():
    assert parse(bytes((0x82, 127)) + struct.pack("!Q", 10**9), 1000, client=True) == [MessageTooBig(10**9)]


# -- After a refused frame ----------------------------------------------------------


def test_after_refusal_skips_the_refused_frame_in_any_split():
    # A closing server reads on past a refused frame to find the peer's close.
    data = binary(b"x" * 300) + close(1000, b"ok")
    for cut in range(8, len(data) + 1):  # the refusal needs the 8-byte header
        parser = FrameParser(100)
        assert parser.receive(data[:cut]) == [MessageTooBig(300)]
        rest = parser.after_refusal(b"") + parser.after_refusal(data[cut:])
        assert rest == close(1000, b"ok"), cut
        assert FrameParser(100).receive(rest) == [CloseFrame(1000, "ok")]


def test_after_refusal_byte_by_byte():
    data = binary(b"y" * 200, length_size=8)
    parser = FrameParser(100)
    assert parser.receive(data[:14]) == [MessageTooBig(200)]
    assert b"".join(parser.after_refusal(data[i : i + 1]) for i in range(14, len(data))) == b""
    assert parser.after_refusal(b"next") == b"next"


def test_no_boundary_after_a_violation_or_while_parsing():
    parser = FrameParser(LIMIT)
    assert parser.after_refusal(b"x") is None  # not finished
    parser.receive(binary(b"a", rsv=1))
    assert parser.after_refusal(b"x") is None
    closed = FrameParser(LIMIT)
    closed.receive(close(1000))
    assert closed.after_refusal(b"x") is None


# -- Properties -----------------------------------------------------------------


def wsproto_stream(messages: list[tuple[bytes, list[int]]], *, client: bool = False) -> tuple[bytes, list]:
    """Frames of wsproto's peer of a parser in this role (its client side for
    a server, masked; its server side for a client, unmasked), and the events
    they must give: each message is cut into fragments at the given points,
    and a ping follows the first fragment of a fragmented message."""
    protocol = FrameProtocol(client=not client, extensions=[])
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
roles = st.booleans()  # client=True: a client reading server frames


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, pos, i = [], 0, 0
    while pos < len(data):
        chunks.append(data[pos : pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    return chunks


@given(roles, messages_strategy, st.lists(st.integers(1, 400), min_size=1, max_size=60))
def test_any_chunking_of_wsproto_frames_yields_the_messages(client, messages, sizes):
    data, expected = wsproto_stream(messages, client=client)
    assert feed(FrameParser(LIMIT, client=client), *chunked(data, sizes)) == expected
    if len(data) <= 3000:  # byte by byte too, while it stays quick
        parser = FrameParser(LIMIT, client=client)
        assert feed(parser, *(data[i : i + 1] for i in range(len(data)))) == expected


@given(roles, messages_strategy, st.binary(max_size=125), st.lists(st.integers(1, 400), min_size=1, max_size=20))
def test_our_builders_round_trip_in_both_roles(client, messages, ping, sizes):
    # The frames a peer in the other role builds with this module: masked
    # client frames for a server, unmasked server frames for a client.
    def build(opcode: int, payload: bytes) -> bytes:
        return server_frame(opcode, payload) if client else client_frame(opcode, payload, MASK)

    payloads = [payload for payload, _ in messages]
    data = b"".join(build(OP_BINARY, payload) for payload in payloads)
    data += build(OP_PING, ping) + build(OP_CLOSE, close_payload(4002, "too big"))
    expected = [*payloads, PingFrame(ping), CloseFrame(4002, "too big")]
    assert feed(FrameParser(LIMIT, client=client), *chunked(data, sizes)) == expected


@given(roles, messages_strategy)
def test_wsproto_close_and_text_are_read(client, messages):
    protocol = FrameProtocol(client=not client, extensions=[])
    data = wsproto_stream(messages, client=client)[0] + protocol.send_data("texte ✓", fin=True)
    data += protocol.close(CloseReason.GOING_AWAY, "gone")
    events = parse(data, client=client)
    assert events[-2:] == [TextMessage(len("texte ✓".encode())), CloseFrame(1001, "gone")]


EVENT_TYPES = (bytes, TextMessage, PingFrame, PongFrame, CloseFrame, MessageTooBig, ProtocolViolation)


def check_never_raises(data: bytes, limit: int, cut: int, client: bool = False) -> None:
    """Whole or cut in two, ``data`` gives the same events, of the event
    types only, with a finishing event only last."""
    whole = parse(data, limit, client=client)
    assert feed(FrameParser(limit, client=client), data[:cut], data[cut:]) == whole
    for i, event in enumerate(whole):
        assert type(event) in EVENT_TYPES
        if type(event) in (CloseFrame, MessageTooBig, ProtocolViolation):
            assert i == len(whole) - 1


@given(roles, st.binary(max_size=400), st.integers(0, 200), st.integers(0, 400))
def test_random_bytes_never_raise(client, data, limit, cut):
    check_never_raises(data, limit, cut, client)


@given(
    roles,
    messages_strategy,
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 10**6),
)
def test_mutated_streams_never_raise(client, messages, mutations, cut):
    mask = None if client else MASK
    tail = frame(9, b"p", mask=mask) + frame(1, b"t", mask=mask) + frame(8, struct.pack("!H", 1000) + b"r", mask=mask)
    data = bytearray(wsproto_stream(messages, client=client)[0] + tail)
    for where, value in mutations:
        data[where % len(data)] = value
    check_never_raises(bytes(data), 4000, cut % (len(data) + 1), client)


@pytest.mark.parametrize("sizes", [range(0, 300), range(1016, 1048), range(8184, 8200)])
def test_unmask_every_size_and_tail(sizes):
    # Each size in every unmasking branch (table, big int, numpy + tail), at
    # an odd offset inside one read.
    for n in sizes:
        payload = bytes((i * 31 + n) % 256 for i in range(n))
        assert parse(frame(9, b"x") + binary(payload), 1 << 14) == [PingFrame(b"x"), payload], n
