"""Error codes and the protocol's two exceptions.

One number space serves both the ``error`` message's ``code`` and the
WebSocket close code, so a client needs one table (docs/protocol.md, "Close
codes"). 4000-4099 are the client's fault, 4100-4199 concern its room or
session, 4200-4299 are the server's doing. 1000/1001 are the standard ones.

Following wsproto/h11: ``LocalProtocolError`` is our own misuse of the API;
``RemoteProtocolError`` is the peer's fault and carries what to send back
(the code) and whether the connection must close now (``fatal``).
"""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    """Error and close codes. Values are part of the wire protocol."""

    NORMAL = 1000  # the client left (sent "leave") or the server closed cleanly
    GOING_AWAY = 1001  # the server is shutting down

    # 4000-4099: the client sent something wrong
    BAD_MESSAGE = 4000  # not msgpack, not a map, no/unknown "t", text frame
    INVALID_MESSAGE = 4001  # a known message with a wrong field: type, range, NaN, size
    MESSAGE_TOO_BIG = 4002  # a frame over the size limit; refused before decoding
    UNSUPPORTED_VERSION = 4003  # "join" asked for a protocol version we do not speak
    HANDSHAKE_REQUIRED = 4004  # anything but "join" first, or a second "join"
    HANDSHAKE_TIMEOUT = 4005  # no WebSocket upgrade or "join" in time
    RATE_LIMITED = 4006  # messages faster than the rate limit, for too long
    UNAUTHORIZED = 4007  # this server does not let clients create/join rooms that way
    INVALID_TICKET = 4008  # a join ticket that is malformed, forged, or already used
    TICKET_EXPIRED = 4009  # a join ticket past its expiry
    TICKET_WRONG_ROOM = 4010  # a join ticket for another room than the join names
    TOO_MANY_CONNECTIONS = 4011  # this source address holds its maximum of connections
    TOO_MANY_ROOMS = 4012  # this source address created its maximum of rooms that still run

    # 4100-4199: the room or the session
    ROOM_NOT_FOUND = 4100
    ROOM_FULL = 4101
    ROOM_CLOSED = 4102  # the room ended (idle, closed by an operator)
    ROOM_CRASHED = 4103  # the room's simulation failed; its state is gone
    UNKNOWN_GAME = 4104
    ROOM_RECOVERING = 4105  # the room's node is gone and another is taking it over: retry soon
    JOIN_REJECTED = 4106  # the game refused this player; the message says why
    MATCH_ENDED = 4107  # the game ended its match; the reason says how (final: join another room)
    KICKED = 4108  # the game or an operator removed this player; the reason says why (final: the session is gone)
    SESSION_UNKNOWN = 4110  # rejoin with a token that is unknown or past its grace period
    SESSION_REPLACED = 4111  # the same session joined again on another connection
    ACK_TIMEOUT = 4112  # no snapshot acknowledged for too long (a client not reading)
    IDLE_TIMEOUT = 4113  # nothing received for too long

    # 4200-4299: the server
    INTERNAL_ERROR = 4200
    SERVER_FULL = 4201
    REDIRECT = 4202  # the room is on another node (see the "redirect" message): reconnect there
    SERVER_OVERLOADED = 4203  # the node is over its measured capacity: join elsewhere, or here after a backoff


#: After 4203 (and with the control API's 503), a client or matchmaker waits
#: at least this long before it asks the same node again (docs/protocol.md,
#: section 8); a rejoin of a seated player is never refused with 4203.
OVERLOAD_RETRY_AFTER_S = 5


#: Codes sent as an "error" message while the connection stays open, unless
#: they keep coming (see ServerSession's strike counter).
RECOVERABLE = frozenset({Code.BAD_MESSAGE, Code.INVALID_MESSAGE, Code.RATE_LIMITED})


# What a client does after a close, per code: the one rule (docs/protocol.md,
# 3.8, 3.10 and the "what the client should do" column of section 8). A code
# in none of these sets is final: the client does not reconnect by itself
# (1000, 4111 SESSION_REPLACED, and every refusal: fix the request first).

#: The connection is gone but the session lives on the same node: rejoin with
#: the session token, the room and the newest tick held. 1006 (no close
#: frame: a network loss), 4112/4113 (the server timed the connection out),
#: and 1011/1012, which this server never sends but a proxy in front of it may
#: (internal error, service restart).
RESUME_CODES = frozenset({1006, 1011, 1012, int(Code.ACK_TIMEOUT), int(Code.IDLE_TIMEOUT)})

#: The room is moving to another node (3.10): rejoin with the session token,
#: at the URL of a preceding "redirect" (4202), else after a backoff at the
#: URL used or another node (4105, and 4202 without a "redirect").
FAILOVER_CODES = frozenset({int(Code.ROOM_RECOVERING), int(Code.REDIRECT)})

#: Every code after which a client rejoins its session.
REJOIN_CODES = RESUME_CODES | FAILOVER_CODES

#: The session is gone (the server shut down without a cluster, the room
#: ended or crashed, the token expired): join afresh, without ``session``;
#: the player gets a new avatar.
FRESH_CODES = frozenset(
    {int(Code.GOING_AWAY), int(Code.ROOM_CLOSED), int(Code.ROOM_CRASHED), int(Code.SESSION_UNKNOWN)}
)


class ProtocolError(Exception):
    """Base class of the protocol's errors."""


class LocalProtocolError(ProtocolError):
    """We used the protocol API wrongly (a bug on this side)."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol.

    ``code`` goes in the "error" message and, when ``fatal``, in the close
    frame; ``message`` is a human-readable reason safe to show the peer.
    """

    def __init__(self, code: Code, message: str, *, fatal: bool | None = None) -> None:
        super().__init__(f"{code.name} ({int(code)}): {message}")
        self.code = Code(code)
        self.message = message
        self.fatal = (self.code not in RECOVERABLE) if fatal is None else fatal
