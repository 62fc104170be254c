"""protocol/validate.py: every rule, each refusal with its code, and what is
accepted (and how it is normalised). Maps are given as decoded msgpack would
give them, so these tests need no codec."""

from __future__ import annotations

import math

import pytest

from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code, RemoteProtocolError
from tickroom.protocol.validate import (
    MAX_NAME_CHARS,
    MAX_PING_ID,
    MAX_ROOM_ID_CHARS,
    MAX_SEQ,
    MAX_TICK,
    MAX_TICKET_CHARS,
    MAX_TOKEN_CHARS,
    InputFields,
    validate_client_message,
)

ARENA_INPUTS = {
    "mx": ("float", -1.0, 1.0),
    "my": ("float", -1.0, 1.0),
    "aim": ("float", -3.14159265, 3.14159265),
    "fire": ("bool",),
}
FIELDS = InputFields(ARENA_INPUTS)
IDLE = {"mx": 0.0, "my": 0.0, "aim": 0.0, "fire": False}


def refused(obj: dict, inputs: InputFields | None = FIELDS) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        validate_client_message(obj, inputs)
    return info.value


def join(**fields) -> dict:
    return {"t": "join", "v": m.PROTOCOL_VERSION, **fields}


def inp(**fields) -> dict:
    return {"t": "input", "seq": 1, "tick": 0, "ack": m.NO_TICK, "in": {}, **fields}


def payload(**fields) -> dict:
    return inp(**{"in": fields})


def cases(table: dict) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("obj", table.values(), ids=table.keys())


# --- refusals -----------------------------------------------------------------

BAD_TYPE = {
    "no t": {"seq": 1},
    "t unknown": {"t": "jion", "v": 1},
    "t upper case": {"t": "PING"},
    "t is an int": {"t": 1},
    "t is nil": {"t": None},
    "t is bytes": {"t": b"ping"},
    "t is a server message": {"t": "welcome"},
    "empty map": {},
}


@cases(BAD_TYPE)
def test_unknown_type_is_bad_message(obj: dict) -> None:
    assert refused(obj).code is Code.BAD_MESSAGE


INVALID = {
    # unknown keys, on every message type
    "join + unknown key": join(admin=True),
    "input + unknown key": inp(extra=1),
    "ack + unknown key": {"t": "ack", "tick": 1, "seq": 1},
    "ping + unknown key": {"t": "ping", "id": 1, "tick": 2},
    "leave + unknown key": {"t": "leave", "why": "bored"},
    # seq: uint32 from 1
    "seq 0": inp(seq=0),
    "seq negative": inp(seq=-1),
    "seq over uint32": inp(seq=MAX_SEQ + 1),
    "seq bool": inp(seq=True),
    "seq float": inp(seq=1.0),
    "seq str": inp(seq="1"),
    "seq nil": inp(seq=None),
    "seq missing": {"t": "input", "tick": 0, "in": {}},
    # input tick and ack
    "input tick negative": inp(tick=-1),
    "input tick over max": inp(tick=MAX_TICK + 1),
    "input tick float": inp(tick=1.5),
    "input tick bool": inp(tick=False),
    "input ack below -1": inp(ack=-2),
    "input ack over max": inp(ack=MAX_TICK + 1),
    "input ack str": inp(ack="3"),
    # ack message
    "ack tick below -1": {"t": "ack", "tick": -2},
    "ack tick over max": {"t": "ack", "tick": MAX_TICK + 1},
    "ack tick missing": {"t": "ack"},
    "ack tick float": {"t": "ack", "tick": 3.0},
    "ack tick bool": {"t": "ack", "tick": True},
    # input payload
    "payload unknown field": payload(jump=True),
    "payload NaN": payload(mx=math.nan),
    "payload +inf": payload(mx=math.inf),
    "payload -inf": payload(aim=-math.inf),
    "payload above range": payload(mx=1.0000001),
    "payload below range": payload(my=-1.5),
    "payload int out of range": payload(aim=4),
    "payload bool for float": payload(mx=True),
    "payload str for float": payload(mx="0.5"),
    "payload list for float": payload(mx=[0.5]),
    "payload str for bool": payload(fire="true"),
    "payload int for bool": payload(fire=1),
    "payload float for bool": payload(fire=0.0),
    "payload not a map (list)": inp(**{"in": [0.5, 0.5]}),
    "payload not a map (str)": inp(**{"in": "mx=1"}),
    "payload not a map (nil)": inp(**{"in": None}),
    # join
    "version missing": {"t": "join"},
    "version str": join(v="1"),
    "version float": join(v=1.0),
    "version bool": join(v=True),
    "version negative": join(v=-1),
    "room with a space": join(room="my room"),
    "room with a slash": join(room="a/b"),
    "room with a trailing newline": join(room="lobby\n"),
    "room non-ascii": join(room="lobbé"),
    "room empty": join(room=""),
    "room not a str": join(room=5),
    "room too long": join(room="r" * (MAX_ROOM_ID_CHARS + 1)),
    "game bad characters": join(game="arena!"),
    "game too long": join(game="g" * (MAX_ROOM_ID_CHARS + 1)),
    "name too long": join(name="n" * (MAX_NAME_CHARS + 1)),
    "name with a newline": join(name="ann\nbob"),
    "name with a NUL": join(name="ann\x00"),
    "name with an escape": join(name="\x1b[31mred"),
    "name with a bidi control": join(name="ann\u202e"),
    "name not a str": join(name=5),
    "token too long": join(session="t" * (MAX_TOKEN_CHARS + 1)),
    "token bad characters": join(session="tok en"),
    "token trailing newline": join(session="tok\n"),
    "token empty": join(session=""),
    "ticket too long": join(ticket="t" * (MAX_TICKET_CHARS + 1)),
    "ticket bad characters": join(ticket="a;b"),
    "ticket trailing newline": join(ticket="abc\n"),
    "join ack below -1": join(ack=-2),
    "join ack float": join(ack=1.0),
    # ping
    "ping id negative": {"t": "ping", "id": -1},
    "ping id over uint32": {"t": "ping", "id": MAX_PING_ID + 1},
    "ping id bool": {"t": "ping", "id": True},
    "ping id str": {"t": "ping", "id": "1"},
}


@cases(INVALID)
def test_invalid_message(obj: dict) -> None:
    exc = refused(obj)
    assert exc.code is Code.INVALID_MESSAGE
    assert exc.fatal is False  # recoverable: ServerSession decides when to close


def test_refusal_message_names_the_field() -> None:
    assert "'seq'" in refused(inp(seq=0)).message
    assert "'mx'" in refused(payload(mx=math.nan)).message


# --- acceptances --------------------------------------------------------------

ACCEPTED = {
    "input at the bounds": (
        inp(
            seq=MAX_SEQ, tick=MAX_TICK, ack=MAX_TICK, **{"in": {"mx": -1.0, "my": 1.0, "aim": 3.14159265, "fire": True}}
        ),
        m.Input(
            seq=MAX_SEQ, tick=MAX_TICK, ack=MAX_TICK, data={"mx": -1.0, "my": 1.0, "aim": 3.14159265, "fire": True}
        ),
    ),
    "input minimal: defaults": (
        {"t": "input", "seq": 1},
        m.Input(seq=1, tick=0, ack=m.NO_TICK, data=IDLE),
    ),
    "ack -1": ({"t": "ack", "tick": -1}, m.Ack(tick=m.NO_TICK)),
    "ack max": ({"t": "ack", "tick": MAX_TICK}, m.Ack(tick=MAX_TICK)),
    "ping 0": ({"t": "ping", "id": 0}, m.Ping(id=0)),
    "ping max": ({"t": "ping", "id": MAX_PING_ID}, m.Ping(id=MAX_PING_ID)),
    "ping without id": ({"t": "ping"}, m.Ping(id=0)),
    "leave": ({"t": "leave"}, m.Leave()),
    "join minimal": (join(), m.Join(version=m.PROTOCOL_VERSION)),
    "join at the limits": (
        join(
            name="n" * MAX_NAME_CHARS,
            room="R" * MAX_ROOM_ID_CHARS,
            game="a_b.c:d-e",
            session="t" * MAX_TOKEN_CHARS,
            ticket="A" * MAX_TICKET_CHARS,
            ack=MAX_TICK,
        ),
        m.Join(
            version=m.PROTOCOL_VERSION,
            name="n" * MAX_NAME_CHARS,
            room="R" * MAX_ROOM_ID_CHARS,
            game="a_b.c:d-e",
            session="t" * MAX_TOKEN_CHARS,
            ticket="A" * MAX_TICKET_CHARS,
            ack=MAX_TICK,
        ),
    ),
    "join: name stripped": (join(name="  ann  "), m.Join(version=m.PROTOCOL_VERSION, name="ann")),
    "join: unicode name": (join(name="Zoë 忍者"), m.Join(version=m.PROTOCOL_VERSION, name="Zoë 忍者")),
    "join: explicit nils": (
        join(room=None, game=None, ticket=None, session=None),
        m.Join(version=m.PROTOCOL_VERSION),
    ),
    # Unsupported versions are the session's call (UNSUPPORTED_VERSION), not a malformed join.
    "join: other version": (join(v=2), m.Join(version=2)),
}


@pytest.mark.parametrize("obj, expected", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted(obj: dict, expected: m.ClientMessage) -> None:
    assert validate_client_message(obj, FIELDS) == expected


def test_ints_for_float_fields_become_floats() -> None:
    msg = validate_client_message(payload(mx=1, my=-1, aim=0), FIELDS)
    assert msg.data == {"mx": 1.0, "my": -1.0, "aim": 0.0, "fire": False}
    assert all(type(msg.data[k]) is float for k in ("mx", "my", "aim"))


def test_missing_payload_fields_default() -> None:
    msg = validate_client_message(payload(fire=True), FIELDS)
    assert msg.data == {"mx": 0.0, "my": 0.0, "aim": 0.0, "fire": True}
    assert type(msg.data["mx"]) is float and msg.data["fire"] is True


def test_validated_payload_is_a_new_map() -> None:
    # The room gets the validated copy, never the client's own object.
    raw = {"mx": 0.5}
    msg = validate_client_message(payload(**raw), FIELDS)
    assert msg.data is not raw and raw == {"mx": 0.5}


def test_int_fields() -> None:
    fields = InputFields({"slot": ("int", 0, 9)})
    assert fields.validate({"slot": 9}) == {"slot": 9}
    assert fields.validate({}) == {"slot": 0}
    for bad in (10, -1, 1.0, True, "1"):
        with pytest.raises(RemoteProtocolError) as info:
            fields.validate({"slot": bad})
        assert info.value.code is Code.INVALID_MESSAGE


def test_input_payload_unvalidated_before_a_room() -> None:
    # Before join there are no input fields: the payload passes through, and
    # the session refuses the input itself (HANDSHAKE_REQUIRED).
    assert validate_client_message(payload(anything=1), None).data == {"anything": 1}


# --- InputFields descriptions -------------------------------------------------


def test_arena_description_round_trips() -> None:
    assert FIELDS.describe() == {name: list(spec) for name, spec in ARENA_INPUTS.items()}
    assert InputFields(FIELDS.describe()).fields == FIELDS.fields


BAD_DESCRIPTIONS = {
    "unknown kind": {"x": ("double", 0.0, 1.0)},
    "empty spec": {"x": ()},
    "float without bounds": {"x": ("float",)},
    "float with one bound": {"x": ("float", 0.0)},
    "float with four items": {"x": ("float", 0.0, 1.0, 2.0)},
    "lo above hi": {"x": ("float", 1.0, -1.0)},
    "int lo above hi": {"x": ("int", 5, 4)},
    "NaN bound": {"x": ("float", math.nan, 1.0)},
    "nil bound": {"x": ("float", None, 1.0)},
    "str bounds": {"x": ("float", "a", "b")},
    "bool bounds": {"x": ("int", False, True)},
    "bool with bounds": {"x": ("bool", 0, 1)},
    "spec not a sequence": {"x": 5},
    "spec a bare string": {"x": "float"},
    "name not a str": {1: ("bool",)},
}


@pytest.mark.parametrize("description", BAD_DESCRIPTIONS.values(), ids=BAD_DESCRIPTIONS.keys())
def test_input_fields_refuse_bad_descriptions(description: dict) -> None:
    with pytest.raises(ValueError):
        InputFields(description)


def test_nil_counts_as_absent_for_optional_fields() -> None:
    msg = validate_client_message(inp(tick=None, ack=None), FIELDS)
    assert (msg.tick, msg.ack) == (0, m.NO_TICK)
    assert validate_client_message(join(room=None, ack=None), None).ack == m.NO_TICK


def test_names_may_hold_emoji_sequences_but_not_control_characters() -> None:
    family = "\U0001f469\u200d\U0001f467"  # joined with a zero-width joiner
    assert validate_client_message(join(name=f"ann {family}"), None).name == f"ann {family}"
    assert refused(join(name="ann\x1b[31m")).code is Code.INVALID_MESSAGE
