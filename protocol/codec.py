"""msgpack encoding of messages, and bounded decoding.

Decoding is bounded by construction: the frame size is checked by the
transport before we get here, and msgpack is told the longest string, bin,
array and map it may build, so a 4 KiB frame can never make us allocate more
than a few KiB (msgpack's own stack limit bounds nesting).

Snapshots are the hot path: the part shared by every client with the same
baseline is packed once (``pack_snapshot_shared``) and each client's message
is that part behind a 1-byte map header and its own "seq" (``finish_snapshot``;
protocol version 2's positional snapshot, tickroom.protocol.envelope, is
that part behind a 1-byte array header and the seq).
msgpack maps are a header plus alternating keys and values, so concatenating
pre-packed pairs is a valid encoding, and costs a bytes join per client.
"""

from __future__ import annotations

from typing import Any

import msgpack

from tickroom.protocol import envelope
from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code, RemoteProtocolError

#: Default limit on one client frame; refused unread above this.
MAX_CLIENT_MESSAGE_BYTES = 4 * 2**10  # 4 KiB
#: Longest string a client message may hold (names, tokens, tickets).
MAX_CLIENT_STR_BYTES = 1 * 2**10  # 1 KiB
MAX_CLIENT_CONTAINER_LEN = 64  # items in any array or map a client sends

_packer_opts = dict(use_bin_type=True)


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, **_packer_opts)


def unpack_client_frame(data: bytes) -> dict:
    """Decode one client frame into a map, with hard limits.

    Raises RemoteProtocolError(BAD_MESSAGE) for anything that is not a single
    msgpack map with string keys.
    """
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            object_hook=_str_keys,
            use_list=True,
            max_str_len=MAX_CLIENT_STR_BYTES,
            max_bin_len=MAX_CLIENT_STR_BYTES,
            max_array_len=MAX_CLIENT_CONTAINER_LEN,
            max_map_len=MAX_CLIENT_CONTAINER_LEN,
            max_ext_len=0,
        )
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise RemoteProtocolError(Code.BAD_MESSAGE, f"not a single msgpack value: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        # ValueError covers truncated data and exceeded limits; msgpack raises
        # it for both, and both mean "not a message we will read".
        raise RemoteProtocolError(Code.BAD_MESSAGE, f"undecodable msgpack: {exc}") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError(Code.BAD_MESSAGE, f"a message is a msgpack map, got {type(obj).__name__}")
    return obj


def _str_keys(obj: dict) -> dict:
    """object_hook: strict_map_key still admits bin keys; a client's map keys
    are strings (docs/protocol.md section 2), at any depth."""
    for key in obj:
        if not isinstance(key, str):
            raise RemoteProtocolError(Code.BAD_MESSAGE, f"map keys must be strings, got {type(key).__name__}")
    return obj


# --- server messages ----------------------------------------------------------


def encode_welcome(msg: m.Welcome) -> bytes:
    out: dict[str, Any] = {
        "t": m.WELCOME,
        "v": msg.version,
        "room": msg.room,
        "game": msg.game,
        "player": msg.player,
        "session": msg.session,
        "rate": msg.tick_rate,
        "tick": msg.tick,
        "schema": dict(msg.schema),
        "inputs": {k: list(v) for k, v in msg.inputs.items()},
        "players": [list(p) for p in msg.players],
        "options": dict(msg.options),
        "messages": dict(msg.messages),
    }
    if msg.version >= 2:
        out["layout"] = [list(f) for f in msg.layout]
    return packb(out)


def encode_pong(msg: m.Pong) -> bytes:
    return packb({"t": m.PONG, "id": msg.id, "tick": msg.tick})


def encode_redirect(msg: m.Redirect) -> bytes:
    return packb({"t": m.REDIRECT, "room": msg.room, "url": msg.url})


def encode_error(msg: m.Error) -> bytes:
    return packb({"t": m.ERROR, "code": int(msg.code), "msg": msg.message})


_SNAPSHOT_SHARED_PAIRS = 8  # t, tick, base, ids, c, rm, n, ev
_SNAPSHOT_MAP_HEADER = bytes([0x80 | (_SNAPSHOT_SHARED_PAIRS + 1)])  # fixmap, +1 for "seq"
_SEQ_KEY = packb("seq")


def pack_snapshot_shared(tick: int, base: int, fields: dict, events: list) -> bytes:
    """Pack the key/value pairs every client with this baseline shares."""
    pk = msgpack.Packer(**_packer_opts)
    parts = [
        pk.pack("t"), pk.pack(m.SNAPSHOT),
        pk.pack("tick"), pk.pack(tick),
        pk.pack("base"), pk.pack(base),
        pk.pack("ids"), pk.pack(fields["ids"]),
        pk.pack("c"), pk.pack(fields["c"]),
        pk.pack("rm"), pk.pack(fields["rm"]),
        pk.pack("n"), pk.pack(fields["n"]),
        pk.pack("ev"), pk.pack(events),
    ]  # fmt: skip
    return b"".join(parts)


_seq_packer = msgpack.Packer(**_packer_opts)  # packs one int: no state between calls


_V1_SHARED_START = packb("t")[0]  # a fixstr header: version 1's first key


def finish_snapshot(shared: bytes, seq: int) -> bytes:
    """One client's snapshot message: the shared part plus its own "seq".

    Either version's shared part: version 1's pairs start with the key "t"
    (a str), version 2's positional values with the tick (an int,
    tickroom.protocol.envelope), so one byte tells them apart and the
    callers (the broadcast, the durable-acks gate) need not carry the
    client's version along with the payload.
    """
    if shared[0] == _V1_SHARED_START:
        return b"".join((_SNAPSHOT_MAP_HEADER, _SEQ_KEY, _seq_packer.pack(seq), shared))
    return b"".join((envelope.ARRAY_HEADER, _seq_packer.pack(seq), shared))  # envelope.finish, inlined


def encode_snapshot(msg: m.Snapshot) -> bytes:
    return finish_snapshot(pack_snapshot_shared(msg.tick, msg.base, dict(msg.fields), msg.events), msg.seq)


# --- client messages (used by the client session and the bots) --------------


def encode_client(msg: m.ClientMessage) -> bytes:
    if isinstance(msg, m.Input):
        return packb({"t": m.INPUT, "seq": msg.seq, "tick": msg.tick, "ack": msg.ack, "in": dict(msg.data)})
    if isinstance(msg, m.Ack):
        return packb({"t": m.ACK, "tick": msg.tick})
    if isinstance(msg, m.Ping):
        return packb({"t": m.PING, "id": msg.id})
    if isinstance(msg, m.Leave):
        return packb({"t": m.LEAVE})
    if isinstance(msg, m.Join):
        out: dict[str, Any] = {"t": m.JOIN, "v": msg.version, "name": msg.name}
        for key in ("room", "game", "ticket", "session"):
            value = getattr(msg, key)
            if value is not None:
                out[key] = value
        if msg.ack != m.NO_TICK:
            out["ack"] = msg.ack
        return packb(out)
    raise TypeError(f"not a client message: {msg!r}")
