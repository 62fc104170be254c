"""The room's tick loop under trio's MockClock: scheduling, catch-up, inputs,
acks and baselines, players joining, dropping, rejoining and leaving."""

from __future__ import annotations

import numpy as np
import pytest
import trio

from tests.fakes import join, run_ticks
from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code
from tickroom.server.rooms.room import JoinRefused, Room, RoomConfig
from tickroom.simulation.game import GameConfig
from tickroom.simulation.games.arena import Arena

RATE = 20
DT = 1 / RATE


class RecordingArena(Arena):
    """The real arena, recording each tick's input batch and step time."""

    def __init__(self, seed: int, config: GameConfig) -> None:
        super().__init__(seed, config)
        self.batches: list = []
        self.step_times: list[float] = []
        self.stall_at: dict[int, float] = {}  # tick -> seconds the step "takes"
        self.clock = None

    def apply_inputs(self, batch) -> None:
        self.batches.append(batch)
        super().apply_inputs(batch)

    def step(self):
        self.step_times.append(trio.current_time())
        stall = self.stall_at.get(self.tick + 1)
        if stall:
            self.clock.jump(stall)  # the step "took" this long
        return super().step()


def make_room(**overrides) -> Room:
    config = RoomConfig(**{"tick_rate": RATE, "max_players": 4, **overrides})
    game = RecordingArena(seed=7, config=GameConfig(tick_rate=RATE, max_players=config.max_players))
    return Room("test-room", game, config)


# pytest-trio installs the MockClock only when the test function itself names
# the autojump_clock fixture, so every test below lists it beside ``room``.
@pytest.fixture
async def room(nursery, autojump_clock):
    room = make_room()
    room.game.clock = autojump_clock
    await nursery.start(room.run)
    yield room
    room.request_close()


async def test_ten_thousand_ticks_run_on_the_mock_clock(room, autojump_clock):
    a = await join(room, name="a")
    b = await join(room, name="b")
    start, first_tick = trio.current_time(), room.game.tick
    await run_ticks(room, 10_000)
    assert room.game.tick >= 10_000
    # Every tick fell on the schedule: no overruns, no resyncs.
    stats = room.statistics()
    assert stats.overruns == 0 and stats.resyncs == 0
    # ... so the ticks took exactly their scheduled time (give or take the
    # phase of the first one).
    assert trio.current_time() - start == pytest.approx((room.game.tick - first_tick) * DT, abs=DT)
    # Both clients got a snapshot every tick and reconstructed the world.
    for link in (a, b):
        assert len(link.snapshots) >= 9_999
        assert link.session.desyncs == 0
        assert link.session.world.equals(room.history.latest)
    # Acked every tick, so every snapshot after the first is a delta, and the
    # two clients shared one encoding per tick.
    assert all(s.base == s.tick - 1 for s in a.snapshots[5:])
    assert stats.deltas_encoded <= room.game.tick + 2


async def test_a_stalled_tick_is_caught_up_back_to_back(room, autojump_clock):
    await join(room)
    room.game.stall_at[50] = 3.5 * DT  # the step of tick 50 takes 3.5 ticks
    await run_ticks(room, 60)
    times = room.game.step_times
    t50 = times[49]
    # Ticks 51..53 were due while tick 50 ran: they run at once, no sleeping.
    assert times[50] == times[51] == times[52] == pytest.approx(t50 + 3.5 * DT)
    # Then the loop is back on its original schedule (start + n * dt).
    assert times[55] - times[54] == pytest.approx(DT)
    assert (times[55] - times[0]) == pytest.approx(55 * DT)
    stats = room.statistics()
    # Tick 50 and the two catch-up ticks each finished after the next deadline.
    assert stats.overruns == 3 and stats.resyncs == 0


async def test_a_long_stall_resynchronises_instead_of_bursting(room, autojump_clock):
    await join(room)
    room.game.stall_at[20] = 30 * DT  # far beyond max_catchup_ticks (5)
    await run_ticks(room, 40)
    times = room.game.step_times
    stats = room.statistics()
    assert stats.resyncs == 1
    assert stats.ticks_skipped >= 25
    # After the stall, at most one tick runs without waiting, then dt spacing.
    after = np.diff(times[20:30])
    assert np.count_nonzero(after < DT / 2) <= 1
    assert after[-5:] == pytest.approx([DT] * 5)


async def test_inputs_apply_in_seq_order_and_drop_duplicates_and_stale(room, autojump_clock):
    link = await join(room)
    await run_ticks(room, 2)
    room.game.batches.clear()
    for seq, mx in [(3, 0.3), (1, 0.1), (2, 0.2), (2, 0.2)]:
        link.push(m.Input(seq=seq, tick=0, ack=m.NO_TICK, data={"mx": mx, "my": 0.0, "aim": 0.0, "fire": False}))
    await run_ticks(room, 1)
    batch = next(b for b in room.game.batches if len(b))
    assert batch.players.tolist() == [link.player] * 3
    assert batch.fields["mx"].tolist() == [0.1, 0.2, 0.3]
    assert room.statistics().inputs_stale == 1

    room.game.batches.clear()
    for seq in (2, 3, 4):  # 2 and 3 were applied already
        link.push(m.Input(seq=seq, tick=0, ack=m.NO_TICK, data={"mx": 1.0, "my": 0.0, "aim": 0.0, "fire": False}))
    await run_ticks(room, 1)
    batch = next(b for b in room.game.batches if len(b))
    assert len(batch) == 1
    assert room.statistics().inputs_stale == 3
    assert link.snapshots[-1].seq == 4  # the snapshot tells the client seq 4 is in


async def test_inputs_beyond_the_per_tick_limit_keep_the_newest(room, autojump_clock):
    link = await join(room)
    await run_ticks(room, 1)
    room.game.batches.clear()
    for seq in range(1, 13):
        link.push(m.Input(seq=seq, tick=0, ack=m.NO_TICK, data={"mx": seq / 12, "my": 0.0, "aim": 0.0, "fire": False}))
    await run_ticks(room, 1)
    batch = next(b for b in room.game.batches if len(b))
    assert len(batch) == room.config.max_inputs_per_tick == 8
    assert batch.fields["mx"][-1] == 1.0
    assert room.statistics().inputs_over_limit == 4


async def test_moving_changes_the_players_position_in_snapshots(room, autojump_clock):
    mover = await join(room, name="mover")
    watcher = await join(room, name="watcher")
    await run_ticks(room, 2)
    before = watcher.session.world.entity(mover.player)["pos"]
    mover.push(m.Input(seq=1, tick=0, ack=m.NO_TICK, data={"mx": 1.0, "my": 0.0, "aim": 0.0, "fire": False}))
    await run_ticks(room, 10)
    after = watcher.session.world.entity(mover.player)["pos"]
    assert after[0] > before[0]
    assert after[1] == before[1]


async def test_a_client_that_stops_acking_is_dropped_with_ack_timeout(room, autojump_clock):
    good = await join(room, name="good")
    silent = await join(room, name="silent", auto_ack=False)
    await run_ticks(room, room.config.ticks(room.config.ack_timeout_s) + 3)
    assert silent.kicked is not None and silent.kicked[0] is Code.ACK_TIMEOUT
    assert good.kicked is None
    # The good client was never held back: a snapshot for every tick.
    ticks = [s.tick for s in good.snapshots]
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))


async def test_clients_on_an_unknown_baseline_get_a_full_snapshot(room, autojump_clock):
    link = await join(room, auto_ack=False)
    await run_ticks(room, 3)
    assert all(s.base == m.NO_TICK for s in link.snapshots)
    acked = link.snapshots[-1].tick
    link.push(m.Ack(tick=acked))
    await run_ticks(room, 1)
    assert link.snapshots[-1].base == acked
    link.push(m.Ack(tick=10_000))  # a tick the room never sent is ignored
    await run_ticks(room, 1)
    assert link.snapshots[-1].base == acked


async def test_rejoin_within_grace_keeps_the_same_entity(room, autojump_clock):
    first = await join(room, name="ada")
    await run_ticks(room, 3)
    token = first.messages[0].session
    first.drop()
    await run_ticks(room, 5)
    again = await join(room, session=token)  # a new client: no world to resume from
    assert again.player == first.player
    await run_ticks(room, 2)
    world = again.session.world if again.session.world is not None else None
    kinds = room.history.latest.components["kind"]
    assert int(np.count_nonzero(kinds == 0)) == 1  # one avatar, no duplicate
    assert world is None or world.entity(first.player) is not None


async def test_rejoin_resumes_deltas_from_the_acked_tick(room, autojump_clock):
    first = await join(room)
    await run_ticks(room, 3)
    acked = first.session.acked_tick
    first.drop()
    # The same client on a new connection, holding its worlds.
    second = await join(room, session=first.messages[0].session, ack=acked, client=first.session)
    await run_ticks(room, 1)
    assert second.snapshots[0].base == acked


async def test_a_dropped_player_is_removed_after_the_grace_period(room, autojump_clock):
    link = await join(room)
    token = link.messages[0].session
    link.drop()
    await run_ticks(room, room.config.ticks(room.config.rejoin_grace_s) + 3)
    assert len(room.players) == 0
    assert room.history.latest.ids.size == 0
    with pytest.raises(JoinRefused) as refused:
        await join(room, session=token)
    assert refused.value.code is Code.SESSION_UNKNOWN


async def test_leave_removes_the_player_at_once_and_tells_the_others(room, autojump_clock):
    stay = await join(room, name="stay")
    go = await join(room, name="go")
    await run_ticks(room, 2)
    go.drop(left=True)
    await run_ticks(room, 2)
    assert len(room.players) == 1
    assert stay.session.world.entity(go.player) is None
    events = stay.session.take_events()
    assert [e[1:] for e in events if e[1] == "leave"] == [["leave", go.player]]


async def test_a_leave_message_read_by_the_tick_removes_the_player_at_once(room, autojump_clock):
    await join(room, name="stay")
    go = await join(room, name="go")
    await run_ticks(room, 2)
    go.push(m.Leave())
    await run_ticks(room, 1)
    assert go.left and go.closed
    assert len(room.players) == 1


async def test_a_ping_is_answered_at_the_next_tick_with_the_rooms_tick(room, autojump_clock):
    link = await join(room)
    await run_ticks(room, 3)
    link.push(m.Ping(id=7))
    tick = room.game.tick
    await run_ticks(room, 1)
    assert [msg for msg in link.messages if isinstance(msg, m.Pong)] == [m.Pong(id=7, tick=tick)]


async def test_joining_a_live_session_again_replaces_the_old_connection(room, autojump_clock):
    old = await join(room)
    new = await join(room, session=old.messages[0].session)
    assert old.kicked is not None and old.kicked[0] is Code.SESSION_REPLACED
    assert new.player == old.player


async def test_a_full_room_refuses_with_room_full(room, autojump_clock):
    for i in range(room.config.max_players):
        await join(room, name=f"p{i}")
    with pytest.raises(JoinRefused) as refused:
        await join(room, name="one too many")
    assert refused.value.code is Code.ROOM_FULL


async def test_an_empty_room_closes_after_its_idle_time(nursery, autojump_clock):
    room = make_room(idle_close_s=2.0)
    await nursery.start(room.run)
    link = await join(room)
    link.drop(left=True)
    await trio.sleep(2.0 + 5 * DT)
    assert room.closed
    before = room.game.tick
    await trio.sleep(1.0)
    assert room.game.tick == before  # the task has ended


async def test_a_join_queued_behind_a_close_is_refused_at_once(nursery, autojump_clock):
    room = make_room()
    await nursery.start(room.run)
    room.request_close()
    start = trio.current_time()
    with pytest.raises(JoinRefused) as refused:
        await join(room)
    assert refused.value.code is Code.ROOM_CLOSED
    assert trio.current_time() - start <= DT  # not after the 10 s join timeout
