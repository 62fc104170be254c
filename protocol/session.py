"""The server's side of one client connection, sans-IO.

Bytes of one client frame in, a validated message out, or a
RemoteProtocolError saying what to send back and whether to close. The
transport owns the socket; the room never sees anything unvalidated.

State machine (an illegal transition is a LocalProtocolError, our bug):

    AWAIT_JOIN --joined()--> JOINED --close()--> CLOSED
        \\________________close()_______________/

Rules:
- In AWAIT_JOIN the only acceptable message is "join"; anything else, and any
  error at all, is fatal: there is no session yet to protect.
- In JOINED, a second "join" is fatal (HANDSHAKE_REQUIRED). Recoverable
  errors (BAD_MESSAGE, INVALID_MESSAGE, RATE_LIMITED) earn a strike; strikes
  leak away at STRIKE_DECAY_PER_S and past STRIKE_LIMIT the error turns fatal.
  So a client with an occasional bug gets error messages and stays, and one
  that keeps sending garbage or flooding is closed within a second or two.
- Every message after the join passes a token bucket sized from the tick rate;
  over it, the message is dropped (RATE_LIMITED, a strike).
- Protocol version 2 (the join's "v"): an input is a binary row
  (tickroom.protocol.input_rows), not a map. Here a row only takes its token
  and has its length checked; ``receive_message`` returns its bytes as they
  came, and the room decodes and validates a tick's rows of all its players
  in one batch. A msgpack "input" map on a version 2 connection is
  BAD_MESSAGE. Version 1 (deprecated) is unchanged.
- WebSocket control frames (Ping, Pong) share that budget (``control_frames``):
  after the join each takes a token, and each that finds the bucket empty is
  a strike, with one RATE_LIMITED error per read; before the join at most
  CONTROL_FRAMES_BEFORE_JOIN are allowed, and one more is fatal. So a ping
  or pong flood is closed with 4006 like any other flood, before or after
  the join.
"""

from __future__ import annotations

import enum

from tickroom.protocol import messages as m
from tickroom.protocol.codec import MAX_CLIENT_MESSAGE_BYTES, unpack_client_frame
from tickroom.protocol.errors import Code, LocalProtocolError, RemoteProtocolError
from tickroom.protocol.game_messages import GAME_MESSAGE, GameMessage, GameMessageGate
from tickroom.protocol.input_rows import ROW_TAG, InputRows
from tickroom.protocol.validate import InputFields, validate_client_message

STRIKE_LIMIT = 8  # recoverable errors tolerated in a burst
STRIKE_DECAY_PER_S = 1.0  # ... and forgiven at this rate
RATE_PER_TICK = 3  # messages per tick allowed on average (input, ack, ping)
BURST_SECONDS = 1.0  # bucket depth, in seconds of allowed rate
#: Ping/Pong frames tolerated before the join (there is no tick rate yet to
#: size a bucket from; a keepalive ping or two is all a real client sends in
#: the handshake timeout).
CONTROL_FRAMES_BEFORE_JOIN = 16


class ServerState(enum.Enum):
    AWAIT_JOIN = "await_join"
    JOINED = "joined"
    CLOSED = "closed"


class ServerSession:
    """Validates one connection's client messages. ``now`` arguments are
    seconds on any monotonic clock (the transport passes trio's)."""

    def __init__(
        self,
        *,
        max_message_bytes: int = MAX_CLIENT_MESSAGE_BYTES,
        rate_per_tick: float = RATE_PER_TICK,
        strike_limit: int = STRIKE_LIMIT,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.rate_per_tick = rate_per_tick
        self.strike_limit = strike_limit
        self.state = ServerState.AWAIT_JOIN
        self.inputs: InputFields | None = None
        self.version = m.PROTOCOL_VERSION  # the join's, once it came
        self._row_bytes = -1  # version 2: the length of an input row; -1: rows are refused
        self.strikes = 0.0
        self._strike_time = 0.0
        self._rate = 0.0
        self._burst = 0.0
        self._tokens = 0.0
        self._token_time = 0.0
        self.messages_dropped = 0
        self.control_frames_received = 0
        # The game's messages ("msg", tickroom.protocol.game_messages): set by
        # the transport with the join; None refuses them (no room yet).
        self.game_messages: GameMessageGate | None = None

    # -- transitions ---------------------------------------------------------

    def joined(self, inputs: InputFields, tick_rate: int, now: float, *, rows: InputRows | None = None) -> None:
        """The room accepted the join: validate inputs against its game.
        ``rows``: the game's row layout (version 2; built from ``inputs``
        when not given)."""
        if self.state is not ServerState.AWAIT_JOIN:
            raise LocalProtocolError(f"joined() in state {self.state}")
        self.state = ServerState.JOINED
        self.inputs = inputs
        if self.version >= 2:
            self._row_bytes = (rows if rows is not None else InputRows(inputs)).row_bytes
        self._rate = float(self.rate_per_tick * tick_rate)
        self._burst = self._rate * BURST_SECONDS
        self._tokens = self._burst
        self._token_time = now

    def close(self) -> None:
        """Idempotent."""
        self.state = ServerState.CLOSED

    # -- receiving -----------------------------------------------------------

    def check_size(self, nbytes: int) -> None:
        """Refuse a frame as soon as its size is known, before buffering it."""
        if nbytes > self.max_message_bytes:
            raise RemoteProtocolError(
                Code.MESSAGE_TOO_BIG, f"message of {nbytes} bytes exceeds the limit of {self.max_message_bytes}"
            )

    def text_frame(self, now: float) -> RemoteProtocolError:
        """What to answer a text frame with (the protocol is binary-only)."""
        return self._refuse(RemoteProtocolError(Code.BAD_MESSAGE, "text frames are not accepted; send binary"), now)

    def control_frames(self, count: int, now: float) -> None:
        """Charge ``count`` WebSocket Ping/Pong frames (one read's worth) to
        the connection's budget.

        Raises RemoteProtocolError (RATE_LIMITED): before the join, fatal once
        more than CONTROL_FRAMES_BEFORE_JOIN came; after it, when frames found
        the token bucket empty, each of them a strike (fatal past the limit).
        """
        if self.state is ServerState.CLOSED:
            raise LocalProtocolError("control_frames() on a closed session")
        self.control_frames_received += count
        if self.state is ServerState.AWAIT_JOIN:
            if self.control_frames_received > CONTROL_FRAMES_BEFORE_JOIN:
                raise self._refuse(
                    RemoteProtocolError(
                        Code.RATE_LIMITED,
                        f"more than {CONTROL_FRAMES_BEFORE_JOIN} ping/pong frames before 'join'",
                    ),
                    now,
                )
            return
        tokens = min(self._burst, self._tokens + (now - self._token_time) * self._rate)
        self._token_time = now
        taken = min(count, int(tokens))
        self._tokens = tokens - taken
        over = count - taken
        if over:
            self.messages_dropped += over
            raise self._refuse(
                RemoteProtocolError(Code.RATE_LIMITED, f"too many ping/pong frames; {over} over the rate limit"),
                now,
                strikes=over,
            )

    def receive_message(self, data: bytes, now: float) -> m.ClientMessage | GameMessage | bytes:
        """Decode and validate one client frame; a version 2 input row is
        returned as its bytes (length checked, values not: the room's batch
        validates them, tickroom.protocol.input_rows).

        Raises RemoteProtocolError; its ``fatal`` says whether to close.
        """
        if self.state is ServerState.JOINED:
            return self._receive_joined(data, now)
        if self.state is ServerState.CLOSED:
            raise LocalProtocolError("receive_message() on a closed session")
        try:  # AWAIT_JOIN
            self.check_size(len(data))
            msg = validate_client_message(unpack_client_frame(data), self.inputs)
            if not isinstance(msg, m.Join):
                raise RemoteProtocolError(Code.HANDSHAKE_REQUIRED, "the first message must be 'join'")
            if msg.version not in m.SUPPORTED_VERSIONS:
                raise RemoteProtocolError(
                    Code.UNSUPPORTED_VERSION,
                    f"protocol version {msg.version} is not supported; this server speaks "
                    + " and ".join(map(str, m.SUPPORTED_VERSIONS)),
                )
            self.version = msg.version
            return msg
        except RemoteProtocolError as exc:
            raise self._refuse(exc, now) from None

    def _receive_joined(self, data: bytes, now: float) -> m.ClientMessage | GameMessage | bytes:
        """receive_message in the JOINED state, the hot path (every input of
        every player): the same checks in the same order, inlined."""
        try:
            if len(data) > self.max_message_bytes:
                self.check_size(len(data))
            # The token bucket: refilled at the rate for the time since the
            # last message, at most BURST_SECONDS deep; a message takes one.
            tokens = self._tokens + (now - self._token_time) * self._rate
            self._token_time = now
            if tokens > self._burst:
                tokens = self._burst
            if tokens < 1.0:
                self._tokens = tokens
                self.messages_dropped += 1
                raise RemoteProtocolError(Code.RATE_LIMITED, "too many messages; this one was dropped")
            self._tokens = tokens - 1.0
            if self._row_bytes >= 0:  # version 2
                if data and data[0] == ROW_TAG:
                    if len(data) != self._row_bytes:
                        raise RemoteProtocolError(
                            Code.BAD_MESSAGE, f"an input row is {self._row_bytes} bytes in this room, got {len(data)}"
                        )
                    return data
                obj = unpack_client_frame(data)
                if obj.get("t") == m.INPUT:
                    raise RemoteProtocolError(Code.BAD_MESSAGE, "in protocol version 2 an input is a binary row")
                inputs = None
            else:
                obj = unpack_client_frame(data)
                inputs = self.inputs
            if obj.get("t") == GAME_MESSAGE and self.game_messages is not None:
                return self.game_messages.receive(obj, now)
            msg = validate_client_message(obj, inputs)
            if type(msg) is m.Join:
                raise RemoteProtocolError(Code.HANDSHAKE_REQUIRED, "already joined; 'join' is only valid once")
            return msg
        except RemoteProtocolError as exc:
            raise self._refuse(exc, now) from None

    def refuse(self, exc: RemoteProtocolError, now: float) -> RemoteProtocolError:
        """A version 2 input row that ``receive_message`` passed on was
        refused by the room's batched validation: count its strike as if
        this session had refused it (``fatal`` set past the limit)."""
        if self.state is ServerState.CLOSED:
            raise LocalProtocolError("refuse() on a closed session")
        return self._refuse(exc, now)

    # -- internals -----------------------------------------------------------

    def _refuse(self, exc: RemoteProtocolError, now: float, *, strikes: int = 1) -> RemoteProtocolError:
        if self.state is not ServerState.JOINED:
            exc.fatal = True
        elif not exc.fatal:
            self.strikes = max(0.0, self.strikes - (now - self._strike_time) * STRIKE_DECAY_PER_S) + strikes
            self._strike_time = now
            if self.strikes > self.strike_limit:
                exc.fatal = True
                exc.message += f" (more than {self.strike_limit} errors in a row: closing)"
        return exc
