"""Checkpoints: the codec, and a room restored from checkpoint + input log
that is bit-identical to the original and keeps going identically."""

from __future__ import annotations

import msgpack
import numpy as np

from tests.fakes import join, run_ticks
from tickroom.protocol import messages as m
from tickroom.server.cluster import checkpoint
from tickroom.server.rooms.game_catalog import GameCatalog
from tickroom.server.rooms.room import Room, RoomConfig
from tickroom.simulation.game import GameConfig, InputBatch
from tickroom.simulation.games.arena import Arena

RATE = 20
CONFIG = RoomConfig(tick_rate=RATE, max_players=4)


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def test_codec_round_trips_arrays_and_128_bit_integers():
    obj = {
        "a": np.arange(6, dtype="<f4").reshape(2, 3),
        "rng": {"state": {"state": 2**127 + 5, "inc": -(2**100)}, "has_uint32": 0},
        "names": ["x", "y"],
        "n": np.int64(7),
    }
    back = checkpoint.unpack(checkpoint.pack(obj))
    assert back["a"].dtype == np.dtype("<f4") and back["a"].shape == (2, 3)
    assert np.array_equal(back["a"], obj["a"])
    assert back["rng"] == {"state": {"state": 2**127 + 5, "inc": -(2**100)}, "has_uint32": 0}
    assert back["names"] == ["x", "y"] and back["n"] == 7


class Recorder:
    """A TickObserver keeping what failover's keeper would write."""

    def __init__(self, checkpoint_at: int) -> None:
        self.checkpoint_at = checkpoint_at
        self.data: bytes | None = None
        self.log: list[tuple[int, bytes]] = []

    def ticked(self, room, batch, room_events) -> None:
        if room.game.tick == self.checkpoint_at:
            self.data = checkpoint.pack(checkpoint.capture(room))
        elif self.data is not None:
            self.log.append((room.game.tick, checkpoint.pack(checkpoint.log_entry(room, batch, room_events))))


def inp(seq: int, mx: float, fire: bool = False) -> m.Input:
    return m.Input(seq=seq, tick=0, ack=m.NO_TICK, data={"mx": mx, "my": -0.5, "aim": 0.3 * seq, "fire": fire})


async def test_restore_from_checkpoint_and_log_is_bit_identical_and_continues_identically(nursery, autojump_clock):
    room = Room("r1", Arena(seed=11, config=GameConfig(tick_rate=RATE, max_players=4)), CONFIG)
    recorder = Recorder(checkpoint_at=10)
    room.observer = recorder
    nursery.start_soon(room.run)
    a = await join(room, name="ada")
    b = await join(room, name="bob")
    for seq in range(1, 13):
        a.push(inp(seq, 1.0, fire=seq % 4 == 0))
        b.push(inp(seq, -1.0))
        await run_ticks(room, 1)
    c = await join(room, name="cy")  # joins after the checkpoint: replayed from the log
    for seq in range(13, 20):
        a.push(inp(seq, 0.5, fire=True))
        c.push(inp(seq - 12, 1.0))
        await run_ticks(room, 1)
    b.drop(left=True)  # leaves after the checkpoint
    await run_ticks(room, 3)
    assert recorder.data is not None and recorder.log

    restored = checkpoint.restore_room(recorder.data, recorder.log, CONFIG, GameCatalog.discover())
    copy = restored.room
    assert restored.checkpoint_tick == 10 and restored.replayed == len(recorder.log)
    assert copy.game.tick == room.game.tick
    assert_same_state(copy.game.state(), room.game.state())
    assert {(p.id, p.name, p.session, p.last_seq) for p in copy.players} == {
        (p.id, p.name, p.session, p.last_seq) for p in room.players
    }
    assert all(p.link is None for p in copy.players)  # detached, waiting for rejoins

    # Both continue identically under the same inputs.
    original, twin = room.game, copy.game
    ids = np.asarray([a.player, c.player], dtype=np.int64)
    for k in range(40):
        batch = InputBatch(
            players=ids,
            fields={
                "mx": np.asarray([np.sin(k), -1.0]),
                "my": np.asarray([0.2, np.cos(k)]),
                "aim": np.asarray([0.1 * k, -0.1 * k]),
                "fire": np.asarray([k % 3 == 0, k % 5 == 0]),
            },
        )
        for game in (original, twin):
            game.apply_inputs(batch)
            game.step()
    assert_same_state(twin.state(), original.state())


async def test_replay_stops_at_a_hole_in_the_log(nursery, autojump_clock):
    room = Room("r2", Arena(seed=3, config=GameConfig(tick_rate=RATE, max_players=4)), CONFIG)
    recorder = Recorder(checkpoint_at=5)
    room.observer = recorder
    nursery.start_soon(room.run)
    await join(room, name="ada")
    await run_ticks(room, 12)
    log = [entry for entry in recorder.log if entry[0] != 8]
    restored = checkpoint.restore_room(recorder.data, log, CONFIG, GameCatalog.discover())
    assert restored.room.game.tick == 7 and restored.replayed == 2


async def test_a_checkpoint_carries_the_rooms_whole_config(nursery, autojump_clock):
    """A room with its own tick rate, max players, options and labels is
    restored with them, not with the restoring node's defaults."""
    options = {"size": 60.0, "max_projectiles": 32, "collision": "auto"}
    own = RoomConfig(tick_rate=30, max_players=3)
    game = Arena(seed=5, config=GameConfig(tick_rate=30, max_players=3, options=options))
    room = Room("r-config", game, own, labels={"phase": "lobby"})
    recorder = Recorder(checkpoint_at=4)
    room.observer = recorder
    nursery.start_soon(room.run)
    await join(room, name="ada")
    await run_ticks(room, 6)
    assert recorder.data is not None

    restored = checkpoint.restore_room(recorder.data, recorder.log, CONFIG, GameCatalog.discover()).room
    assert (restored.config.tick_rate, restored.config.max_players) == (30, 3)
    assert restored.game.config == GameConfig(tick_rate=30, max_players=3, options=options)
    assert restored.labels == {"phase": "lobby"}
    assert restored.game.tick == room.game.tick
    assert_same_state(restored.game.state(), room.game.state())


async def test_a_restored_room_replays_the_game_messages_and_numbers_on(nursery, autojump_clock):
    """Game messages are in the tick log: a failover's replay hands them to
    the game again (the same world), and the replay's own messages get the
    numbers the original gave them, so a rejoining client keeps each once."""
    from tests.games.cards import Cards
    from tickroom.protocol.game_messages import GameMessage
    from tickroom.server.rooms.game_requests import carry_out

    room = Room("cards", Cards(seed=4, config=GameConfig(tick_rate=RATE, max_players=4)), CONFIG)
    recorder = Recorder(checkpoint_at=6)
    room.observer = recorder
    nursery.start_soon(room.run)
    a = await join(room, name="ada")
    b = await join(room, name="bob")
    a.push(GameMessage("play", {"slot": 0}))  # before the checkpoint: in its state
    await run_ticks(room, 8)
    a.push(GameMessage("play", {"slot": 1}))  # after it: only in the log
    b.push(GameMessage("chat", {"text": "nice"}))
    await run_ticks(room, 5)
    assert recorder.data is not None

    restored = checkpoint.restore_room(
        recorder.data, recorder.log, CONFIG, GameCatalog({"cards": Cards}, default="cards")
    )
    copy = restored.room
    assert_same_state(copy.game.state(), room.game.state())  # the second card was played again
    carry_out(copy, copy.game.requests.take())  # what the room does with the replay's messages at its first tick
    assert {p.id: p.mail_n for p in copy.players} == {p.id: p.mail_n for p in room.players}

    # ... the same messages under the same numbers (sent at the restored
    # room's tick): a rejoining client drops the ones it has.
    def numbered(player) -> list[tuple]:
        return [(msg["n"], msg["kind"], msg["data"]) for msg in (msgpack.unpackb(p) for _, p in player.mail_log)]

    for player in room.players:
        twin = copy.players.by_id(player.id)
        assert twin is not None and numbered(twin)
        assert numbered(twin) == numbered(player)[-len(numbered(twin)) :]
