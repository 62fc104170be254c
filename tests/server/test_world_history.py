"""The room's side of lag compensation, on trio's MockClock: each input row
reaches the game with its seq and client tick, and the room keeps the ring
of past ticks the game asked for and lends it as ``game.past``."""

from __future__ import annotations

import numpy as np

from tests.fakes import join, run_ticks
from tickroom.protocol import messages as m
from tickroom.server.rooms.room import Room, RoomConfig
from tickroom.server.rooms.world_history import WorldHistory
from tickroom.simulation.game import NO_PAST, GameConfig, InputBatch
from tickroom.simulation.games.arena import Arena

RATE = 20


class BatchKeepingArena(Arena):
    def __init__(self, seed: int, config: GameConfig) -> None:
        super().__init__(seed, config)
        self.batches: list[InputBatch] = []
        self.positions: dict[int, np.ndarray] = {}  # tick -> the players' centres after its step

    def apply_inputs(self, batch: InputBatch) -> None:
        self.batches.append(batch)
        super().apply_inputs(batch)

    def step(self):
        events = super().step()
        self.positions[self.tick] = self.state()["p_pos"]
        return events


def make_room(rewind: float) -> Room:
    config = RoomConfig(tick_rate=RATE, max_players=4)
    game = BatchKeepingArena(seed=3, config=GameConfig(tick_rate=RATE, max_players=4, options={"rewind": rewind}))
    return Room("history-room", game, config)


def move(seq: int, tick: int) -> m.Input:
    return m.Input(seq=seq, tick=tick, ack=m.NO_TICK, data={"mx": 1.0, "my": 0.5, "aim": 0.0, "fire": False})


async def test_inputs_carry_seq_and_tick_and_the_room_keeps_the_ring(nursery, autojump_clock):
    room = make_room(rewind=0.4)
    await nursery.start(room.run)
    game = room.game
    assert isinstance(game, BatchKeepingArena)
    ring = room.world_history
    assert isinstance(ring, WorldHistory) and game.past is ring and ring.ticks == 8
    a = await join(room, name="a")
    b = await join(room, name="b")
    await run_ticks(room, 3)
    now = game.tick
    a.push(move(1, now - 2))
    a.push(move(2, now - 1))
    b.push(move(7, 0))
    await run_ticks(room, 1)
    batch = next(bt for bt in reversed(game.batches) if len(bt))
    assert batch.players.tolist() == [a.player, a.player, b.player]
    assert batch.seqs is not None and batch.seqs.tolist() == [1, 2, 7]
    assert batch.ticks is not None and batch.ticks.tolist() == [now - 2, now - 1, 0]
    await run_ticks(room, 12)
    newest = game.tick
    # The newest 8 ticks are held, each as remember() gave it after its step.
    held = [t for t in range(newest - 12, newest + 1) if ring.at(t) is not None]
    assert held == list(range(newest - 7, newest + 1))
    for t in held:
        entry = ring.at(t)
        assert entry is not None
        assert entry["id"].tolist() == [a.player, b.player]
        np.testing.assert_array_equal(entry["pos"], game.positions[t])
    room.request_close()


async def test_a_game_that_asks_for_no_history_gets_no_ring(nursery, autojump_clock):
    room = make_room(rewind=0.0)
    await nursery.start(room.run)
    await join(room, name="a")
    await run_ticks(room, 2)
    game = room.game
    assert isinstance(game, BatchKeepingArena)
    assert room.world_history is None and game.history_ticks == 0
    assert game.past is NO_PAST
    room.request_close()
