"""Fuzzing the decoder, the validator and the session with hypothesis:
random bytes, random msgpack values, and mutations of valid frames (bit
flips, truncations, splices, type swaps, huge ints, NaN, deep nesting, huge
length headers). The only exception that may come out is the protocol's own
RemoteProtocolError; sizes are bounded, so nothing can hang."""

from __future__ import annotations

import random

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzzing import ARENA_INPUTS, VALID_FRAMES, mutate
from tickroom.protocol.codec import unpack_client_frame
from tickroom.protocol.errors import RemoteProtocolError
from tickroom.protocol.session import ServerSession, ServerState
from tickroom.protocol.validate import InputFields, validate_client_message

FIELDS = InputFields(ARENA_INPUTS)

msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40) | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.text(max_size=8) | st.sampled_from(["t", "seq", "in", "tick", "ack", "v"]), children, max_size=6),
    max_leaves=30,
)  # fmt: skip

client_like_maps = st.fixed_dictionaries(
    {"t": st.sampled_from(["join", "input", "ack", "ping", "leave", "nope"])},
    optional={
        "v": msgpack_values, "seq": msgpack_values, "tick": msgpack_values, "ack": msgpack_values,
        "id": msgpack_values, "name": msgpack_values, "room": msgpack_values, "session": msgpack_values,
        "in": st.dictionaries(st.sampled_from(["mx", "my", "aim", "fire", "x"]), msgpack_values, max_size=5)
        | msgpack_values,
    },
)  # fmt: skip


def decode_and_validate(data: bytes) -> None:
    """What the server does with one frame, outside a session."""
    try:
        obj = unpack_client_frame(data)
        validate_client_message(obj, FIELDS)
        validate_client_message(obj, None)
    except RemoteProtocolError:
        pass


def through_sessions(frames: list[bytes]) -> None:
    """The frames through a fresh session before and after a join."""
    before = ServerSession()
    after = ServerSession()
    after.joined(FIELDS, 20, now=0.0)
    for i, data in enumerate(frames):
        for session in (before, after):
            if session.state is ServerState.CLOSED:
                continue
            try:
                session.receive_message(data, now=i * 0.01)
            except RemoteProtocolError as exc:
                assert exc.code >= 4000
                if exc.fatal:
                    session.close()


@given(st.binary(max_size=512))
def test_random_bytes(data):
    decode_and_validate(data)
    through_sessions([data])


@given(msgpack_values)
def test_random_msgpack_values(value):
    decode_and_validate(msgpack.packb(value, use_bin_type=True))


@settings(max_examples=150)
@given(client_like_maps)
def test_maps_shaped_like_client_messages(obj):
    data = msgpack.packb(obj, use_bin_type=True)
    decode_and_validate(data)
    through_sessions([data])


@settings(max_examples=150)
@given(st.randoms(use_true_random=False), st.sampled_from(VALID_FRAMES))
def test_mutations_of_valid_frames(rng: random.Random, frame: bytes):
    frames = [mutate(rng, frame) for _ in range(8)]
    for data in frames:
        decode_and_validate(data)
    through_sessions(frames)


def test_a_thousand_seeded_mutations_in_one_session():
    rng = random.Random(6)
    through_sessions([mutate(rng) for _ in range(1000)])


def test_the_valid_frames_are_valid():
    for data in VALID_FRAMES:
        validate_client_message(unpack_client_frame(data), FIELDS)
