"""protocol/codec.py: bounded decoding of client frames, and every encoder
round-tripped through the real decoder on the other side (ClientSession for
server messages, unpack_client_frame + validate_client_message for client
messages)."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession
from tickroom.protocol.codec import (
    MAX_CLIENT_CONTAINER_LEN,
    MAX_CLIENT_STR_BYTES,
    encode_client,
    encode_error,
    encode_pong,
    encode_snapshot,
    encode_welcome,
    finish_snapshot,
    pack_snapshot_shared,
    packb,
    unpack_client_frame,
)
from tickroom.protocol.delta import WorldState, encode_delta
from tickroom.protocol.errors import Code, RemoteProtocolError
from tickroom.protocol.schema import Schema
from tickroom.protocol.validate import InputFields, validate_client_message

ARENA_INPUTS = {
    "mx": ("float", -1.0, 1.0),
    "my": ("float", -1.0, 1.0),
    "aim": ("float", -3.14159265, 3.14159265),
    "fire": ("bool",),
}
SCHEMA_DESC = {"pos": {"dtype": "<i2", "shape": [2], "scale": 32.0}, "hp": {"dtype": "|u1", "shape": []}}
SNAPSHOT_KEYS = {"t", "seq", "tick", "base", "ids", "c", "rm", "n", "ev"}


def nested_arrays(depth: int) -> bytes:
    """[[[...[nil]...]]]: one byte a level, so a 4 KiB frame nests ~4000 deep."""
    return b"\x91" * depth + b"\xc0"


def nested_maps(depth: int) -> bytes:
    """{"a": {"a": ... nil}}: three bytes a level."""
    return b"\x81\xa1a" * depth + b"\xc0"


PING = packb({"t": "ping", "id": 5})

BAD_FRAMES = {
    "empty": b"",
    "reserved byte 0xc1": b"\xc1",
    "garbage": b"\xc1\xff\x00\x13\x37",
    "truncated map": PING[:-1],
    "truncated header": PING[:1],
    "str32 header, no body": b"\xdb\xff\xff\xff\xff",
    "extra data after the map": PING + b"\x01",
    "two maps": PING + PING,
    "an array": packb(["ping", 5]),
    "an int": packb(5),
    "a string": packb("ping"),
    "nil": packb(None),
    "int key": packb({"t": "ping", 1: 2}),
    "float key": packb({1.5: "ping"}),
    "nil key": packb({None: "ping"}),
    "bin key": packb({b"t": "ping"}),
    "bin key beside str keys": packb({"t": "ping", b"id": 5}),
    "bin key in a nested map": packb({"t": "input", "seq": 1, "in": {b"mx": 0.5}}),
    "int key in a nested map": packb({"t": "input", "seq": 1, "in": {1: 0.5}}),
    "array key": b"\x81\x91\x01\xa4ping",
    "map key": b"\x81\x81\x01\x01\xa4ping",
    "invalid utf-8": b"\x81\xa1t\xa2\xff\xfe",
    "str one over the limit": packb({"t": "x" * (MAX_CLIENT_STR_BYTES + 1)}),
    "bin one over the limit": packb({"t": b"x" * (MAX_CLIENT_STR_BYTES + 1)}),
    "array one over the limit": packb({"t": list(range(MAX_CLIENT_CONTAINER_LEN + 1))}),
    "map one over the limit": packb({f"k{i}": 0 for i in range(MAX_CLIENT_CONTAINER_LEN + 1)}),
    "array32 header claiming 4G items": b"\xdd\xff\xff\xff\xff",
    "map32 header claiming 4G pairs": b"\xdf\xff\xff\xff\xff",
    "ext type": packb({"t": msgpack.ExtType(1, b"ab")}),
    "timestamp ext": packb({"t": msgpack.Timestamp(1, 0)}),
    "deeply nested arrays": b"\x81\xa1t" + nested_arrays(4000),
    "deeply nested maps": nested_maps(1300),
}


@pytest.mark.parametrize("data", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_unpack_refuses_with_bad_message(data: bytes) -> None:
    # pytest.raises(RemoteProtocolError) lets any other exception type fail the test.
    with pytest.raises(RemoteProtocolError) as info:
        unpack_client_frame(data)
    assert info.value.code is Code.BAD_MESSAGE
    assert info.value.fatal is False  # recoverable; the session decides


@pytest.mark.parametrize(
    "obj",
    [
        {"t": "x" * MAX_CLIENT_STR_BYTES},
        {"t": b"x" * MAX_CLIENT_STR_BYTES},
        {"t": list(range(MAX_CLIENT_CONTAINER_LEN))},
        {f"k{i}": 0 for i in range(MAX_CLIENT_CONTAINER_LEN)},
        {"t": "ping", "in": {"a": [[[1]]]}},
    ],
    ids=["str at the limit", "bin at the limit", "array at the limit", "map at the limit", "shallow nesting"],
)
def test_unpack_accepts_up_to_the_limits(obj: dict) -> None:
    assert unpack_client_frame(packb(obj)) == obj


def test_unpack_nesting_limit_is_below_a_frame() -> None:
    # A little nesting is fine; what a 4 KiB frame can nest is refused.
    assert unpack_client_frame(b"\x81\xa1t" + nested_arrays(10)) == {"t": [[[[[[[[[[None]]]]]]]]]]}
    with pytest.raises(RemoteProtocolError):
        unpack_client_frame(b"\x81\xa1t" + nested_arrays(4 * 2**10))


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_unpack_arbitrary_bytes_gives_a_map_or_bad_message(data: bytes) -> None:
    try:
        obj = unpack_client_frame(data)
    except RemoteProtocolError as exc:
        assert exc.code is Code.BAD_MESSAGE
    else:
        assert isinstance(obj, dict) and all(isinstance(k, str) for k in obj)


# --- server messages through the client's decoder ------------------------------


def welcome(**overrides) -> m.Welcome:
    fields = dict(
        version=m.PROTOCOL_VERSION,
        room="r-1",
        game="arena",
        player=7,
        session="tok_abc",
        tick_rate=20,
        tick=100,
        schema=SCHEMA_DESC,
        inputs=InputFields(ARENA_INPUTS).describe(),
        players=[[7, "ann"], [9, "bob"]],
    )
    fields.update(overrides)
    return m.Welcome(**fields)


def test_welcome_round_trip() -> None:
    msg = welcome()
    client = ClientSession()
    assert client.receive(encode_welcome(msg)) == msg
    assert client.schema == Schema.from_description(SCHEMA_DESC)


def test_welcome_tuples_become_lists() -> None:
    # Games describe inputs with tuples; the wire has arrays only.
    msg = welcome(inputs=ARENA_INPUTS, players=[(7, "ann")])
    got = ClientSession().receive(encode_welcome(msg))
    assert got.inputs == {name: list(spec) for name, spec in ARENA_INPUTS.items()}
    assert got.players == [[7, "ann"]]


@pytest.mark.parametrize("msg", [m.Pong(id=0, tick=0), m.Pong(id=2**32 - 1, tick=2**31 - 1)])
def test_pong_round_trip(msg: m.Pong) -> None:
    assert ClientSession().receive(encode_pong(msg)) == msg


@pytest.mark.parametrize("code", [Code.INVALID_MESSAGE, Code.ROOM_FULL, Code.INTERNAL_ERROR])
def test_error_round_trip(code: Code) -> None:
    got = ClientSession().receive(encode_error(m.Error(code=code, message="why: ünïcode")))
    assert got == m.Error(code=int(code), message="why: ünïcode")
    assert type(got.code) is int  # a plain int on the wire, not an enum


def world(tick: int, ids: list[int], schema: Schema) -> WorldState:
    n = len(ids)
    pos = (np.arange(n * 2, dtype="<i2").reshape(n, 2) + tick).astype("<i2")
    hp = np.full(n, tick % 256, dtype="|u1")
    return WorldState.from_view(tick, np.array(ids, dtype="<u4"), {"pos": pos, "hp": hp}, schema)


@pytest.mark.parametrize("seq", [0, 127, 128, 2**16, 2**32 - 1])
def test_finish_snapshot_is_one_map_with_nine_keys(seq: int) -> None:
    schema = Schema.from_description(SCHEMA_DESC)
    fields = encode_delta(world(5, [1, 2, 3], schema), None, schema)
    shared = pack_snapshot_shared(5, m.NO_TICK, fields, [[5, "boom", 2]])
    data = finish_snapshot(shared, seq)
    obj = msgpack.unpackb(data, raw=False)  # raises ExtraData on trailing bytes
    assert isinstance(obj, dict)
    assert set(obj) == SNAPSHOT_KEYS
    assert obj["seq"] == seq
    assert (obj["t"], obj["tick"], obj["base"], obj["n"], obj["ev"]) == (m.SNAPSHOT, 5, m.NO_TICK, 3, [[5, "boom", 2]])
    # The shared part really is shared: two clients differ only in seq.
    assert finish_snapshot(shared, seq).endswith(shared)


@pytest.mark.parametrize("seq", [0, 127, 128, 2**16, 2**32 - 1])
def test_snapshot_round_trip_through_client(seq: int) -> None:
    schema = Schema.from_description(SCHEMA_DESC)
    client = ClientSession()
    client.receive(encode_welcome(welcome()))
    w1, w2 = world(1, [1, 2, 3], schema), world(2, [2, 3, 4], schema)

    full = encode_delta(w1, None, schema)
    snap = client.receive(finish_snapshot(pack_snapshot_shared(1, m.NO_TICK, full, [[1, "spawn", 1]]), seq))
    assert (snap.tick, snap.base, snap.seq, snap.events) == (1, m.NO_TICK, seq, [[1, "spawn", 1]])
    assert client.world.equals(w1) and client.world.tick == 1

    delta = encode_delta(w2, w1, schema)
    snap = client.receive(encode_snapshot(m.Snapshot(tick=2, base=1, seq=seq, fields=delta, events=[])))
    assert (snap.tick, snap.base, snap.seq) == (2, 1, seq)
    assert client.world.equals(w2) and client.world.tick == 2
    assert client.last_processed_seq == seq


# --- client messages through the server's validator ---------------------------

CLIENT_MESSAGES = {
    "join minimal": m.Join(version=m.PROTOCOL_VERSION),
    "join by room": m.Join(version=m.PROTOCOL_VERSION, name="ann", room="lobby-1", game="arena"),
    "join with ticket": m.Join(version=m.PROTOCOL_VERSION, name="ann", ticket="eyJh.bGc=~+/"),
    "rejoin": m.Join(version=m.PROTOCOL_VERSION, name="ann", room="r:1", session="tok_abc-123", ack=41),
    "rejoin without a tick": m.Join(version=m.PROTOCOL_VERSION, session="tok", ack=m.NO_TICK),
    "input": m.Input(seq=1, tick=10, ack=9, data={"mx": 0.5, "my": -1.0, "aim": 3.0, "fire": True}),
    "input, no ack": m.Input(
        seq=2**32 - 1, tick=0, ack=m.NO_TICK, data={"mx": 0.0, "my": 0.0, "aim": 0.0, "fire": False}
    ),
    "ack": m.Ack(tick=12),
    "ack nothing": m.Ack(tick=m.NO_TICK),
    "ping": m.Ping(id=3),
    "leave": m.Leave(),
}


@pytest.mark.parametrize("msg", CLIENT_MESSAGES.values(), ids=CLIENT_MESSAGES.keys())
def test_client_message_round_trip(msg: m.ClientMessage) -> None:
    data = encode_client(msg)
    got = validate_client_message(unpack_client_frame(data), InputFields(ARENA_INPUTS))
    assert got == msg
    assert type(got) is type(msg)


def test_encode_client_refuses_server_messages() -> None:
    with pytest.raises(TypeError):
        encode_client(m.Pong(id=1, tick=1))  # type: ignore[arg-type]
