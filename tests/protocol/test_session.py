"""protocol/session.py: the server's per-connection state machine, strikes
and token bucket. Time is whatever ``now`` the test passes: no clock, no
sleeps; "a minute" below is a minute of those numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickroom.protocol import messages as m
from tickroom.protocol.codec import MAX_CLIENT_MESSAGE_BYTES, encode_client, packb
from tickroom.protocol.errors import Code, LocalProtocolError, RemoteProtocolError
from tickroom.protocol.input_rows import ROW_TAG, InputRows
from tickroom.protocol.session import (
    BURST_SECONDS,
    CONTROL_FRAMES_BEFORE_JOIN,
    RATE_PER_TICK,
    STRIKE_DECAY_PER_S,
    STRIKE_LIMIT,
    ServerSession,
    ServerState,
)
from tickroom.protocol.validate import InputFields

ARENA_INPUTS = InputFields(
    {
        "mx": ("float", -1.0, 1.0),
        "my": ("float", -1.0, 1.0),
        "aim": ("float", -3.14159265, 3.14159265),
        "fire": ("bool",),
    }
)
TICK_RATE = 20  # Hz
BURST = int(RATE_PER_TICK * TICK_RATE * BURST_SECONDS)  # messages allowed at once

JOIN = encode_client(m.Join(version=m.PROTOCOL_VERSION, name="ann", room="lobby"))
PING = encode_client(m.Ping(id=1))
INPUT_V1 = encode_client(m.Input(seq=1, tick=3, ack=2, data={"mx": 0.5, "fire": True}))
INPUT = InputRows(ARENA_INPUTS).encoder.encode(1, 3, 2, {"mx": 0.5, "fire": True})  # version 2's row
INVALID = packb({"t": "ping", "id": -1})  # recoverable: INVALID_MESSAGE
GARBAGE = b"\xc1\xc1"  # recoverable: BAD_MESSAGE
T0 = 1000.0  # an arbitrary monotonic origin: nothing may assume time starts at 0


def refusal(session: ServerSession, data: bytes, now: float = T0) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        session.receive_message(data, now)
    return info.value


def joined_session(now: float = T0) -> ServerSession:
    session = ServerSession()
    assert isinstance(session.receive_message(JOIN, now), m.Join)
    session.joined(ARENA_INPUTS, TICK_RATE, now)
    assert session.state is ServerState.JOINED
    return session


# --- handshake ----------------------------------------------------------------


def test_join_then_messages() -> None:
    session = ServerSession()
    assert session.state is ServerState.AWAIT_JOIN
    assert session.receive_message(JOIN, T0) == m.Join(version=m.PROTOCOL_VERSION, name="ann", room="lobby")
    session.joined(ARENA_INPUTS, TICK_RATE, T0)
    # A version 2 input row passes as it came: the room's batch validates it.
    assert session.receive_message(INPUT, T0) == INPUT
    assert session.receive_message(PING, T0) == m.Ping(id=1)


def test_version_1_inputs_are_validated_maps() -> None:
    session = ServerSession()
    assert session.receive_message(packb({"t": "join", "v": 1}), T0) == m.Join(version=1)
    session.joined(ARENA_INPUTS, TICK_RATE, T0)
    msg = session.receive_message(INPUT_V1, T0)
    # Validated against the room's input fields: every field present, ints as floats.
    assert msg == m.Input(seq=1, tick=3, ack=2, data={"mx": 0.5, "my": 0.0, "aim": 0.0, "fire": True})
    assert refusal(session, INPUT).code is Code.BAD_MESSAGE  # a row is not a version 1 message


def test_version_2_refuses_map_inputs_and_rows_of_another_length() -> None:
    session = joined_session()
    for data, code in [
        (INPUT_V1, Code.BAD_MESSAGE),
        (INPUT[:-1], Code.BAD_MESSAGE),
        (INPUT + b"\x00", Code.BAD_MESSAGE),
        (bytes([ROW_TAG]), Code.BAD_MESSAGE),
    ]:
        exc = refusal(session, data)
        assert exc.code is code and not exc.fatal
    assert session.strikes == 4


BEFORE_JOIN = {
    "input": encode_client(m.Input(seq=1, tick=0, ack=-1, data={})),
    "ack": encode_client(m.Ack(tick=1)),
    "ping": PING,
    "leave": encode_client(m.Leave()),
}


@pytest.mark.parametrize("data", BEFORE_JOIN.values(), ids=BEFORE_JOIN.keys())
def test_anything_but_join_first_is_fatal(data: bytes) -> None:
    session = ServerSession()
    exc = refusal(session, data)
    assert exc.code is Code.HANDSHAKE_REQUIRED
    assert exc.fatal


ERRORS_BEFORE_JOIN = {
    "garbage": (GARBAGE, Code.BAD_MESSAGE),
    "not a map": (packb([1]), Code.BAD_MESSAGE),
    "unknown type": (packb({"t": "hello"}), Code.BAD_MESSAGE),
    "invalid join": (packb({"t": "join", "v": 1, "room": "no spaces"}), Code.INVALID_MESSAGE),
    "invalid ping": (INVALID, Code.INVALID_MESSAGE),
    "too big": (b"\x00" * (MAX_CLIENT_MESSAGE_BYTES + 1), Code.MESSAGE_TOO_BIG),
}


@pytest.mark.parametrize("data, code", ERRORS_BEFORE_JOIN.values(), ids=ERRORS_BEFORE_JOIN.keys())
def test_any_error_before_join_is_fatal(data: bytes, code: Code) -> None:
    # Even the recoverable codes: there is no session yet to protect.
    exc = refusal(ServerSession(), data)
    assert exc.code is code
    assert exc.fatal


def test_text_frame_before_join_is_fatal() -> None:
    exc = ServerSession().text_frame(T0)
    assert exc.code is Code.BAD_MESSAGE and exc.fatal


@pytest.mark.parametrize("version", [0, 3, m.PROTOCOL_VERSION + 1, 2**16])
def test_wrong_version_is_fatal(version: int) -> None:
    session = ServerSession()
    exc = refusal(session, encode_client(m.Join(version=version)))
    assert exc.code is Code.UNSUPPORTED_VERSION
    assert exc.fatal
    assert session.state is ServerState.AWAIT_JOIN


def test_joined_twice_is_our_bug() -> None:
    session = joined_session()
    with pytest.raises(LocalProtocolError):
        session.joined(ARENA_INPUTS, TICK_RATE, T0)


def test_joined_after_close_is_our_bug() -> None:
    session = ServerSession()
    session.close()
    with pytest.raises(LocalProtocolError):
        session.joined(ARENA_INPUTS, TICK_RATE, T0)


def test_second_join_is_fatal() -> None:
    session = joined_session()
    exc = refusal(session, JOIN)
    assert exc.code is Code.HANDSHAKE_REQUIRED
    assert exc.fatal


@pytest.mark.parametrize("joined", [False, True], ids=["before join", "after join"])
def test_receive_after_close_is_our_bug(joined: bool) -> None:
    session = joined_session() if joined else ServerSession()
    session.close()
    session.close()  # idempotent
    assert session.state is ServerState.CLOSED
    with pytest.raises(LocalProtocolError):
        session.receive_message(PING, T0)


# --- size ---------------------------------------------------------------------


@pytest.mark.parametrize("joined", [False, True], ids=["before join", "after join"])
def test_oversized_frame_is_fatal(joined: bool) -> None:
    session = joined_session() if joined else ServerSession()
    # A well-formed message, only too long: refused before decoding.
    big = packb({"t": "ping", "id": 1, "pad": "x" * MAX_CLIENT_MESSAGE_BYTES})
    exc = refusal(session, big)
    assert exc.code is Code.MESSAGE_TOO_BIG and exc.fatal
    with pytest.raises(RemoteProtocolError) as info:
        session.check_size(MAX_CLIENT_MESSAGE_BYTES + 1)
    assert info.value.code is Code.MESSAGE_TOO_BIG and info.value.fatal


def test_size_limit_is_inclusive_and_configurable() -> None:
    session = ServerSession(max_message_bytes=16)
    session.check_size(16)  # at the limit: fine
    with pytest.raises(RemoteProtocolError) as info:
        session.check_size(17)
    assert info.value.code is Code.MESSAGE_TOO_BIG
    assert refusal(session, packb({"t": "join", "v": 1, "name": "a" * 16})).code is Code.MESSAGE_TOO_BIG
    assert isinstance(session.receive_message(packb({"t": "join", "v": 1}), T0), m.Join)


# --- strikes ------------------------------------------------------------------


@pytest.mark.parametrize("bad", [INVALID, GARBAGE], ids=["invalid", "garbage"])
def test_recoverable_errors_turn_fatal_past_the_strike_limit(bad: bytes) -> None:
    session = joined_session()
    for _ in range(STRIKE_LIMIT):
        exc = refusal(session, bad)
        assert exc.code in (Code.INVALID_MESSAGE, Code.BAD_MESSAGE)
        assert not exc.fatal
    # The session still works between errors.
    assert session.receive_message(PING, T0) == m.Ping(id=1)
    exc = refusal(session, bad)
    assert exc.fatal
    assert exc.code in (Code.INVALID_MESSAGE, Code.BAD_MESSAGE)


def test_text_frames_after_join_count_as_strikes() -> None:
    session = joined_session()
    for _ in range(STRIKE_LIMIT):
        exc = session.text_frame(T0)
        assert exc.code is Code.BAD_MESSAGE and not exc.fatal
    assert session.text_frame(T0).fatal


def test_strikes_decay_over_time() -> None:
    session = joined_session()
    now = T0
    # One error a second, for ten minutes: each is forgiven before the next.
    for _ in range(600):
        now += 1.0 / STRIKE_DECAY_PER_S
        assert not refusal(session, INVALID, now).fatal
    # A burst after a quiet spell is tolerated again, up to the limit.
    now += STRIKE_LIMIT / STRIKE_DECAY_PER_S
    for _ in range(STRIKE_LIMIT):
        assert not refusal(session, INVALID, now).fatal
    assert refusal(session, INVALID, now).fatal


def test_errors_faster_than_the_decay_add_up() -> None:
    session = joined_session()
    now, gap = T0, 0.5 / STRIKE_DECAY_PER_S  # net +0.5 strike per error
    results = []
    for _ in range(40):
        now += gap
        results.append(refusal(session, INVALID, now).fatal)
    assert results[0] is False
    assert True in results  # not forgiven fast enough: eventually fatal
    first_fatal = results.index(True)
    assert STRIKE_LIMIT < first_fatal < 3 * STRIKE_LIMIT


def test_fatal_errors_after_join_do_not_need_strikes() -> None:
    session = joined_session()
    assert refusal(session, JOIN).fatal  # first offence, still fatal


# --- token bucket -------------------------------------------------------------


def test_burst_beyond_the_bucket_is_rate_limited() -> None:
    session = joined_session()
    for _ in range(BURST):
        assert session.receive_message(PING, T0) == m.Ping(id=1)
    assert session.messages_dropped == 0
    exc = refusal(session, PING)
    assert exc.code is Code.RATE_LIMITED
    assert not exc.fatal  # at first, a warning
    assert session.messages_dropped == 1
    # Refilled after a while at the allowed rate (1.5 tokens' worth: float rounding).
    later = T0 + 1.5 / (RATE_PER_TICK * TICK_RATE)
    assert session.receive_message(PING, later) == m.Ping(id=1)
    assert session.messages_dropped == 1


def test_rate_limit_applies_before_decoding() -> None:
    # A dropped message is not even decoded: garbage over the rate is RATE_LIMITED.
    session = joined_session()
    for _ in range(BURST):
        session.receive_message(PING, T0)
    assert refusal(session, GARBAGE).code is Code.RATE_LIMITED


def test_no_rate_limit_before_join() -> None:
    # Only one message is valid before join; the transport's handshake timeout bounds the rest.
    session = ServerSession()
    for _ in range(3 * BURST):
        assert refusal(session, PING).code is Code.HANDSHAKE_REQUIRED


def test_steady_allowed_rate_is_never_limited() -> None:
    session = joined_session()
    ticks = 10 * 60 * TICK_RATE  # ten minutes
    messages = [INPUT, encode_client(m.Ack(tick=1)), PING][:RATE_PER_TICK]
    received = 0
    for tick in range(1, ticks + 1):
        now = T0 + tick / TICK_RATE
        for data in messages:
            session.receive_message(data, now)  # raises if limited
            received += 1
    assert received == ticks * RATE_PER_TICK
    assert session.messages_dropped == 0
    assert session.strikes == 0


def test_steady_rate_with_jitter_is_never_limited() -> None:
    # Messages bunched up by the network (three ticks' worth at once) still pass.
    session = joined_session()
    for batch in range(1, 2000):
        now = T0 + batch * 3 / TICK_RATE
        for _ in range(3 * RATE_PER_TICK):
            session.receive_message(PING, now)
    assert session.messages_dropped == 0


def test_flood_becomes_fatal_within_a_second() -> None:
    session = joined_session()
    per_second = 100 * TICK_RATE
    warnings = 0
    for i in range(10 * per_second):
        now = T0 + i / per_second
        try:
            session.receive_message(PING, now)
        except RemoteProtocolError as exc:
            assert exc.code is Code.RATE_LIMITED
            if exc.fatal:
                break
            warnings += 1
    else:
        pytest.fail("a flood at 100x the tick rate was never closed")
    assert now - T0 <= 1.0
    assert warnings == STRIKE_LIMIT  # warned first, then closed
    assert session.messages_dropped == STRIKE_LIMIT + 1


# --- anything a client can send ----------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=4)
    | st.binary(max_size=4)
)
values = scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.text(max_size=3), scalars, max_size=3)
client_maps = st.fixed_dictionaries(
    {"t": st.sampled_from(["join", "input", "ack", "ping", "leave", "x"])},
    optional={key: values for key in ("v", "seq", "tick", "ack", "id", "name", "room", "session", "junk")}
    | {"in": st.dictionaries(st.sampled_from(["mx", "my", "aim", "fire", "zz"]), scalars, max_size=4) | values},
)


@settings(max_examples=100)
@given(st.lists(client_maps.map(packb) | st.binary(max_size=32), min_size=1, max_size=6))
def test_any_frames_give_messages_or_remote_errors(frames: list[bytes]) -> None:
    """Whatever arrives, the session answers with a message or a
    RemoteProtocolError, never another exception."""
    session = joined_session()
    for i, data in enumerate(frames):
        try:
            msg = session.receive_message(data, T0 + i)
        except RemoteProtocolError as exc:
            assert isinstance(exc.code, Code)
            if exc.fatal:
                break
        else:
            assert isinstance(msg, (m.Input, m.Ack, m.Ping, m.Leave))


# --- WebSocket control frames share the budget ----------------------------------


def test_control_frames_before_join_are_capped_then_fatal() -> None:
    session = ServerSession()
    session.control_frames(CONTROL_FRAMES_BEFORE_JOIN - 1, T0)
    session.control_frames(1, T0)  # at the cap: still fine
    with pytest.raises(RemoteProtocolError) as info:
        session.control_frames(1, T0)
    assert info.value.code is Code.RATE_LIMITED and info.value.fatal


def test_control_frames_after_join_take_tokens_from_the_message_bucket() -> None:
    session = joined_session()
    session.control_frames(BURST - 1, T0)
    assert session.receive_message(PING, T0) == m.Ping(id=1)  # the last token
    exc = refusal(session, PING)  # messages and pings drain one bucket
    assert exc.code is Code.RATE_LIMITED and not exc.fatal


def test_control_frames_over_the_bucket_are_one_strike_each() -> None:
    session = joined_session()
    session.control_frames(BURST, T0)  # the whole burst: allowed
    with pytest.raises(RemoteProtocolError) as info:
        session.control_frames(3, T0)
    assert info.value.code is Code.RATE_LIMITED and not info.value.fatal
    assert session.strikes == 3
    with pytest.raises(RemoteProtocolError) as info:
        session.control_frames(STRIKE_LIMIT, T0)  # one read of a flood
    assert info.value.fatal


def test_a_steady_keepalive_ping_never_costs_a_strike() -> None:
    session = joined_session()
    for second in range(600):  # one ping and one pong a second, ten minutes
        now = T0 + second
        session.control_frames(2, now)
        for tick in range(TICK_RATE):
            session.receive_message(INPUT, now + tick / TICK_RATE)
    assert session.strikes == 0 and session.messages_dropped == 0
