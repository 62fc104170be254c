"""Malformed client frames, for the fuzz tests (in-process and live socket).

``mutate(rng, frame)`` damages a valid frame one way or several; the valid
frames are the protocol's own (join, input, ack, ping, leave). Sizes stay
bounded (at most a few KiB per frame) so a run has a bounded cost.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import msgpack

ARENA_INPUTS = {
    "mx": ("float", -1.0, 1.0),
    "my": ("float", -1.0, 1.0),
    "aim": ("float", -math.pi, math.pi),
    "fire": ("bool",),
}

VALID_MAPS: list[dict[str, Any]] = [
    {"t": "join", "v": 1, "name": "fuzz", "room": "fuzz-room"},
    {"t": "join", "v": 1, "room": "r", "session": "abc", "ack": 3},
    {"t": "input", "seq": 1, "tick": 3, "ack": 2, "in": {"mx": 1.0, "my": -0.5, "aim": 0.5, "fire": True}},
    {"t": "input", "seq": 7, "in": {}},
    {"t": "ack", "tick": 5},
    {"t": "ping", "id": 9},
    {"t": "leave"},
]
VALID_FRAMES = [msgpack.packb(obj, use_bin_type=True) for obj in VALID_MAPS]

_ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 2**31, 2**32, 2**63 - 1, -(2**63), 2**64 - 1,
    float("nan"), float("inf"), float("-inf"), -0.0, 1e308, 5e-324,
    "", "x" * 1000, "\u202e\u0000", b"", b"\xff" * 100, [], {}, [1] * 64, {"k": 1},
]  # fmt: skip


def _deep(depth: int) -> Any:
    obj: Any = 1
    for i in range(depth):
        obj = [obj] if i % 2 else {"d": obj}
    return obj


def _bit_flips(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))] if data else data


def _splice(rng: random.Random, data: bytes) -> bytes:
    other = rng.choice(VALID_FRAMES)
    return data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1) :]


def _random_bytes(rng: random.Random, data: bytes) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))


def _trailing(rng: random.Random, data: bytes) -> bytes:
    return data + rng.choice([b"\x00", b"\xc0", msgpack.packb({"t": "ping"})])


def _type_swap(rng: random.Random, data: bytes) -> bytes:
    obj = dict(rng.choice(VALID_MAPS))
    key = rng.choice(list(obj))
    obj[key] = rng.choice(_ODD_VALUES)
    if rng.random() < 0.3 and isinstance(obj.get("in"), dict):
        obj["in"] = {**obj["in"], rng.choice(list(ARENA_INPUTS) + ["zz"]): rng.choice(_ODD_VALUES)}
    return msgpack.packb(obj, use_bin_type=True)


def _extra_key(rng: random.Random, data: bytes) -> bytes:
    obj = dict(rng.choice(VALID_MAPS))
    obj[rng.choice(["x", "T", "", "\u00e9", "seq"])] = rng.choice(_ODD_VALUES)
    return msgpack.packb(obj, use_bin_type=True)


def _non_str_key(rng: random.Random, data: bytes) -> bytes:
    return msgpack.packb({1: "input", b"t": "ping", "t": "ack", "tick": 1}, use_bin_type=True, strict_types=False)


def _deep_nesting(rng: random.Random, data: bytes) -> bytes:
    obj = dict(rng.choice(VALID_MAPS))
    obj[rng.choice(list(obj))] = _deep(rng.choice([10, 100, 600]))
    return msgpack.packb(obj, use_bin_type=True)


def _raw_deep_header(rng: random.Random, data: bytes) -> bytes:
    # 3000 nested one-element arrays: far past msgpack's stack limit.
    return b"\x91" * rng.choice([100, 1000, 3000]) + b"\x01"


def _huge_lengths(rng: random.Random, data: bytes) -> bytes:
    # Headers that announce huge containers or strings with nothing behind.
    return rng.choice(
        [b"\xdf\xff\xff\xff\xff", b"\xdd\x7f\xff\xff\xff", b"\xdb\xff\xff\xff\xff", b"\xc6\xff\xff\xff\xff"]
    )


def _ext(rng: random.Random, data: bytes) -> bytes:
    return msgpack.packb({"t": "input", "seq": msgpack.ExtType(rng.randrange(128), b"12345678")}, use_bin_type=True)


def _not_a_map(rng: random.Random, data: bytes) -> bytes:
    return msgpack.packb(rng.choice(_ODD_VALUES[:20]), use_bin_type=True)


MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [
    _bit_flips, _truncate, _splice, _random_bytes, _trailing, _type_swap, _extra_key,
    _non_str_key, _deep_nesting, _raw_deep_header, _huge_lengths, _ext, _not_a_map,
]  # fmt: skip

MAX_FRAME_BYTES = 8 * 2**10  # no mutation yields more: bounded work per frame


def mutate(rng: random.Random, frame: bytes | None = None) -> bytes:
    """A damaged frame: one to three mutations of ``frame`` (default: a
    random valid one)."""
    data = frame if frame is not None else rng.choice(VALID_FRAMES)
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(MUTATIONS)(rng, data)
    return data[:MAX_FRAME_BYTES]
