"""Game messages: small typed payloads beyond the numeric inputs.

A game declares its message types (tickroom.simulation.game,
``message_types``) as plain data, so that this layer validates them without
importing the simulation::

    {"chat": {"text": ("str", 200)},                 # at most 200 characters
     "buy": {"item": ("int", 0, 99), "gift": ("bool",)},
     "blob": {"data": ("bytes", 64)}}                # at most 64 bytes

A client sends one as ``{"t": "msg", "kind": "chat", "data": {"text": "hi"}}``
(docs/protocol.md, 4.6). ``GameMessageGate`` validates it on the connection,
before the room sees it: the kind must be declared, every field of the data
declared and of its type and bound (absent fields take their zero value: "",
b"", 0, false), and messages pass their own token bucket (``rate`` per
second, twice that deep) on top of the connection's. A refusal is
INVALID_MESSAGE or RATE_LIMITED, recoverable: a strike, as for inputs.

The server sends a game's message to one player, a set of players or all as
``{"t": "msg", "tick": T, "kind": ..., "data": {...}, "n": N}``
(docs/protocol.md, 5.6), reliably and in order (it never rides on a
snapshot, so a client on a full-snapshot fallback loses none); ``n`` numbers
one player's messages, so that a rejoin can replay them and the client keep
each once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tickroom.protocol.codec import MAX_CLIENT_STR_BYTES, packb
from tickroom.protocol.errors import Code, RemoteProtocolError

#: Message tag ("t"), the same word in both directions.
GAME_MESSAGE = "msg"
MAX_MESSAGE_TYPES = 32
MAX_MESSAGE_FIELDS = 16
# A str field, in code points: at 4 UTF-8 bytes each at most, any string a
# game allows fits the codec's string limit, so a long string is refused by
# its declared bound (4001), never by the codec (4000).
MAX_MESSAGE_STR_CHARS = MAX_CLIENT_STR_BYTES // 4
MAX_MESSAGE_BYTES_LEN = MAX_CLIENT_STR_BYTES  # a bytes field
#: A game's message to clients, encoded (its own "t", "tick", "kind", "data").
MAX_SERVER_MESSAGE_BYTES = 16 * 2**10
DEFAULT_MESSAGE_RATE = 5.0  # game messages per second per client, on average (a game may set its own)
MAX_MESSAGE_RATE = 60.0  # ... at most; the connection's own limit still applies on top
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_KEYS = frozenset({"t", "kind", "data"})
_ZERO: dict[str, Any] = {"str": "", "bytes": b"", "int": 0, "bool": False}


@dataclass(frozen=True, slots=True)
class GameMessage:
    """A validated client message for the game: ``kind`` is one the game
    declared, ``data`` has every declared field (absent ones zero)."""

    kind: str
    data: Mapping[str, Any]


def _check_spec(kind: str, name: str, spec: Any) -> tuple:
    """One field's spec, checked: ("str", n) | ("bytes", n) | ("int", lo, hi) | ("bool",)."""
    where = f"message {kind!r} field {name!r}"
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValueError(f"{where}: names match {NAME_RE.pattern}")
    if not isinstance(spec, (tuple, list)) or not spec:
        raise ValueError(f"{where}: needs a tuple spec, got {spec!r}")
    spec = tuple(spec)
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in spec[1:])
    if spec[0] == "bool" and len(spec) == 1:
        return spec
    if spec[0] == "int" and len(spec) == 3 and ints and -(2**63) <= spec[1] <= spec[2] < 2**63:
        return spec
    if spec[0] == "str" and len(spec) == 2 and ints and 0 <= spec[1] <= MAX_MESSAGE_STR_CHARS:
        return spec
    if spec[0] == "bytes" and len(spec) == 2 and ints and 0 <= spec[1] <= MAX_MESSAGE_BYTES_LEN:
        return spec
    raise ValueError(
        f'{where}: {spec!r} is not ("str", n <= {MAX_MESSAGE_STR_CHARS}), ("bytes", n <= '
        f'{MAX_MESSAGE_BYTES_LEN}), ("int", lo, hi) or ("bool",)'
    )


class MessageTypes:
    """A game's message types, checked once (ValueError for a bad
    declaration: the room is not made), and the rate a client may send them
    at (``rate`` per second on average, twice that in a burst)."""

    def __init__(self, description: Mapping[str, Mapping[str, Any]] | None, rate: float = DEFAULT_MESSAGE_RATE) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= MAX_MESSAGE_RATE:
            raise ValueError(f"message_rate must be a number in (0, {MAX_MESSAGE_RATE}], got {rate!r}")
        self.rate = float(rate)
        description = description or {}
        if len(description) > MAX_MESSAGE_TYPES:
            raise ValueError(f"{len(description)} message types exceed the limit of {MAX_MESSAGE_TYPES}")
        types: dict[str, dict[str, tuple]] = {}
        for kind, fields in description.items():
            if not isinstance(kind, str) or not NAME_RE.fullmatch(kind):
                raise ValueError(f"message type {kind!r}: names match {NAME_RE.pattern}")
            if not isinstance(fields, Mapping) or len(fields) > MAX_MESSAGE_FIELDS:
                raise ValueError(f"message type {kind!r}: a map of at most {MAX_MESSAGE_FIELDS} fields")
            types[kind] = {name: _check_spec(kind, name, spec) for name, spec in fields.items()}
        self.types = types

    def describe(self) -> dict[str, dict[str, list]]:
        """As the welcome carries them: ``{kind: {field: [spec...]}}``."""
        return {kind: {name: list(spec) for name, spec in fields.items()} for kind, fields in self.types.items()}

    def validate(self, obj: Mapping[str, Any]) -> GameMessage:
        """A decoded client map (its "t" is "msg") as a GameMessage, or
        RemoteProtocolError(INVALID_MESSAGE) saying what is wrong."""
        extra = obj.keys() - _KEYS
        if extra:
            raise _invalid(f"unknown key(s) in 'msg': {sorted(map(str, extra))}")
        kind = obj.get("kind")
        fields = self.types.get(kind) if isinstance(kind, str) else None
        if fields is None or not isinstance(kind, str):
            if not self.types:
                raise _invalid("this game takes no messages")
            raise _invalid(f"unknown message kind {kind!r}; this game takes {sorted(self.types)}")
        data = obj.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise _invalid("'data' must be a map")
        unknown = data.keys() - fields.keys()
        if unknown:
            raise _invalid(f"unknown field(s) of {kind!r}: {sorted(map(str, unknown))}")
        out = {}
        for name, spec in fields.items():
            value = data.get(name)
            out[name] = _ZERO[spec[0]] if value is None else _field(kind, name, spec, value)
        return GameMessage(kind, out)


def _field(kind: str, name: str, spec: tuple, value: Any) -> Any:
    what = f"{kind!r} field {name!r}"
    if spec[0] == "bool":
        if not isinstance(value, bool):
            raise _invalid(f"{what} must be true or false")
    elif spec[0] == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(f"{what} must be an integer")
        if not spec[1] <= value <= spec[2]:
            raise _invalid(f"{what} must be in [{spec[1]}, {spec[2]}]")
    elif spec[0] == "str":
        if not isinstance(value, str):
            raise _invalid(f"{what} must be a string")
        if len(value) > spec[1]:
            raise _invalid(f"{what} is longer than {spec[1]} characters")
    elif not isinstance(value, bytes):
        raise _invalid(f"{what} must be bin (bytes)")
    elif len(value) > spec[1]:
        raise _invalid(f"{what} is longer than {spec[1]} bytes")
    return value


def _invalid(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(Code.INVALID_MESSAGE, message)


class GameMessageGate:
    """One connection's game messages: validation and their own token bucket.
    ``now`` is seconds on any monotonic clock (the session's)."""

    def __init__(self, types: MessageTypes, now: float) -> None:
        self.types = types
        self.rate = types.rate
        self.burst = 2 * types.rate
        self._tokens = self.burst
        self._time = now
        self.dropped = 0

    def receive(self, obj: Mapping[str, Any], now: float) -> GameMessage:
        """Raises RemoteProtocolError: RATE_LIMITED over the bucket (the
        message is dropped, unread), INVALID_MESSAGE for a bad one."""
        tokens = min(self.burst, self._tokens + (now - self._time) * self.rate)
        self._time = now
        if tokens < 1.0:
            self._tokens = tokens
            self.dropped += 1
            raise RemoteProtocolError(
                Code.RATE_LIMITED, f"more than {self.rate:g} game messages per second; this one was dropped"
            )
        self._tokens = tokens - 1.0
        return self.types.validate(obj)


@dataclass(frozen=True, slots=True)
class RoomMessage:
    """A game's message as a client receives it (docs/protocol.md, 5.6)."""

    tick: int  # the room's tick when the game sent it
    kind: str
    data: Mapping[str, Any]
    n: int = 0  # this player's message number: 1, 2, 3 ... (a replay repeats one)


def decode_room_message(obj: Mapping[str, Any]) -> RoomMessage:
    """A decoded server "msg" map as a RoomMessage; ValueError if malformed."""
    tick, kind, data, n = obj.get("tick"), obj.get("kind"), obj.get("data"), obj.get("n")
    if type(tick) is not int or not isinstance(kind, str) or not isinstance(data, dict) or type(n) is not int:
        raise ValueError(f"malformed 'msg' from the server: {dict(obj)!r}")
    return RoomMessage(tick, kind, data, n)


def encode_client_game_message(kind: str, data: Mapping[str, Any]) -> bytes:
    """A client's "msg" (docs/protocol.md, 4.6)."""
    return packb({"t": GAME_MESSAGE, "kind": kind, "data": dict(data)})


def pack_game_message_shared(tick: int, kind: str, data: Mapping[str, Any]) -> bytes:
    """The key/value pairs of a server "msg" its targets share (all but "n"),
    packed once: like a snapshot's (tickroom.protocol.codec), each target's
    message is these behind a map header and its own number."""
    return b"".join(packb(item) for item in ("t", GAME_MESSAGE, "tick", tick, "kind", kind, "data", dict(data)))


_MESSAGE_MAP_HEADER = bytes([0x80 | 5])  # fixmap: t, tick, kind, data, n
_N_KEY = packb("n")


def finish_game_message(shared: bytes, n: int) -> bytes:
    """One player's "msg" (docs/protocol.md, 5.6): the shared pairs and its number ``n``."""
    return b"".join((_MESSAGE_MAP_HEADER, _N_KEY, packb(n), shared))
