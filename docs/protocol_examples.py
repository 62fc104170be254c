"""Generate the annotated byte dumps and the limits table of docs/protocol.md.

Every byte below is produced by the real code: the arena game
(tickroom.simulation.games.arena) with a fixed seed, the server's snapshot history and
codec (tickroom.server.rooms.snapshots, tickroom.protocol.codec, tickroom.protocol.delta), the server's input
validation (tickroom.protocol.session, and tickroom.protocol.input_rows for the
version 2 input rows) and the reference client (tickroom.protocol.client_session).
Nothing is random: the seed, the names and the session token are fixed, so the
output is the same on every run.

    python docs/protocol_examples.py          # print every block, to paste
    python docs/protocol_examples.py --write  # or update docs/protocol.md in place

tests/protocol/test_protocol_doc.py regenerates the blocks and checks that each
one appears verbatim in docs/protocol.md, so the page cannot drift from the code.

The scenario mirrors what a room does (server/rooms/room.py, Room._tick, and
server/rooms/seating.py, admit) without sockets or trio:

    tick 0   "ada" (entity 1) and "bob" (entity 2) join room "lobby";
             bob's client sends "join" and gets a "welcome"
    tick 1   the room steps; bob gets a full snapshot (he has acked nothing)
    -        bob's client sends an input (seq 1: move right, aim 0.5 rad, fire)
             that acknowledges tick 1
    tick 2   ada has left; bob moved, turned and fired (projectile, entity 3);
             bob gets a delta against tick 1 with seq 1 and the "leave" event
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import numpy as np  # noqa: E402

from tickroom.protocol import (
    codec,  # noqa: E402
    validate,  # noqa: E402
)
from tickroom.protocol import game_messages as gm  # noqa: E402
from tickroom.protocol import messages as m  # noqa: E402
from tickroom.protocol import session as server_session  # noqa: E402
from tickroom.protocol.client_session import MAX_HISTORY, ClientSession  # noqa: E402
from tickroom.protocol.delta import WorldState  # noqa: E402
from tickroom.protocol.envelope import FIELDS as SNAPSHOT_FIELDS  # noqa: E402
from tickroom.protocol.errors import Code, RemoteProtocolError  # noqa: E402
from tickroom.protocol.input_rows import HEADER_BYTES, InputRows, row_layout  # noqa: E402
from tickroom.protocol.schema import MAX_COMPONENTS, MAX_ROW_BYTES, MAX_SHAPE_DIMS, Schema  # noqa: E402
from tickroom.protocol.schema import MAX_NAME_CHARS as MAX_COMPONENT_NAME_CHARS  # noqa: E402
from tickroom.protocol.session import ServerSession  # noqa: E402
from tickroom.protocol.validate import InputFields  # noqa: E402
from tickroom.protocol.websocket_frames import MAX_FRAGMENTS  # noqa: E402
from tickroom.server.config import ServerConfig  # noqa: E402
from tickroom.server.rooms.game_mail import MAX_INBOX, MAX_LOGGED  # noqa: E402
from tickroom.server.rooms.room import RoomConfig  # noqa: E402
from tickroom.server.rooms.snapshots import SnapshotHistory  # noqa: E402
from tickroom.server.transport.connection import ConnectionLimits  # noqa: E402
from tickroom.server.transport.outbox import MAX_PENDING_BYTES  # noqa: E402
from tickroom.simulation.game import GameConfig, InputBatch  # noqa: E402
from tickroom.simulation.games.arena import Arena  # noqa: E402
from tickroom.simulation.options import resolve_options  # noqa: E402

SEED = 20240601
ROOM = "lobby"
TICK_RATE = 20
#: A fixed stand-in for the 24-character token the server draws with
#: secrets.token_urlsafe(18); same alphabet and length.
SESSION = "bobs-session-token-0001A"

HEX_BYTES_PER_LINE = 12
_HEX_WIDTH = HEX_BYTES_PER_LINE * 3 - 1


# --- the scenario ---------------------------------------------------------------


@dataclass
class Scenario:
    """The messages of the example, as raw bytes, plus what is needed to check them."""

    schema: Schema
    join: bytes
    welcome: bytes
    full: bytes
    input: bytes
    delta: bytes
    ack: bytes
    ping: bytes
    pong: bytes
    error: bytes
    leave: bytes
    rejoin: bytes
    worlds: dict[int, WorldState] = field(default_factory=dict)  # the server's, by tick
    error_code: int = 0
    layout: list[list[str]] = field(default_factory=list)  # the welcome's input row layout


def _input_batch(fields: InputFields, player: int, msgs: list[m.Input]) -> InputBatch:
    """The batch Room._collect_inputs builds for one player's inputs."""
    dtypes = {"float": np.float64, "int": np.int64, "bool": np.bool_}
    return InputBatch(
        players=np.full(len(msgs), player, dtype=np.int64),
        fields={
            name: np.asarray([msg.data[name] for msg in msgs], dtype=dtypes[spec[0]])
            for name, spec in fields.fields.items()
        },
    )


def build() -> Scenario:
    options = resolve_options(Arena, {})  # the room's options, every default filled in
    game = Arena(seed=SEED, config=GameConfig(tick_rate=TICK_RATE, max_players=16, options=options))
    schema = Schema.from_description(game.components)
    fields = InputFields(game.input_fields)
    history = SnapshotHistory(schema, RoomConfig().history_ticks)
    room_events: list[list[Any]] = []
    client = ClientSession()
    server = ServerSession()

    def tick(batch: InputBatch) -> None:
        """Room._tick after the inputs and the reaping: apply, step, tag, record."""
        game.apply_inputs(batch)
        events = game.step()
        t = game.tick
        tagged = [[t, *event] for event in room_events]
        tagged.extend([t, *event] for event in events)
        room_events.clear()
        view = game.view()
        history.record(WorldState.from_view(t, view.ids, view.components, schema), tagged)

    # tick 0: two players join; bob is the client we follow.
    ada = game.join("ada")
    room_events.append(["join", ada, "ada"])
    join = client.join(room=ROOM, name="bob")
    join_msg = server.receive_message(join, now=0.0)
    assert isinstance(join_msg, m.Join)
    bob = game.join(join_msg.name)
    room_events.append(["join", bob, join_msg.name])
    welcome = codec.encode_welcome(
        m.Welcome(
            version=m.PROTOCOL_VERSION,
            room=ROOM,
            game=game.name,
            player=bob,
            session=SESSION,
            tick_rate=TICK_RATE,
            tick=game.tick,
            schema=schema.describe(),
            inputs=fields.describe(),
            players=[[ada, "ada"], [bob, join_msg.name]],
            options=dict(game.config.options),
            layout=row_layout(fields),
        )
    )
    server.joined(fields, TICK_RATE, now=0.0)
    client.receive(welcome)

    # tick 1: nothing acked yet, so a full snapshot.
    tick(InputBatch.empty(fields.fields))
    worlds = {game.tick: history.latest}
    acked, last_seq = m.NO_TICK, 0
    full = codec.finish_snapshot(history.shared_payload(history.baseline_for(acked)), last_seq)
    client.receive(full)

    # bob's input row, acknowledging tick 1; the session passes it on, the
    # room's batch validates it (tickroom.server.rooms.input_rows_batch).
    rows = InputRows(fields)
    inp = client.input(mx=1.0, my=0.0, aim=0.5, fire=True)
    assert server.receive_message(inp, now=0.06) == inp
    decoded = rows.decode([inp])
    assert decoded.ok.all()
    data = {name: column[0].item() for name, column in decoded.fields.items()}
    msg = m.Input(seq=int(decoded.seq[0]), tick=int(decoded.tick[0]), ack=int(decoded.ack[0]), data=data)
    acked, last_seq = msg.ack, msg.seq

    # tick 2: ada left (Room._reap_players), bob's input applies, the room steps.
    game.leave(ada)
    room_events.append(["leave", ada])
    tick(_input_batch(fields, bob, [msg]))
    worlds[game.tick] = history.latest
    delta = codec.finish_snapshot(history.shared_payload(history.baseline_for(acked)), last_seq)
    client.receive(delta)

    # The small messages.
    ack = client.ack()
    ping = client.ping()
    pong = codec.encode_pong(m.Pong(id=client.ping_id, tick=game.tick))
    bad = rows.encoder.encode(2, game.tick, game.tick, {"mx": 2.0})
    refusals = rows.decode([bad]).refusals
    if not refusals:  # pragma: no cover - the validation let an out-of-range value through
        raise AssertionError("the out-of-range input was accepted")
    exc: RemoteProtocolError = refusals[0]
    error = codec.encode_error(m.Error(code=exc.code, message=exc.message))
    leave = client.leave()
    rejoin = client.rejoin()

    return Scenario(
        schema, join, welcome, full, inp, delta, ack, ping, pong, error, leave, rejoin, worlds, exc.code,
        row_layout(fields),
    )  # fmt: skip


# --- the annotator --------------------------------------------------------------


@dataclass
class _Line:
    offset: int
    raw: bytes
    text: str


class _Annotator:
    """Walks one msgpack value and describes every byte range.

    ``notes`` maps a key path (a tuple of map keys and array indices) to a
    comment for the value at that path. Byte arrays ("ids", "rm", a
    component's mask and values) are decoded as the protocol defines them.
    """

    def __init__(
        self, data: bytes, schema: Schema | None, notes: dict[tuple, str], positional: tuple[str, ...] = ()
    ) -> None:
        self.data = data
        # The names of a top-level array's positions (version 2's snapshot):
        # notes and byte arrays are found by name, as in a map.
        self.positional = positional
        self.schema = schema
        self.notes = notes
        self.lines: list[_Line] = []
        self.ids: list[int] = []  # the snapshot's "ids", for masks and rows
        self.masks: dict[str, list[int]] = {}  # component -> indices into ids

    # -- output --

    def emit(self, offset: int, raw: bytes, text: str) -> None:
        """One logical item; long ones wrap over several lines."""
        for start in range(0, max(len(raw), 1), HEX_BYTES_PER_LINE):
            self.lines.append(
                _Line(offset + start, raw[start : start + HEX_BYTES_PER_LINE], text if start == 0 else "")
            )

    def render(self) -> str:
        out = []
        for line in self.lines:
            hexes = " ".join(f"{b:02x}" for b in line.raw)
            out.append(f"{line.offset:04x}  {hexes:<{_HEX_WIDTH}}  {line.text}".rstrip())
        return "\n".join(out)

    # -- parsing --

    def _take(self, pos: int, n: int) -> bytes:
        if pos + n > len(self.data):
            raise ValueError("truncated msgpack")
        return self.data[pos : pos + n]

    def value(self, pos: int, path: tuple, depth: int, *, key: bool = False, position: int = -1) -> tuple[int, Any]:
        b = self.data[pos]
        pad = "  " * depth
        note = "" if key else self.notes.get(_generic(path), "")
        if position >= 0:  # a positional value: say which
            note = f"[{position}] {path[-1]}" + (f": {note}" if note else "")
        note = f"  <- {note}" if note else ""

        def scalar(size: int, v: Any, kind: str) -> tuple[int, Any]:
            shown = _show(v)
            label = f"key {shown}" if key else shown
            kind = "" if kind == shown else f" ({kind})"
            self.emit(pos, self._take(pos, size), f"{pad}{label}{kind}{note}")
            return pos + size, v

        if b <= 0x7F:
            return scalar(1, b, "positive fixint")
        if b >= 0xE0:
            return scalar(1, b - 0x100, "negative fixint")
        if 0x80 <= b <= 0x8F or b in (0xDE, 0xDF):
            if b <= 0x8F:
                n, hdr, kind = b & 0x0F, 1, "fixmap"
            elif b == 0xDE:
                n, hdr, kind = struct.unpack_from(">H", self.data, pos + 1)[0], 3, "map16"
            else:
                n, hdr, kind = struct.unpack_from(">I", self.data, pos + 1)[0], 5, "map32"
            self.emit(pos, self._take(pos, hdr), f"{pad}map, {n} entr{'y' if n == 1 else 'ies'} ({kind}){note}")
            pos += hdr
            out = {}
            for _ in range(n):
                pos, k = self.value(pos, path, depth + 1, key=True)
                pos, v = self.value(pos, path + (k,), depth + 2)
                out[k] = v
            return pos, out
        if 0x90 <= b <= 0x9F or b in (0xDC, 0xDD):
            if b <= 0x9F:
                n, hdr, kind = b & 0x0F, 1, "fixarray"
            elif b == 0xDC:
                n, hdr, kind = struct.unpack_from(">H", self.data, pos + 1)[0], 3, "array16"
            else:
                n, hdr, kind = struct.unpack_from(">I", self.data, pos + 1)[0], 5, "array32"
            self.emit(pos, self._take(pos, hdr), f"{pad}array, {n} item{'' if n == 1 else 's'} ({kind}){note}")
            pos += hdr
            items = []
            for i in range(n):
                if depth == 0 and self.positional:
                    pos, v = self.value(pos, path + (self.positional[i],), depth + 1, position=i)
                else:
                    pos, v = self.value(pos, path + (i,), depth + 1)
                items.append(v)
            return pos, items
        if 0xA0 <= b <= 0xBF or b in (0xD9, 0xDA, 0xDB):
            if b <= 0xBF:
                n, hdr, kind = b & 0x1F, 1, "fixstr"
            else:
                size = {0xD9: 1, 0xDA: 2, 0xDB: 4}[b]
                n = int.from_bytes(self._take(pos + 1, size), "big")
                hdr, kind = 1 + size, {0xD9: "str8", 0xDA: "str16", 0xDB: "str32"}[b]
            text = self._take(pos + hdr, n).decode("utf-8")
            shown = _show(text)
            label = f"key {shown}" if key else shown
            self.emit(pos, self._take(pos, hdr + n), f"{pad}{label} ({kind}, {n} byte{'' if n == 1 else 's'}){note}")
            return pos + hdr + n, text
        if b in (0xC4, 0xC5, 0xC6):
            size = {0xC4: 1, 0xC5: 2, 0xC6: 4}[b]
            n = int.from_bytes(self._take(pos + 1, size), "big")
            kind = {0xC4: "bin8", 0xC5: "bin16", 0xC6: "bin32"}[b]
            hdr = 1 + size
            payload = self._take(pos + hdr, n)
            if not note and len(path) == 3 and path[0] == "c":
                if path[2] == 0:
                    note = "  <- mask: every id carries it" if n == 0 else "  <- mask: 1 bit per id, LSB first"
                else:
                    note = "  <- rows, in ids order"
            self.emit(pos, self._take(pos, hdr), f"{pad}bin, {n} byte{'' if n == 1 else 's'} ({kind}){note}")
            self.binary(pos + hdr, payload, path, pad + "  ")
            return pos + hdr + n, payload
        if b == 0xC0:
            return scalar(1, None, "nil")
        if b in (0xC2, 0xC3):
            return scalar(1, b == 0xC3, "false" if b == 0xC2 else "true")
        if b == 0xCA:
            return scalar(5, struct.unpack_from(">f", self.data, pos + 1)[0], "float32")
        if b == 0xCB:
            return scalar(9, struct.unpack_from(">d", self.data, pos + 1)[0], "float64")
        ints = {0xCC: (">B", "uint8"), 0xCD: (">H", "uint16"), 0xCE: (">I", "uint32"), 0xCF: (">Q", "uint64"),
                0xD0: (">b", "int8"), 0xD1: (">h", "int16"), 0xD2: (">i", "int32"), 0xD3: (">q", "int64")}  # fmt: skip
        if b in ints:
            fmt, kind = ints[b]
            return scalar(1 + struct.calcsize(fmt), struct.unpack_from(fmt, self.data, pos + 1)[0], kind)
        raise ValueError(f"msgpack type byte {b:#04x} at {pos} is not used by this protocol")

    # -- byte arrays --

    def binary(self, pos: int, payload: bytes, path: tuple, pad: str) -> None:
        if not payload:
            return
        if path in (("ids",), ("rm",)):
            ids = np.frombuffer(payload, dtype="<u4").tolist()
            if path == ("ids",):
                self.ids = ids
            what = "id" if path == ("ids",) else "removed id"
            for i in range(0, len(ids), HEX_BYTES_PER_LINE // 4):
                chunk = ids[i : i + HEX_BYTES_PER_LINE // 4]
                self.emit(pos + 4 * i, payload[4 * i : 4 * (i + len(chunk))],
                          f"{pad}uint32 LE {what}{'s' if len(chunk) > 1 else ''} {', '.join(map(str, chunk))}")  # fmt: skip
            return
        if len(path) == 3 and path[0] == "c" and self.schema is not None:
            name, part = path[1], path[2]
            if part == 0:
                self.mask(pos, payload, name, pad)
            else:
                self.rows(pos, payload, name, pad)
            return
        self.emit(pos, payload, f"{pad}bytes")

    def mask(self, pos: int, payload: bytes, name: str, pad: str) -> None:
        carried = []
        for i, byte in enumerate(payload):
            bits = [j for j in range(8) if byte >> j & 1]
            carried.extend(8 * i + j for j in bits)
            which = ", ".join(f"bit {j} -> ids[{8 * i + j}] = {self._id(8 * i + j)}" for j in bits) or "no bits"
            self.emit(pos + i, payload[i : i + 1], f"{pad}mask byte {i} = 0b{byte:08b}: {which}")
        self.masks[name] = carried

    def rows(self, pos: int, payload: bytes, name: str, pad: str) -> None:
        spec = self.schema[name]  # type: ignore[index]
        rows = np.frombuffer(payload, dtype=spec.dtype).reshape((-1,) + spec.shape)
        owners = self.masks.get(name, list(range(len(rows))))
        per_line = max(1, HEX_BYTES_PER_LINE // spec.row_bytes)
        for start in range(0, len(rows), per_line):
            parts = []
            for k in range(start, min(start + per_line, len(rows))):
                value = rows[k].tolist()
                text = f"{self._id(owners[k])}: {value}"
                if spec.scale is not None:
                    text += f" /{spec.scale:g} = {_scaled(value, spec.scale)}"
                parts.append(text)
            label = f"{name} {spec.dtype.str}{list(spec.shape) if spec.shape else ''}"
            begin = start * spec.row_bytes
            end = min(len(rows), start + per_line) * spec.row_bytes
            self.emit(pos + begin, payload[begin:end], f"{pad}{label}, id {'; id '.join(parts)}")

    def _id(self, index: int) -> str:
        return str(self.ids[index]) if index < len(self.ids) else f"ids[{index}]?"


def _generic(path: tuple) -> tuple:
    """Paths into arrays of like items (players, events, rows) share notes."""
    return tuple("*" if isinstance(p, int) and i < len(path) - 1 else p for i, p in enumerate(path))


def _show(v: Any) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _scaled(value: Any, scale: float) -> Any:
    if isinstance(value, list):
        return "[" + ", ".join(_scaled(v, scale) for v in value) + "]"
    return f"{value / scale:.6g}"


def annotate_row(data: bytes, layout: list[list[str]], notes: dict[str, str]) -> str:
    """A version 2 input row, field by field (tickroom.protocol.input_rows)."""
    codes = {"<u4": "I", "<i4": "i", "<f8": "d", "<i8": "q", "|u1": "B"}
    parts = [("tag", "|u1"), ("seq", "<u4"), ("tick", "<i4"), ("ack", "<i4"), *((n, d) for n, d in layout)]
    lines, pos = [], 0
    for name, dtype in parts:
        size = struct.calcsize("<" + codes[dtype])
        (value,) = struct.unpack_from("<" + codes[dtype], data, pos)
        shown = _show(bool(value) if dtype == "|u1" and name != "tag" else value)
        note = notes.get(name, "")
        label = "row tag" if name == "tag" else name
        text = f"{label} = {shown} ({dtype})" + (f"  <- {note}" if note else "")
        lines.append(f"{pos:04x}  {data[pos : pos + size].hex(' '):<{_HEX_WIDTH}}  {text}")
        pos += size
    if pos != len(data):  # pragma: no cover - the layout and the row disagree
        raise ValueError(f"row of {len(data)} bytes, layout of {pos}")
    lines.append(f"{pos:04x}  ({pos} bytes in all: a {HEADER_BYTES}-byte header and the layout's fields)")
    return "\n".join(lines)


def annotate(
    data: bytes,
    schema: Schema | None = None,
    notes: dict[tuple, str] | None = None,
    positional: tuple[str, ...] = (),
) -> str:
    """An annotated hex dump of one msgpack message (the whole frame payload)."""
    ann = _Annotator(data, schema, notes or {}, positional)
    end, _ = ann.value(0, (), 0)
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes after the message")
    return ann.render() + f"\n{len(data):04x}  ({len(data)} bytes in all)"


# --- notes on fields --------------------------------------------------------------

_CLIENT_NOTES = {
    ("v",): "protocol version",
    ("room",): "room to join (created if absent)",
    ("name",): "display name",
    ("session",): "token from the welcome: rejoin",
    ("ack",): "newest snapshot tick applied",
    ("seq",): "input sequence number, from 1",
    ("tick",): "newest server tick the client knows",
    ("in", "aim"): "radians",
    ("id",): "echoed in the pong",
}
_REJOIN_NOTES = _CLIENT_NOTES | {
    ("room",): "the welcome's room",
    ("ack",): "newest tick held: resume deltas from it",
}
_WELCOME_NOTES = {
    ("player",): "your avatar's entity id",
    ("session",): "keep it to rejoin",
    ("rate",): "ticks per second",
    ("tick",): "the room's tick now",
    ("players", "*", 0): "entity id",
    ("players", "*", 1): "name",
    ("options",): "the room's game options",
    ("layout", "*", 0): "input field",
    ("layout", "*", 1): "its type in an input row",
}
_ROW_NOTES = {
    "tag": "an input row, not a msgpack map",
    "seq": "input sequence number, from 1",
    "tick": "newest server tick the client knows",
    "ack": "newest snapshot tick applied",
    "aim": "radians",
}
_SNAP_NOTES = {
    ("seq",): "newest input seq applied for you",
    ("tick",): "the world's tick",
    ("base",): "baseline tick (-1: full snapshot)",
    ("n",): "entity count after applying",
    ("ev", "*", 0): "event tick",
    ("ev", "*", 1): "event kind",
}
_PONG_NOTES = {("id",): "the ping's id", ("tick",): "the room's tick"}


# --- the blocks -------------------------------------------------------------------


def game_message_limits() -> list[tuple[str, object, str, str]]:
    """The rows of the game messages' limits (4.6, 5.6)."""
    where = "protocol/game_messages.py"
    return [
        ("`msg`: message types a game declares, max", gm.MAX_MESSAGE_TYPES, "no", f"{where} `MAX_MESSAGE_TYPES`"),
        ("`msg`: fields per type, max", gm.MAX_MESSAGE_FIELDS, "no", f"{where} `MAX_MESSAGE_FIELDS`"),
        ("`msg`: str field, max characters", gm.MAX_MESSAGE_STR_CHARS, "no", f"{where} `MAX_MESSAGE_STR_CHARS`"),
        ("`msg`: bytes field, max bytes", gm.MAX_MESSAGE_BYTES_LEN, "no", f"{where} `MAX_MESSAGE_BYTES_LEN`"),
        ("`msg` per second (default; the game may set up to 60)", gm.DEFAULT_MESSAGE_RATE, "no",
         f"{where} `DEFAULT_MESSAGE_RATE`"),
        ("`msg` burst, seconds of rate", 2, "no", f"{where} `GameMessageGate`"),
        ("`msg` per player per tick handed to the game, max (the rest wait)", MAX_INBOX, "no",
         "server/rooms/game_mail.py `MAX_INBOX`"),
        ("server `msg`, max bytes", gm.MAX_SERVER_MESSAGE_BYTES, "no", f"{where} `MAX_SERVER_MESSAGE_BYTES`"),
        ("server `msg` kept per player for a replay at its rejoin, max", MAX_LOGGED, "no",
         "server/rooms/game_mail.py `MAX_LOGGED`"),
    ]  # fmt: skip


def limits_table() -> str:
    """The "Limits and defaults" table, from the constants in the code."""
    cfg, room, conn = ServerConfig(), RoomConfig(), ConnectionLimits()
    rows = [
        ("protocol version (`v`)", m.PROTOCOL_VERSION, "no", "protocol/messages.py `PROTOCOL_VERSION`"),
        (
            "client frame, max bytes",
            cfg.max_message_bytes,
            "`--max-message-size`",
            "server/config.py `max_message_bytes`",
        ),
        ("client str or bin, max bytes", codec.MAX_CLIENT_STR_BYTES, "no", "protocol/codec.py `MAX_CLIENT_STR_BYTES`"),
        (
            "client array or map, max items",
            codec.MAX_CLIENT_CONTAINER_LEN,
            "no",
            "protocol/codec.py `MAX_CLIENT_CONTAINER_LEN`",
        ),
        ("`name`, max characters", validate.MAX_NAME_CHARS, "no", "protocol/validate.py `MAX_NAME_CHARS`"),
        (
            "`room` / `game`, max characters",
            validate.MAX_ROOM_ID_CHARS,
            "no",
            "protocol/validate.py `MAX_ROOM_ID_CHARS`",
        ),
        ("`session`, max characters", validate.MAX_TOKEN_CHARS, "no", "protocol/validate.py `MAX_TOKEN_CHARS`"),
        ("`ticket`, max characters", validate.MAX_TICKET_CHARS, "no", "protocol/validate.py `MAX_TICKET_CHARS`"),
        ("input `seq`, max", validate.MAX_SEQ, "no", "protocol/validate.py `MAX_SEQ`"),
        ("any tick, max", validate.MAX_TICK, "no", "protocol/validate.py `MAX_TICK`"),
        ("ping `id`, max", validate.MAX_PING_ID, "no", "protocol/validate.py `MAX_PING_ID`"),
        ("messages per tick (average)", cfg.rate_per_tick, "`--rate-per-tick`", "server/config.py `rate_per_tick`"),
        (
            "rate-limit burst, seconds of rate",
            server_session.BURST_SECONDS,
            "no",
            "protocol/session.py `BURST_SECONDS`",
        ),
        (
            "Ping/Pong frames before the join, max",
            server_session.CONTROL_FRAMES_BEFORE_JOIN,
            "no",
            "protocol/session.py `CONTROL_FRAMES_BEFORE_JOIN`",
        ),
        (
            "frames per client message, max",
            MAX_FRAGMENTS,
            "no",
            "protocol/websocket_frames.py `MAX_FRAGMENTS`",
        ),
        ("strikes tolerated", cfg.strike_limit, "`--strike-limit`", "server/config.py `strike_limit`"),
        (
            "strikes forgiven per second",
            server_session.STRIKE_DECAY_PER_S,
            "no",
            "protocol/session.py `STRIKE_DECAY_PER_S`",
        ),
        ("tick rate, Hz", cfg.tick_rate, "`--tick-rate`", "server/config.py `tick_rate`"),
        ("players per room", cfg.max_players, "`--max-players`", "server/config.py `max_players`"),
        (
            "handshake timeout, s",
            cfg.handshake_timeout_s,
            "`--handshake-timeout`",
            "server/config.py `handshake_timeout_s`",
        ),
        ("idle timeout, s", cfg.idle_timeout_s, "`--idle-timeout`", "server/config.py `idle_timeout_s`"),
        ("connections per node", cfg.max_connections, "`--max-connections`", "server/config.py `max_connections`"),
        (
            "connections per source address (0: no limit)",
            cfg.max_connections_per_ip,
            "`--max-connections-per-ip`",
            "server/config.py `max_connections_per_ip`",
        ),
        (
            "running rooms created by clients of one source address (0: no limit)",
            cfg.max_rooms_per_address,
            "`--max-rooms-per-address`",
            "server/config.py `max_rooms_per_address`",
        ),
        (
            "a client-created room nobody joined ends after, s",
            cfg.unjoined_close_s,
            "`--unjoined-close`",
            "server/config.py `unjoined_close_s`",
        ),
        ("ack timeout, s", cfg.ack_timeout_s, "`--ack-timeout`", "server/config.py `ack_timeout_s`"),
        ("rejoin grace, s", cfg.rejoin_grace_s, "`--rejoin-grace`", "server/config.py `rejoin_grace_s`"),
        ("close handshake wait, s", conn.close_timeout_s, "no", "server/transport/connection.py `close_timeout_s`"),
        ("baselines kept by the server, ticks", room.history_ticks, "no", "server/rooms/room.py `history_ticks`"),
        (
            "inputs applied per player per tick",
            room.max_inputs_per_tick,
            "no",
            "server/rooms/room.py `max_inputs_per_tick`",
        ),
        (
            "unsent reliable bytes before 4112",
            MAX_PENDING_BYTES,
            "no",
            "server/transport/outbox.py `MAX_PENDING_BYTES`",
        ),
        ("schema: components, max", MAX_COMPONENTS, "no", "protocol/schema.py `MAX_COMPONENTS`"),
        (
            "schema: component name, max characters",
            MAX_COMPONENT_NAME_CHARS,
            "no",
            "protocol/schema.py `MAX_NAME_CHARS`",
        ),
        ("schema: shape dimensions, max", MAX_SHAPE_DIMS, "no", "protocol/schema.py `MAX_SHAPE_DIMS`"),
        ("schema: row bytes, max", MAX_ROW_BYTES, "no", "protocol/schema.py `MAX_ROW_BYTES`"),
        ("worlds kept by the reference client, max", MAX_HISTORY, "no", "protocol/client_session.py `MAX_HISTORY`"),
        *game_message_limits(),
    ]
    out = ["| limit | value | server flag | defined in |", "| --- | --- | --- | --- |"]
    for what, value, flag, where in rows:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        out.append(f"| {what} | {value} | {flag} | {where} |")
    return "\n".join(out)


def blocks(scenario: Scenario | None = None) -> dict[str, str]:
    """Every generated block of docs/protocol.md, by name, in page order."""
    s = scenario or build()
    small = "\n\n".join(
        [
            "ack:\n" + annotate(s.ack, notes=_CLIENT_NOTES | {("tick",): "newest snapshot tick applied"}),
            "ping:\n" + annotate(s.ping, notes=_CLIENT_NOTES),
            "pong:\n" + annotate(s.pong, notes=_PONG_NOTES),
            "error:\n" + annotate(s.error, notes={("code",): Code(s.error_code).name, ("msg",): "for humans"}),
            "leave:\n" + annotate(s.leave),
        ]
    )
    return {
        "limits": limits_table(),
        "join": annotate(s.join, notes=_CLIENT_NOTES),
        "welcome": annotate(s.welcome, notes=_WELCOME_NOTES),
        "full": annotate(s.full, s.schema, _SNAP_NOTES, SNAPSHOT_FIELDS),
        "input": annotate_row(s.input, s.layout, _ROW_NOTES),
        "delta": annotate(s.delta, s.schema, _SNAP_NOTES, SNAPSHOT_FIELDS),
        "small": small,
        "rejoin": annotate(s.rejoin, notes=_REJOIN_NOTES),
    }


DOC = _ROOT / "docs" / "protocol.md"


def render(name: str, text: str) -> str:
    """A block as it stands in the page, between its markers."""
    return text if name == "limits" else f"```text\n{text}\n```"


def marked(name: str, text: str) -> str:
    return f"<!-- generated: {name} -->\n{render(name, text)}\n<!-- end generated: {name} -->"


def write(doc: Path = DOC) -> None:
    """Replace every generated block of the page, between its markers."""
    content = doc.read_text(encoding="utf-8")
    for name, text in blocks().items():
        start, end = f"<!-- generated: {name} -->\n", f"\n<!-- end generated: {name} -->"
        i = content.find(start)
        j = content.find(end, i + len(start)) if i >= 0 else -1
        if i < 0 or j < 0 or content.count(start) != 1:
            raise SystemExit(f"{doc}: no single pair of markers for {name!r}")
        content = content[: i + len(start)] + render(name, text) + content[j:]
    doc.write_text(content, encoding="utf-8")


def main(argv: list[str]) -> None:
    if argv == ["--write"]:
        write()
        print(f"updated {DOC}")
        return
    if argv:
        raise SystemExit("usage: python docs/protocol_examples.py [--write]")
    for name, text in blocks().items():
        print(marked(name, text))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
