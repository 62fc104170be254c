"""Every message of the wire protocol, as frozen dataclasses.

On the wire each message is one WebSocket binary frame: a msgpack map whose
"t" key names the type, except in protocol version 2 an input (a binary row,
tickroom.protocol.input_rows) and a snapshot (a msgpack array,
tickroom.protocol.envelope). docs/protocol.md is the normative description;
the field names below are the wire keys unless a comment says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 2  # what the server and the reference clients speak
#: Versions a join may ask for: 1 is deprecated (its inputs are msgpack maps,
#: its snapshots maps of keys) and kept for the clients written against it.
SUPPORTED_VERSIONS = (1, 2)

# Message type tags ("t").
JOIN = "join"
INPUT = "input"
ACK = "ack"
PING = "ping"
LEAVE = "leave"
WELCOME = "welcome"
SNAPSHOT = "snap"
PONG = "pong"
ERROR = "error"
REDIRECT = "redirect"

NO_TICK = -1  # "ack"/"base" value meaning: no snapshot


# --- client -> server -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    """First message on a connection: join (or create) a room, or rejoin.

    ``session`` rejoins an existing player (same entity) within the grace
    period; ``ack`` is then the last snapshot tick the client still holds, so
    the server may resume deltas from it instead of sending a full snapshot.
    """

    version: int  # wire "v"
    name: str = ""
    room: str | None = None
    game: str | None = None
    ticket: str | None = None
    session: str | None = None
    ack: int = NO_TICK


@dataclass(frozen=True, slots=True)
class Input:
    """One input: ``seq`` counts up from 1 per session; ``ack`` piggy-backs the
    newest snapshot tick the client has applied; ``data`` (wire "in") is the
    game's payload, validated against the game's input fields."""

    seq: int
    tick: int  # the client's estimate of the server tick it is acting on
    ack: int
    data: Mapping[str, Any]  # wire "in"


@dataclass(frozen=True, slots=True)
class Ack:
    """Acknowledges a snapshot tick without sending an input (spectators)."""

    tick: int


@dataclass(frozen=True, slots=True)
class Ping:
    id: int


@dataclass(frozen=True, slots=True)
class Leave:
    pass


ClientMessage = Join | Input | Ack | Ping | Leave


# --- server -> client -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Welcome:
    """Answer to a successful join: who you are and how to read snapshots."""

    version: int  # wire "v"
    room: str
    game: str
    player: int  # the player's avatar entity id
    session: str  # token for rejoining after a dropped connection
    tick_rate: int  # wire "rate", ticks per second
    tick: int  # the room's current tick
    schema: Mapping[str, Any]  # component name -> {"dtype", "shape", ["scale"]}
    inputs: Mapping[str, Any]  # input field name -> ["float", lo, hi] | ["int", lo, hi] | ["bool"]
    # [[entity id, name], ...] of the players in the room now. A list, not a
    # map: msgpack maps with integer keys trip up several client libraries.
    players: list = field(default_factory=list)
    # The room's options (the game's, all of them: defaults filled in), so a
    # client draws an arena of the room's size rather than assuming one.
    options: Mapping[str, Any] = field(default_factory=dict)
    # The game's message types ("msg", docs/protocol.md 4.6): kind -> field -> spec.
    messages: Mapping[str, Any] = field(default_factory=dict)
    # Version 2: the input row's fields, [[name, wire dtype], ...] in row
    # order (tickroom.protocol.input_rows); empty in version 1.
    layout: list = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A state delta (or a full state when ``base`` is NO_TICK).

    ``fields`` holds the delta codec's "ids", "c", "rm" and "n" (see
    tickroom.protocol.delta); ``events`` are the game events of the ticks after
    ``base`` up to ``tick``, each ``[tick, kind, ...]``.
    """

    tick: int
    base: int
    seq: int  # last input seq the server applied for this client (0: none yet)
    fields: Mapping[str, Any]
    events: list = field(default_factory=list)  # wire "ev"


@dataclass(frozen=True, slots=True)
class Pong:
    id: int
    tick: int


@dataclass(frozen=True, slots=True)
class Error:
    code: int
    message: str  # wire "msg"


@dataclass(frozen=True, slots=True)
class Redirect:
    """The room is on another node: rejoin (same session) at ``url``. Sent
    before closing with code REDIRECT (4202)."""

    room: str
    url: str


ServerMessage = Welcome | Snapshot | Pong | Error | Redirect
