"""Strict validation of everything a client can send.

A decoded map becomes a message dataclass here or raises RemoteProtocolError;
nothing unvalidated reaches a room. Rules: exact types (a bool is not an int,
an int is accepted where a float is expected), ranges, finite floats, string
lengths and alphabets, no unknown keys.
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code, RemoteProtocolError

MAX_NAME_CHARS = 32
MAX_ROOM_ID_CHARS = 64
MAX_TOKEN_CHARS = 128  # session tokens
MAX_TICKET_CHARS = 1024
MAX_SEQ = 2**32 - 1  # input sequence numbers are uint32, starting at 1
MAX_TICK = 2**31 - 1  # a room at 60 Hz runs 414 days before this
MAX_PING_ID = 2**32 - 1

_NAME_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
# Bidirectional overrides and isolates: they reorder the text around a name
# (in chat, in scoreboards) so a name can impersonate another.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

ROOM_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_.~+/=-]{1,1024}$")

_ALLOWED_KEYS = {
    m.JOIN: {"t", "v", "name", "room", "game", "ticket", "session", "ack"},
    m.INPUT: {"t", "seq", "tick", "ack", "in"},
    m.ACK: {"t", "tick"},
    m.PING: {"t", "id"},
    m.LEAVE: {"t"},
}


def _invalid(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(Code.INVALID_MESSAGE, message)


def _int(obj: Mapping, key: str, lo: int, hi: int, default: int | None = None) -> int:
    value = obj.get(key)
    if value is None:  # nil counts as absent, as for every optional field
        value = default
    # bool is an int subclass in Python; on the wire it is a different type.
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{key!r} must be an integer")
    if not lo <= value <= hi:
        raise _invalid(f"{key!r} must be in [{lo}, {hi}], got {value}")
    return value


def _fast_int(obj: Mapping, key: str, lo: int, hi: int, default: int | None = None) -> int:
    """_int for the hot path: a plain int in range costs one type check and
    one comparison; anything else takes _int's way (defaults, refusals)."""
    value = obj.get(key)
    if type(value) is int and lo <= value <= hi:
        return value
    return _int(obj, key, lo, hi, default)


def _str(obj: Mapping, key: str, max_chars: int, pattern: re.Pattern | None = None, *, optional: bool) -> str | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{key!r} must be a string")
    if len(value) > max_chars:
        raise _invalid(f"{key!r} is longer than {max_chars} characters")
    # fullmatch, not match: "$" also matches before a trailing newline, so
    # match() would let "room\n" through as a room id.
    if pattern is not None and not pattern.fullmatch(value):
        raise _invalid(f"{key!r} has characters outside {pattern.pattern}")
    return value


def _name(obj: Mapping) -> str:
    name = _str(obj, "name", MAX_NAME_CHARS, optional=True) or ""
    # Control characters (and line/paragraph separators) would let a name
    # forge log lines or break client UIs; everything else, emoji sequences
    # with zero-width joiners included, is a name.
    if any(ch in _BIDI_CONTROLS or unicodedata.category(ch) in _NAME_FORBIDDEN_CATEGORIES for ch in name):
        raise _invalid("'name' must be printable")
    return name.strip()


class InputFields:
    """Validator for a game's input payload, built from its plain description
    (``{"mx": ("float", -1, 1), "fire": ("bool",)}``, see tickroom.simulation.game)."""

    KINDS = ("float", "int", "bool")

    def __init__(self, description: Mapping[str, Any]) -> None:
        fields = {}
        for name, spec in description.items():
            if not isinstance(name, str) or not isinstance(spec, (tuple, list)):
                raise ValueError(f"input field {name!r}: needs a string name and a tuple spec, got {spec!r}")
            spec = tuple(spec)
            if not spec or spec[0] not in self.KINDS:
                raise ValueError(f"input field {name!r}: unknown kind in {spec!r}")
            if spec[0] == "bool":
                if len(spec) != 1:
                    raise ValueError(f"input field {name!r}: a bool takes no bounds, got {spec!r}")
            elif (
                len(spec) != 3
                # Checked before comparing: None or a str bound would raise
                # TypeError here, or in validate() on the first client input.
                or not all(isinstance(b, numbers.Real) and not isinstance(b, bool) for b in spec[1:])
                or not spec[1] <= spec[2]
            ):
                raise ValueError(f"input field {name!r}: needs (kind, lo, hi) with numeric lo <= hi, got {spec!r}")
            fields[name] = spec
        self.fields: dict[str, tuple] = fields
        # The hot path's view of the same rules (validate runs once per input
        # per player per tick): (name, kind, lo, hi) with the bounds as float.
        self._fast = tuple((name, spec[0], *(float(b) for b in spec[1:3])) if spec[0] != "bool"
                           else (name, "bool", 0.0, 0.0) for name, spec in fields.items())  # fmt: skip

    def describe(self) -> dict[str, list]:
        return {name: list(spec) for name, spec in self.fields.items()}

    def validate(self, payload: Any) -> dict[str, Any]:
        """Return the payload with every field present (absent ones are 0 or
        false), or raise INVALID_MESSAGE."""
        # Fast path: every field present with its exact wire type and in
        # range, nothing else. NaN and infinities fail the range comparison,
        # ints for floats and absent fields go the general way, which also
        # words every refusal.
        if type(payload) is dict and len(payload) == len(self._fast):
            out: dict[str, Any] = {}
            for name, kind, lo, hi in self._fast:
                value = payload.get(name)
                if kind == "float":
                    if type(value) is not float or not lo <= value <= hi:
                        break
                elif kind == "bool":
                    if value is not True and value is not False:
                        break
                elif type(value) is not int or not lo <= value <= hi:
                    break
                out[name] = value
            else:
                return out
        return self._validate(payload)

    def _validate(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise _invalid("'in' must be a map")
        unknown = payload.keys() - self.fields.keys()
        if unknown:
            raise _invalid(f"unknown input field(s): {sorted(map(str, unknown))}")
        out: dict[str, Any] = {}
        for name, spec in self.fields.items():
            value = payload.get(name)
            kind = spec[0]
            if kind == "bool":
                if value is None:
                    value = False
                elif not isinstance(value, bool):
                    raise _invalid(f"input {name!r} must be true or false")
            elif kind == "int":
                if value is None:
                    value = 0
                elif isinstance(value, bool) or not isinstance(value, int):
                    raise _invalid(f"input {name!r} must be an integer")
                elif not spec[1] <= value <= spec[2]:
                    raise _invalid(f"input {name!r} must be in [{spec[1]}, {spec[2]}]")
            else:
                if value is None:
                    value = 0.0
                elif isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise _invalid(f"input {name!r} must be a number")
                elif not math.isfinite(value):
                    raise _invalid(f"input {name!r} must be finite, got {value!r}")
                elif not spec[1] <= value <= spec[2]:
                    raise _invalid(f"input {name!r} must be in [{spec[1]}, {spec[2]}], got {value!r}")
                value = float(value)
            out[name] = value
        return out


def validate_client_message(obj: dict, inputs: InputFields | None) -> m.ClientMessage:
    """Turn a decoded client map into a message, or raise RemoteProtocolError.

    ``inputs`` validates an Input's payload; it is None before the player has
    joined a room (an Input then is refused by the session state machine).
    """
    kind = obj.get("t")
    if not isinstance(kind, str) or kind not in _ALLOWED_KEYS:
        raise RemoteProtocolError(Code.BAD_MESSAGE, f"unknown message type {kind!r}")
    extra = obj.keys() - _ALLOWED_KEYS[kind]
    if extra:
        raise _invalid(f"unknown key(s) in {kind!r}: {sorted(map(str, extra))}")

    if kind == m.INPUT:
        data = obj.get("in", {})
        return m.Input(  # positional: a keyword call costs twice as much, per input
            _fast_int(obj, "seq", 1, MAX_SEQ),  # seq
            _fast_int(obj, "tick", 0, MAX_TICK, default=0),  # tick
            _fast_int(obj, "ack", m.NO_TICK, MAX_TICK, default=m.NO_TICK),  # ack
            inputs.validate(data) if inputs is not None else data,  # data
        )
    if kind == m.ACK:
        return m.Ack(tick=_int(obj, "tick", m.NO_TICK, MAX_TICK))
    if kind == m.PING:
        return m.Ping(id=_int(obj, "id", 0, MAX_PING_ID, default=0))
    if kind == m.LEAVE:
        return m.Leave()
    # JOIN
    return m.Join(
        version=_int(obj, "v", 0, 2**16),
        name=_name(obj),
        room=_str(obj, "room", MAX_ROOM_ID_CHARS, ROOM_ID_RE, optional=True),
        game=_str(obj, "game", MAX_ROOM_ID_CHARS, ROOM_ID_RE, optional=True),
        ticket=_str(obj, "ticket", MAX_TICKET_CHARS, TOKEN_RE, optional=True),
        session=_str(obj, "session", MAX_TOKEN_CHARS, TOKEN_RE, optional=True),
        ack=_int(obj, "ack", m.NO_TICK, MAX_TICK, default=m.NO_TICK),
    )
