"""The game's lifecycle in a room, under trio's MockClock: drop and rejoin
notices, the room's end and its reason, the match ended and a player kicked
by the game, signals from outside (round trip, busy, timeout, errors), label
updates, and the policy for a hook that raises."""

from __future__ import annotations

import pytest
import trio
from tag_game.tag import Tag

from tests.fakes import FakeLink, join, run_ticks
from tests.games.lifecycle import Lifecycle
from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code
from tickroom.server.rooms.game_hooks import MAX_SIGNAL_ANSWER_BYTES, SignalError
from tickroom.server.rooms.registry import RegistryConfig, RoomRegistry
from tickroom.server.rooms.room import MAX_PENDING_SIGNALS, JoinRefused, Room, RoomConfig
from tickroom.simulation.game import GameConfig
from tickroom.simulation.room_requests import RoomRequests

RATE = 20


def make_room(game_cls=Lifecycle, **overrides) -> Room:
    config = RoomConfig(**{"tick_rate": RATE, "max_players": 4, **overrides})
    game = game_cls(seed=7, config=GameConfig(tick_rate=RATE, max_players=config.max_players))
    return Room("hooks", game, config)


@pytest.fixture
async def room(nursery, autojump_clock):
    room = make_room()
    await nursery.start(room.run)
    yield room
    room.request_close()


def heard(room: Room, hook: str) -> list:
    return [arg for name, arg, _ in room.game.heard if name == hook]


def session_of(link: FakeLink) -> str:
    welcome = link.messages[0]
    assert isinstance(welcome, m.Welcome)
    return welcome.session


# -- drop and rejoin ---------------------------------------------------------


async def test_a_drop_is_heard_the_avatar_stays_and_a_rejoin_is_heard(room, autojump_clock) -> None:
    a = await join(room, name="a")
    b = await join(room, name="b")
    await run_ticks(room, 2)
    a.drop()
    await run_ticks(room, 40)  # 2 s of the 10 s grace
    assert heard(room, "drop") == [a.player] and heard(room, "leave") == []
    # The avatar stays in what the others see during the grace.
    assert a.player in b.session.world.ids.tolist()
    back = await join(room, name="a", session=session_of(a))
    assert back.player == a.player
    await run_ticks(room, 2)
    assert heard(room, "rejoin") == [a.player] and heard(room, "leave") == []


async def test_a_player_not_back_within_the_grace_leaves(room, autojump_clock) -> None:
    a = await join(room, name="a")
    b = await join(room, name="b")
    await run_ticks(room, 2)
    a.drop()
    await run_ticks(room, RATE * 11)  # past the 10 s grace
    assert heard(room, "drop") == [a.player] and heard(room, "leave") == [a.player]
    assert a.player not in b.session.world.ids.tolist()


async def test_an_ack_timeout_is_a_drop(room, autojump_clock) -> None:
    silent = await join(room, name="silent", auto_ack=False)
    await run_ticks(room, RATE * 6)  # past the 5 s ack timeout
    assert silent.kicked is not None and silent.kicked[0] == Code.ACK_TIMEOUT
    assert heard(room, "drop") == [silent.player]


# -- the room's end ----------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (Code.ROOM_CLOSED, "closed"),
        (Code.REDIRECT, "handed_over"),
        (Code.GOING_AWAY, "shutdown"),
    ],
)
async def test_the_game_hears_why_its_room_ends(autojump_clock, code, reason) -> None:
    room = make_room()
    async with trio.open_nursery() as nursery:
        await nursery.start(room.run)
        a = await join(room, name="a")
        room.request_close(code, "bye")
    assert heard(room, "end") == [reason]
    assert a.kicked == (code, "bye")


async def test_an_idle_room_ends_with_idle(autojump_clock) -> None:
    room = make_room(idle_close_s=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(room.run)
    assert heard(room, "end") == ["idle"]


async def test_a_game_without_hooks_ends_as_before(autojump_clock) -> None:
    room = make_room(Tag)
    async with trio.open_nursery() as nursery:
        await nursery.start(room.run)
        a = await join(room, name="a")
        a.drop()
        await run_ticks(room, 3)
        room.request_close()
    assert room.closed and room.hooks.hook_failures == 0


# -- what the game asks: end the match, kick, labels -------------------------


async def test_the_game_ends_its_match(autojump_clock) -> None:
    room = make_room()
    async with trio.open_nursery() as nursery:
        await nursery.start(room.run)
        a = await join(room, name="a")
        b = await join(room, name="b")
        await room.signal({"op": "end", "reason": "blue wins"})
    assert a.kicked == (Code.MATCH_ENDED, "blue wins") and b.kicked == (Code.MATCH_ENDED, "blue wins")
    assert heard(room, "end") == ["match_ended"]


async def test_the_game_ends_its_match_from_its_step(autojump_clock) -> None:
    class EndsAtTick(Lifecycle):
        def step(self):
            events = super().step()
            if self.tick == 30:
                self.requests.end_match("time is up")
            return events

    room = make_room(EndsAtTick)
    async with trio.open_nursery() as nursery:
        await nursery.start(room.run)
        a = await join(room, name="a")
    assert a.kicked == (Code.MATCH_ENDED, "time is up") and room.game.tick == 30
    # The last snapshot the client got is of the tick before: nothing after the end.
    assert a.snapshots[-1].tick == 29


async def test_the_game_kicks_one_player_and_the_others_play_on(room, autojump_clock) -> None:
    a = await join(room, name="a")
    b = await join(room, name="b")
    await run_ticks(room, 2)
    answer = await room.signal({"op": "kick", "player": b.player, "reason": "cheating"})
    assert b.player in answer["players"]  # the answer comes before the kick is carried out
    await run_ticks(room, 2)
    assert b.kicked == (Code.KICKED, "cheating")
    assert heard(room, "leave") == [b.player] and heard(room, "drop") == []
    assert b.player not in a.session.world.ids.tolist() and a.kicked is None
    assert [e[1:] for e in a.session.take_events() if e[1] == "leave"] == [["leave", b.player]]
    # The kicked player's session is void.
    with pytest.raises(JoinRefused) as refused:
        await join(room, name="b", session=session_of(b))
    assert refused.value.code == Code.SESSION_UNKNOWN


async def test_the_game_sets_and_removes_labels(room, autojump_clock) -> None:
    room.labels["mode"] = "duel"  # the matchmaker's, from the allocation
    await room.signal({"op": "labels", "labels": {"phase": "playing"}})
    assert room.labels == {"mode": "duel", "phase": "playing"}
    await room.signal({"op": "labels", "labels": {"phase": None}})
    assert room.labels == {"mode": "duel"}


def test_a_label_the_api_would_refuse_is_refused_by_the_game_s_outbox() -> None:
    requests = RoomRequests()
    with pytest.raises(ValueError, match="label key"):
        requests.set_labels(**{"no spaces": "x"})
    with pytest.raises(ValueError, match="at most"):
        requests.set_labels(phase="x" * 300)
    assert requests.take() == []


# -- signals -------------------------------------------------------------------


async def test_a_signal_reaches_the_game_at_the_next_tick_and_its_answer_comes_back(room, autojump_clock) -> None:
    a = await join(room, name="a")
    tick_before = room.game.tick
    answer = await room.signal({"op": "status"})
    assert answer == {"tick": tick_before, "players": [a.player]}
    assert heard(room, "signal") == [{"op": "status"}]
    # Delivered between ticks on the room's task: the next step had not run.
    assert room.game.heard[-1][2] == tick_before


async def test_a_signal_the_room_does_not_answer_in_time_times_out_and_never_arrives(room, autojump_clock) -> None:
    await join(room, name="a")
    # The room answers at its next tick, 50 ms away: give it 10 ms.
    with pytest.raises(SignalError) as failed:
        await room.signal({"op": "status"}, timeout_s=0.01)
    assert failed.value.reason == "signal_timeout"
    await run_ticks(room, 3)
    assert heard(room, "signal") == []


async def test_signals_beyond_the_room_s_bound_are_refused_as_busy(room, nursery, autojump_clock) -> None:
    answers: list = []

    async def send(task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()  # the signal is queued before the parent runs again
        answers.append(await room.signal({"op": "status"}))

    for _ in range(MAX_PENDING_SIGNALS):
        await nursery.start(send)
    with pytest.raises(SignalError) as busy:
        await room.signal({"op": "status"})
    assert busy.value.reason == "room_busy"
    await run_ticks(room, 2)
    assert len(answers) == MAX_PENDING_SIGNALS
    # Answered, the bound is free again.
    assert (await room.signal({"op": "status"}))["players"] == []


async def test_a_signal_to_a_closed_room_is_refused(autojump_clock) -> None:
    room = make_room()
    async with trio.open_nursery() as nursery:
        await nursery.start(room.run)
        room.request_close()
    with pytest.raises(SignalError) as gone:
        await room.signal({"op": "status"})
    assert gone.value.reason == "room_closing"


async def test_a_game_without_on_signal_refuses_signals(autojump_clock, nursery) -> None:
    room = make_room(Tag)
    await nursery.start(room.run)
    with pytest.raises(SignalError) as refused:
        await room.signal({"op": "status"})
    assert refused.value.reason == "signal_unsupported"
    room.request_close()


@pytest.mark.parametrize("data", [{"op": "big"}, {"op": "nan"}])
async def test_an_answer_too_big_or_not_json_fails_that_signal_only(room, autojump_clock, data) -> None:
    a = await join(room, name="a")
    with pytest.raises(SignalError) as failed:
        await room.signal(data)
    assert failed.value.reason == "signal_failed" and room.hooks.hook_failures == 1
    assert str(MAX_SIGNAL_ANSWER_BYTES) in failed.value.message or data["op"] == "nan"
    await run_ticks(room, 3)
    assert not room.closed and a.kicked is None


# -- hooks that raise ----------------------------------------------------------


async def test_on_signal_that_raises_fails_that_signal_and_the_room_plays_on(room, autojump_clock) -> None:
    a = await join(room, name="a")
    room.game.raise_in.add("signal")
    with pytest.raises(SignalError) as failed:
        await room.signal({"op": "status"})
    assert failed.value.reason == "signal_failed"
    before = len(a.snapshots)
    await run_ticks(room, 3)
    assert len(a.snapshots) == before + 3 and a.kicked is None


async def test_on_end_that_raises_is_reported_and_the_room_ends_as_planned(autojump_clock) -> None:
    room = make_room()
    room.game.raise_in.add("end")
    async with trio.open_nursery() as nursery:
        await nursery.start(room.run)
        a = await join(room, name="a")
        room.request_close(Code.ROOM_CLOSED, "closing time")
    assert a.kicked == (Code.ROOM_CLOSED, "closing time") and room.hooks.hook_failures == 1


@pytest.mark.parametrize("hook", ["drop", "rejoin"])
async def test_a_drop_or_rejoin_hook_that_raises_closes_that_room_with_4103(nursery, autojump_clock, hook) -> None:
    registry = RoomRegistry(RegistryConfig())
    await nursery.start(registry.run)
    room, other = make_room(), make_room()
    other.room_id = "other"
    registry.adopt(room)
    registry.adopt(other)
    room.game.raise_in.add(hook)
    a = await join(room, name="a")
    b = await join(room, name="b")
    bystander = await join(other, name="c")
    a.drop()
    if hook == "rejoin":
        await run_ticks(room, 2)
        with pytest.raises(JoinRefused) as refused:  # the rejoiner hears at once
            await join(room, name="a", session=session_of(a))
        assert refused.value.code == Code.INTERNAL_ERROR
    await registry_wait_gone(registry, room.room_id)
    assert registry.crashes == 1 and b.kicked is not None and b.kicked[0] == Code.ROOM_CRASHED
    # The other room plays on.
    before = len(bystander.snapshots)
    await run_ticks(other, 3)
    assert len(bystander.snapshots) >= before + 3 and bystander.kicked is None
    other.request_close()


async def registry_wait_gone(registry: RoomRegistry, room_id: str) -> None:
    with trio.fail_after(60):  # on the MockClock: instant unless the room never ends
        while registry.get(room_id) is not None:
            await trio.sleep(1 / RATE)
