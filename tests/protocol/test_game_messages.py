"""Game messages ("msg") on the connection: validated against the game's
declared types before the room sees them, each refusal with its code;
their own rate limit (4006) and the connection's strikes; size limits."""

from __future__ import annotations

import re

import pytest

from tickroom.protocol import messages as m
from tickroom.protocol.codec import MAX_CLIENT_MESSAGE_BYTES, encode_client, packb
from tickroom.protocol.errors import Code, RemoteProtocolError
from tickroom.protocol.game_messages import (
    DEFAULT_MESSAGE_RATE,
    GameMessage,
    GameMessageGate,
    MessageTypes,
    encode_client_game_message,
)
from tickroom.protocol.input_rows import RowEncoder, row_layout
from tickroom.protocol.session import ServerSession
from tickroom.protocol.validate import InputFields

TYPES = {
    "chat": {"text": ("str", 10)},
    "buy": {"item": ("int", 0, 99), "gift": ("bool",)},
    "blob": {"data": ("bytes", 4)},
}


def joined_session(types: dict | None = TYPES, now: float = 0.0) -> ServerSession:
    session = ServerSession()
    session.receive_message(encode_client(m.Join(version=m.PROTOCOL_VERSION, name="a")), now)
    session.joined(InputFields({"x": ("float", -1.0, 1.0)}), 20, now)
    session.game_messages = GameMessageGate(MessageTypes(types), now)
    return session


def refusal(session: ServerSession, frame: bytes, now: float = 0.0) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as caught:
        session.receive_message(frame, now)
    return caught.value


def test_a_valid_message_comes_out_typed_with_absent_fields_zero() -> None:
    session = joined_session()
    msg = session.receive_message(encode_client_game_message("buy", {"item": 7}), 0.0)
    assert msg == GameMessage("buy", {"item": 7, "gift": False})
    assert session.receive_message(encode_client_game_message("blob", {"data": b"\x00\x01"}), 0.0) == GameMessage(
        "blob", {"data": b"\x00\x01"}
    )
    assert session.receive_message(encode_client_game_message("chat", {}), 0.0) == GameMessage("chat", {"text": ""})


@pytest.mark.parametrize(
    ("obj", "why"),
    [
        ({"t": "msg", "kind": "nope", "data": {}}, "unknown message kind"),
        ({"t": "msg", "data": {}}, "unknown message kind"),
        ({"t": "msg", "kind": "chat", "data": {"text": "x" * 11}}, "longer than 10 characters"),
        ({"t": "msg", "kind": "chat", "data": {"text": 5}}, "must be a string"),
        ({"t": "msg", "kind": "chat", "data": {"text": "hi", "extra": 1}}, "unknown field"),
        ({"t": "msg", "kind": "chat", "data": "hi"}, "'data' must be a map"),
        ({"t": "msg", "kind": "chat", "data": {}, "to": 3}, "unknown key"),
        ({"t": "msg", "kind": "buy", "data": {"item": 100}}, r"in \[0, 99\]"),
        ({"t": "msg", "kind": "buy", "data": {"item": True}}, "must be an integer"),
        ({"t": "msg", "kind": "buy", "data": {"item": 1.0}}, "must be an integer"),
        ({"t": "msg", "kind": "buy", "data": {"gift": 1}}, "true or false"),
        ({"t": "msg", "kind": "blob", "data": {"data": b"12345"}}, "longer than 4 bytes"),
        ({"t": "msg", "kind": "blob", "data": {"data": "abc"}}, "must be bin"),
    ],
)
def test_a_bad_message_is_invalid_and_recoverable(obj, why) -> None:
    session = joined_session()
    error = refusal(session, packb(obj))
    assert error.code is Code.INVALID_MESSAGE and not error.fatal
    assert pytest.approx(session.strikes) == 1.0
    assert re.search(why, error.message), error.message


def test_a_game_without_message_types_refuses_every_message() -> None:
    error = refusal(joined_session(None), encode_client_game_message("chat", {"text": "hi"}))
    assert error.code is Code.INVALID_MESSAGE and "takes no messages" in error.message


def test_before_the_join_a_message_is_fatal() -> None:
    session = ServerSession()
    error = refusal(session, encode_client_game_message("chat", {"text": "hi"}))
    assert error.fatal and error.code is Code.BAD_MESSAGE


def test_an_oversized_message_is_refused_before_decoding() -> None:
    session = joined_session({"blob": {"data": ("bytes", 1024)}})
    error = refusal(session, encode_client_game_message("blob", {"data": b"x" * (MAX_CLIENT_MESSAGE_BYTES + 1)}))
    assert error.code is Code.MESSAGE_TOO_BIG and error.fatal


def test_messages_have_their_own_rate_limit_and_a_flood_is_closed() -> None:
    session = joined_session()
    burst = int(2 * DEFAULT_MESSAGE_RATE)
    frame = encode_client_game_message("chat", {"text": "hi"})
    for _ in range(burst):
        session.receive_message(frame, 0.0)
    error = refusal(session, frame, 0.0)
    assert error.code is Code.RATE_LIMITED and not error.fatal
    assert session.game_messages is not None and session.game_messages.dropped == 1
    # Inputs still pass: the game messages' bucket is their own.
    row = RowEncoder(row_layout(InputFields({"x": ("float", -1.0, 1.0)}))).encode(1, 0, -1, {"x": 0.5})
    assert session.receive_message(row, 0.0) == row  # version 2: the row, for the room's batch
    # After a second, the bucket has refilled at the rate.
    assert session.receive_message(frame, 1.0) == GameMessage("chat", {"text": "hi"})
    # A client that keeps flooding collects strikes until it is closed (4006).
    fatal = None
    for _ in range(50):
        try:
            session.receive_message(frame, 1.0)
        except RemoteProtocolError as exc:
            if exc.fatal:
                fatal = exc
                break
    assert fatal is not None and fatal.code is Code.RATE_LIMITED


@pytest.mark.parametrize(
    ("types", "why"),
    [
        ({"bad kind": {}}, "names match"),
        ({"chat": {"text": ("str", 10_000)}}, "is not"),
        ({"chat": {"text": ("float", 0, 1)}}, "is not"),
        ({"chat": {"n": ("int", 5, 1)}}, "is not"),
        ({"chat": {"b": ("bool", 1)}}, "is not"),
        ({f"k{i}": {} for i in range(40)}, "exceed the limit"),
    ],
)
def test_a_bad_declaration_is_refused(types, why) -> None:
    with pytest.raises(ValueError, match=why):
        MessageTypes(types)


def test_the_rate_is_the_games_within_bounds() -> None:
    assert MessageTypes(TYPES, 20).rate == 20.0
    with pytest.raises(ValueError, match="message_rate"):
        MessageTypes(TYPES, 0)
    with pytest.raises(ValueError, match="message_rate"):
        MessageTypes(TYPES, 1000)
    assert MessageTypes(TYPES).describe() == {
        "chat": {"text": ["str", 10]},
        "buy": {"item": ["int", 0, 99], "gift": ["bool"]},
        "blob": {"data": ["bytes", 4]},
    }
