"""The client's side of a connection, sans-IO: shared by the Python client,
the load-test bots and the tests.

Feed it each server frame with ``receive(data)``; it returns the decoded
message and keeps the reconstructed world. Ask it for the bytes to send
(``join``, ``input``, ``ack``, ``ping``, ``leave``); it numbers inputs and
piggy-backs the acknowledgement of the newest applied snapshot.

Protocol version: 2 by default (``ClientSession(version=1)`` speaks the
deprecated version 1): inputs are rows of the welcome's layout
(tickroom.protocol.input_rows). Snapshots of either version are read
(version 2's is an array, tickroom.protocol.envelope).

Baselines: the server encodes each snapshot against the newest tick this
client acknowledged (that it still has), so the client keeps the worlds of
recent ticks. A snapshot with base B proves the server knows an ack >= B,
and acks only grow, so worlds older than B are never needed again.
"""

from __future__ import annotations

import enum
from typing import Any

import msgpack

from tickroom.protocol import envelope
from tickroom.protocol import messages as m
from tickroom.protocol.codec import encode_client
from tickroom.protocol.delta import DeltaError, WorldState, apply_delta
from tickroom.protocol.errors import LocalProtocolError
from tickroom.protocol.game_messages import GAME_MESSAGE, RoomMessage, decode_room_message, encode_client_game_message
from tickroom.protocol.input_rows import RowEncoder
from tickroom.protocol.schema import Schema

MAX_HISTORY = 128  # worlds kept for baselines, at most


class ClientState(enum.Enum):
    AWAIT_WELCOME = "await_welcome"
    JOINED = "joined"
    CLOSED = "closed"


class ClientSession:
    """One client's protocol state. Not thread-safe; no I/O."""

    def __init__(self, *, version: int = m.PROTOCOL_VERSION) -> None:
        if version not in m.SUPPORTED_VERSIONS:
            raise ValueError(f"protocol version {version} is not one of {m.SUPPORTED_VERSIONS}")
        self.version = version
        self._rows: RowEncoder | None = None  # version 2: the welcome's input row layout
        self.state = ClientState.AWAIT_WELCOME
        self.welcome: m.Welcome | None = None
        self.schema: Schema | None = None
        self.world: WorldState | None = None  # newest applied snapshot
        self.last_processed_seq = 0  # newest input seq the server applied
        self.next_seq = 1
        self.ping_id = 0
        self.events: list[list[Any]] = []  # game events not yet taken by the app
        self.room_messages: list[RoomMessage] = []  # the game's messages ("msg") not yet taken
        self._last_message_n = 0  # the newest game message number taken: a replay's repeats are skipped
        self._history: dict[int, WorldState] = {}
        self._last_event_tick = m.NO_TICK
        self._join: m.Join | None = None
        self.desyncs = 0
        self._resync = False  # a desync happened: resume from a full snapshot

    # -- outgoing ------------------------------------------------------------

    def join(
        self, *, room: str | None = None, game: str | None = None, name: str = "", ticket: str | None = None
    ) -> bytes:
        self._join = m.Join(version=self.version, name=name, room=room, game=game, ticket=ticket)
        return encode_client(self._join)

    def rejoin(self) -> bytes:
        """The join for a new connection of the same session (after a drop).

        Keeps the world history, so the server can resume deltas from the
        newest acknowledged tick instead of sending a full snapshot.
        """
        if self.welcome is None or self._join is None:
            raise LocalProtocolError("rejoin() before a welcome")
        self.state = ClientState.AWAIT_WELCOME
        msg = m.Join(
            version=self.version,
            name=self._join.name,
            room=self.welcome.room,
            session=self.welcome.session,
            ack=m.NO_TICK if self._resync else self.acked_tick,
        )
        self._resync = False
        return encode_client(msg)

    def input(self, *, acting_on: int | None = None, **data: Any) -> bytes:
        """An input message with the next sequence number. ``acting_on`` is
        the tick of the world the player saw when it chose it (its render
        tick, docs/protocol.md section 9, for lag compensation); by default
        the newest world's tick."""
        self._require_joined()
        seq = self.next_seq
        tick = self.server_tick if acting_on is None else acting_on
        if self._rows is not None:
            row = self._rows.encode(seq, tick, self.acked_tick, data)
            self.next_seq += 1
            return row
        msg = m.Input(seq=seq, tick=tick, ack=self.acked_tick, data=data)
        self.next_seq += 1
        return encode_client(msg)

    def message(self, kind: str, **data: Any) -> bytes:
        """A game message ("msg", docs/protocol.md 4.6) of one of the kinds
        the welcome's "messages" lists."""
        self._require_joined()
        return encode_client_game_message(kind, data)

    def ack(self) -> bytes:
        self._require_joined()
        return encode_client(m.Ack(tick=self.acked_tick))

    def ping(self) -> bytes:
        self.ping_id += 1
        return encode_client(m.Ping(id=self.ping_id))

    def leave(self) -> bytes:
        self.state = ClientState.CLOSED
        return encode_client(m.Leave())

    # -- incoming ------------------------------------------------------------

    def receive(self, data: bytes) -> m.ServerMessage | RoomMessage:
        """Decode one server frame and apply it.

        Raises DeltaError when a snapshot cannot be applied (a desync: the
        caller should rejoin), ValueError for a malformed frame.
        """
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
        if type(obj) is list:  # version 2's snapshot
            try:
                named = envelope.decode(obj)
            except ValueError as exc:  # not the 8 values of a snapshot: a desync (docs/protocol.md, 5.2)
                self._desynced()
                raise DeltaError(str(exc)) from None
            return self._on_snapshot(named)
        if not isinstance(obj, dict):
            raise ValueError("server message is neither a map nor a snapshot array")
        kind = obj.get("t")
        if kind == m.SNAPSHOT:
            return self._on_snapshot(obj)
        if kind == m.WELCOME:
            return self._on_welcome(obj)
        if kind == m.PONG:
            return m.Pong(id=obj["id"], tick=obj["tick"])
        if kind == m.ERROR:
            return m.Error(code=obj["code"], message=obj["msg"])
        if kind == m.REDIRECT:
            return m.Redirect(room=obj["room"], url=obj["url"])
        if kind == GAME_MESSAGE:
            msg = decode_room_message(obj)
            if msg.n > self._last_message_n:  # a rejoin replays what it may have missed (5.6)
                self._last_message_n = msg.n
                self.room_messages.append(msg)
            return msg
        raise ValueError(f"unknown server message type {kind!r}")

    def take_events(self) -> list[list[Any]]:
        """Game events received since the last call, each [tick, kind, ...]."""
        events, self.events = self.events, []
        return events

    def take_messages(self) -> list[RoomMessage]:
        """The game's messages to this client since the last call, in order."""
        messages, self.room_messages = self.room_messages, []
        return messages

    # -- state ---------------------------------------------------------------

    @property
    def acked_tick(self) -> int:
        return self.world.tick if self.world is not None else m.NO_TICK

    @property
    def server_tick(self) -> int:
        if self.world is not None:
            return self.world.tick
        return self.welcome.tick if self.welcome is not None else 0

    @property
    def player(self) -> int | None:
        return self.welcome.player if self.welcome is not None else None

    # -- internals -----------------------------------------------------------

    def _require_joined(self) -> None:
        if self.state is not ClientState.JOINED:
            raise LocalProtocolError(f"not joined (state {self.state.value})")

    def _on_welcome(self, obj: dict) -> m.Welcome:
        welcome = m.Welcome(
            version=obj["v"],
            room=obj["room"],
            game=obj["game"],
            player=obj["player"],
            session=obj["session"],
            tick_rate=obj["rate"],
            tick=obj["tick"],
            schema=obj["schema"],
            inputs=obj["inputs"],
            players=obj.get("players", []),
            options=obj.get("options", {}),
            messages=obj.get("messages", {}),
            layout=obj.get("layout", []),
        )
        if self.welcome is not None and welcome.session != self.welcome.session:
            # A new session (not a rejoin): nothing of the old world applies,
            # nor its tick and seq counters (its room's ticks may be lower,
            # which would hide every event; input seqs restart at 1).
            self._history.clear()
            self.world = None
            self._last_event_tick = m.NO_TICK
            self._last_message_n = 0
            self.last_processed_seq = 0
            self.next_seq = 1
        self.welcome = welcome
        self.schema = Schema.from_description(welcome.schema)
        self._rows = RowEncoder(welcome.layout) if welcome.version >= 2 else None
        self.state = ClientState.JOINED
        return welcome

    def _desynced(self) -> None:
        """Our baselines cannot be trusted: the next rejoin() acks nothing,
        so the server starts over with a full snapshot. The last good world
        stays readable meanwhile."""
        self.desyncs += 1
        self._resync = True

    def _on_snapshot(self, obj: dict) -> m.Snapshot:
        if self.schema is None:
            raise ValueError("snapshot before welcome")
        tick, base = obj["tick"], obj["base"]
        if base == m.NO_TICK:
            baseline = None
        else:
            baseline = self._history.get(base)
            if baseline is None:
                self._desynced()
                raise DeltaError(f"snapshot {tick} is a delta against tick {base}, which this client does not have")
        try:
            world = apply_delta(baseline, tick, obj, self.schema)
        except DeltaError:
            self._desynced()
            raise
        snap = m.Snapshot(tick=tick, base=base, seq=obj["seq"], fields=obj, events=obj.get("ev", []))
        if self.world is None or tick > self.world.tick:
            self.world = world
            self.last_processed_seq = snap.seq
            for event in snap.events:
                if event[0] > self._last_event_tick:
                    self.events.append(event)
            self._last_event_tick = tick
        self._history[tick] = world
        floor = max(base, tick - MAX_HISTORY)
        for old in [t for t in self._history if t < floor]:
            del self._history[old]
        return snap
