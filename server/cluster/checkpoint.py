"""Room checkpoints and input-log entries: what is captured on the tick, how
it is encoded (msgpack), and how a room is rebuilt from them on another node.

A checkpoint is the room at one tick: the game's state(), the players (ids,
names, session tokens, newest applied input seq), the room's id and game,
and the room's whole config (tick rate, max players, the game's options, the
matchmaker's labels), so a room allocated with its own tick rate or options
is restored as it was, not with the restoring node's defaults. Format 1 (no
config) is still read, with the node's defaults, for a rolling upgrade.
A log entry is one later tick's joins, leaves and validated inputs, enough to
step a restored game to the same state: games are deterministic, so replaying
the entries after the checkpoint reproduces the last logged tick exactly.

msgpack carries neither numpy arrays nor PCG64's 128-bit integers, so arrays
become {"__nd__": 1, "dtype", "shape", "data"} and integers outside int64
become {"__int__": "<decimal>"}.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from tickroom.server.rooms.game_catalog import GameCatalog
from tickroom.server.rooms.players import Player
from tickroom.server.rooms.room import Room, RoomConfig
from tickroom.simulation.game import Game, GameConfig, InputBatch
from tickroom.simulation.player_messages import PlayerMessage

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: before the room config was carried
_INT64 = (-(2**63), 2**63 - 1)


# -- codec -----------------------------------------------------------------------


def _to_wire(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return {"__nd__": 1, "dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}
    if isinstance(obj, dict):
        return {k: _to_wire(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_wire(v) for v in obj]
    if isinstance(obj, np.generic):
        return _to_wire(obj.item())
    if isinstance(obj, int) and not isinstance(obj, bool) and not _INT64[0] <= obj <= _INT64[1]:
        return {"__int__": str(obj)}
    return obj


def _from_wire(obj: dict) -> Any:
    if "__nd__" in obj:
        return np.frombuffer(obj["data"], dtype=np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
    if "__int__" in obj:
        return int(obj["__int__"])
    return obj


def pack(obj: Any) -> bytes:
    return msgpack.packb(_to_wire(obj), use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, object_hook=_from_wire, strict_map_key=False)


# -- capture (on the room's task; cheap: copies, no encoding) --------------------


def capture(room: Room) -> dict[str, Any]:
    """The room now, as plain data (game.state() returns copies)."""
    return {
        "v": FORMAT_VERSION,
        "room": room.room_id,
        "game": room.game.name,
        "tick": room.game.tick,
        "state": room.game.state(),
        # The last item: the number of the player's last game message, so a
        # restored room numbers on from it (docs/protocol.md 5.6).
        "players": [[p.id, p.name, p.session, p.last_seq, p.mail_n] for p in room.players],
        "config": {
            "tick_rate": room.config.tick_rate,
            "max_players": room.config.max_players,
            "options": dict(room.game.config.options),
            "labels": dict(room.labels),
        },
    }


def log_entry(room: Room, batch: InputBatch, room_events: list[list[Any]]) -> dict[str, Any]:
    """One tick's joins, leaves, inputs and game messages (every tick is
    logged, empty or not: replay stops at the first missing tick, so a log
    is never read across a hole)."""
    ids = set(batch.players.tolist())
    return {
        "ops": [
            [e[0], e[1], e[2], getattr(room.players.by_id(e[1]), "session", "")] if e[0] == "join" else list(e)
            for e in room_events
        ],
        "players": batch.players,
        "fields": dict(batch.fields),
        "seqs": [[p.id, p.last_seq] for p in room.players if p.id in ids],
        "msgs": [[msg.player, msg.kind, dict(msg.data)] for msg in room.tick_messages],
    }


# -- restore -----------------------------------------------------------------------


@dataclass
class Restored:
    room: Room
    checkpoint_tick: int
    replayed: int  # log entries applied after the checkpoint


def restore_room(data: bytes, log: list[tuple[int, bytes]], config: RoomConfig, games: GameCatalog) -> Restored:
    """Rebuild a room from a checkpoint and the log entries after it.

    ``config`` is the node's room config; the checkpoint's own tick rate and
    max players replace its values. ``games`` resolves the room's game by
    name (the node's catalog). Players come back detached, each with its
    session token, so they can rejoin within the grace period. Raises
    ValueError for a checkpoint this code cannot read, KeyError for a game
    this node does not know.
    """
    snap = unpack(data)
    if snap.get("v") not in READABLE_VERSIONS:
        raise ValueError(f"checkpoint format {snap.get('v')!r} is not one of {READABLE_VERSIONS}")
    saved = snap.get("config") or {}
    config = dataclasses.replace(
        config,
        tick_rate=int(saved.get("tick_rate", config.tick_rate)),
        max_players=int(saved.get("max_players", config.max_players)),
    )
    game_cls: type[Game] = games.get(snap["game"])
    game = game_cls.restore(
        snap["state"],
        GameConfig(tick_rate=config.tick_rate, max_players=config.max_players, options=dict(saved.get("options", {}))),
    )
    players = {}
    for pid, name, session, seq, *rest in snap["players"]:  # a checkpoint before game messages has no mail_n
        players[pid] = Player(id=pid, name=name, session=session, last_seq=seq, mail_n=int(rest[0]) if rest else 0)
    replayed = 0
    for tick, blob in log:
        if tick <= game.tick:
            continue
        if tick != game.tick + 1:
            break  # a hole (a failed write): what follows cannot be replayed
        entry = unpack(blob)
        for op in entry["ops"]:
            if op[0] == "join":
                pid = game.join(op[2])
                if pid != op[1]:
                    raise ValueError(f"replay diverged: join gave entity {pid}, the log says {op[1]}")
                players[pid] = Player(id=pid, name=op[2], session=op[3])
            else:
                game.leave(op[1])
                players.pop(op[1], None)
        game.apply_inputs(InputBatch(players=np.asarray(entry["players"], dtype=np.int64), fields=entry["fields"]))
        if entry.get("msgs"):  # the game's messages of that tick, as the room handed them over
            game.handle_messages([PlayerMessage(pid, kind, data) for pid, kind, data in entry["msgs"]])  # type: ignore[attr-defined]
        game.step()
        for pid, seq in entry["seqs"]:
            if pid in players:
                players[pid].last_seq = seq
        replayed += 1
    room = Room(snap["room"], game, config, labels=saved.get("labels"))
    for player in players.values():
        player.detached_tick = game.tick  # the rejoin grace starts now
        room.players.add(player)
    return Restored(room, int(snap["tick"]), replayed)
