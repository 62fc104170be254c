"""Game messages in a room (MockClock, in-memory links): a player's "msg"
reaches the game's handle_messages in the tick, in player order; the game's
messages reach exactly their targets, reliably, also while a target is away
(replayed when it rejoins) or falls back to a full snapshot; game events too
survive a full-snapshot fallback and a rejoin with an old ack."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.fakes import FakeLink, join, run_ticks
from tests.games.cards import HAND, PILE_ID, Cards
from tickroom.protocol import messages as m
from tickroom.protocol.game_messages import GameMessage, RoomMessage
from tickroom.server.rooms.game_mail import MAX_INBOX
from tickroom.server.rooms.room import Room, RoomConfig
from tickroom.simulation.game import GameConfig
from tickroom.simulation.player_messages import PlayerMessage

RATE = 20


class RecordingCards(Cards):
    """Cards that also keeps every batch handle_messages got, with its tick."""

    def __init__(self, seed: int, config: GameConfig) -> None:
        super().__init__(seed, config)
        self.batches: list[tuple[int, list[PlayerMessage]]] = []

    def handle_messages(self, messages: list[PlayerMessage]) -> None:
        self.batches.append((self.tick, list(messages)))
        super().handle_messages(messages)


class StallingLink(FakeLink):
    """A client whose socket stops draining while ``stalled``: its
    snapshots are replaced unread (latest wins) and it acks nothing. Its
    reliable messages still queue (they are sent in order, never replaced)."""

    stalled = False

    def offer(self, payload: bytes) -> None:
        if not self.stalled:
            super().offer(payload)


@pytest.fixture
async def room(nursery, autojump_clock):
    config = RoomConfig(tick_rate=RATE, max_players=4)
    room = Room("cards", RecordingCards(seed=5, config=GameConfig(tick_rate=RATE, max_players=4)), config)
    await nursery.start(room.run)
    yield room
    room.request_close()


def room_messages(link: FakeLink) -> list[RoomMessage]:
    return [msg for msg in link.messages if isinstance(msg, RoomMessage)]


async def test_messages_reach_the_game_in_the_tick_in_player_order(room, autojump_clock):
    a = await join(room, name="a")
    b = await join(room, name="b")
    await run_ticks(room, 2)
    b.push(GameMessage("chat", {"text": "first from b"}))
    a.push(GameMessage("chat", {"text": "one"}))
    a.push(GameMessage("chat", {"text": "two"}))
    await run_ticks(room, 1)
    tick, batch = room.game.batches[-1]
    assert [(msg.player, msg.data["text"]) for msg in batch] == [
        (a.player, "one"), (a.player, "two"), (b.player, "first from b"),
    ]  # fmt: skip
    assert tick == room.game.tick - 1  # handed over before that tick's step
    assert room.mail.received == 3


async def test_a_burst_is_spread_over_ticks_not_lost(room, autojump_clock):
    a = await join(room, name="a")
    await run_ticks(room, 2)
    for i in range(MAX_INBOX + 4):
        a.push(GameMessage("chat", {"text": str(i)}))
    await run_ticks(room, 3)
    sizes = [len(batch) for _, batch in room.game.batches]
    assert sizes == [MAX_INBOX, 4]
    texts = [msg.data["text"] for _, batch in room.game.batches for msg in batch]
    assert texts == [str(i) for i in range(MAX_INBOX + 4)]  # in order, none lost
    assert room.mail.dropped == 0


async def test_the_games_messages_reach_one_player_a_set_or_everyone(room, autojump_clock):
    a, b, c = [await join(room, name=n) for n in "abc"]
    await run_ticks(room, 2)
    a.push(GameMessage("chat", {"text": "hello all"}))
    a.push(GameMessage("whisper", {"to": b.player, "text": "psst"}))
    a.push(GameMessage("play", {"slot": 2}))
    await run_ticks(room, 2)
    for link in (a, b, c):
        chat = [msg for msg in room_messages(link) if msg.kind == "chat"]
        assert [msg.data for msg in chat] == [{"from": a.player, "text": "hello all"}]
    assert [msg.data["text"] for msg in room_messages(b) if msg.kind == "whisper"] == ["psst"]
    assert [msg.data["text"] for msg in room_messages(a) if msg.kind == "whisper"] == ["psst"]
    assert not [msg for msg in room_messages(c) if msg.kind == "whisper"]
    # The card drawn is a private message: its holder's only.
    drew = [msg for msg in room_messages(a) if msg.kind == "drew"]
    assert len(drew) == 1 and drew[0].data["slot"] == 2
    assert not [msg for msg in room_messages(b) + room_messages(c) if msg.kind == "drew"]
    # ... and everyone sees the public event and the pile.
    for link in (a, b, c):
        assert ["played", a.player] == link.session.take_events()[-1][1:3]
        assert link.session.world.entity(PILE_ID)["top"] != 0  # type: ignore[union-attr]


async def test_a_hand_reaches_only_its_holder(room, autojump_clock):
    a = await join(room, name="a")
    b = await join(room, name="b")
    await run_ticks(room, 3)
    world = room.history.latest
    for me, other in ((a, b), (b, a)):
        mine = me.session.world.entity(me.player)  # type: ignore[union-attr]
        theirs = me.session.world.entity(other.player)  # type: ignore[union-attr]
        assert mine["hand"] == world.entity(me.player)["hand"] and all(mine["hand"])  # type: ignore[index]
        assert theirs["hand"] == [0] * HAND and theirs["count"] == HAND
    assert room.statistics().distinct_views == 2


async def test_messages_for_a_player_away_wait_for_its_rejoin(room, autojump_clock):
    a = await join(room, name="a")
    b = await join(room, name="b")
    await run_ticks(room, 2)
    b.drop()
    await run_ticks(room, 2)
    a.push(GameMessage("chat", {"text": "are you there?"}))
    await run_ticks(room, 2)
    back = await join(room, session=b.messages[0].session, ack=b.session.acked_tick, client=b.session)
    assert isinstance(back.messages[0], m.Welcome)  # the welcome first, then the replay
    assert [msg.data["text"] for msg in room_messages(back)] == ["are you there?"]


class BreakingLink(FakeLink):
    """A client whose connection breaks before the room notices: what the
    room sends meanwhile is lost in flight."""

    broken = False

    def send(self, payload: bytes) -> None:
        if not self.broken:
            super().send(payload)


async def test_a_rejoin_replays_what_a_broken_connection_lost_and_each_message_arrives_once(room, autojump_clock):
    a = await join(room, name="a")
    b = BreakingLink()
    b.accepted = await room.join(m.Join(version=m.PROTOCOL_VERSION, name="b"), b)
    await run_ticks(room, 2)
    a.push(GameMessage("chat", {"text": "before"}))
    await run_ticks(room, 2)
    b.broken = True
    a.push(GameMessage("chat", {"text": "lost in flight"}))
    await run_ticks(room, 2)
    b.drop()
    await run_ticks(room, 2)
    a.push(GameMessage("chat", {"text": "while away"}))
    await run_ticks(room, 2)
    back = await join(room, session=b.messages[0].session, ack=b.session.acked_tick, client=b.session)
    assert isinstance(back.messages[0], m.Welcome)  # the welcome first, then the replay
    replayed = room_messages(back)
    assert [msg.n for msg in replayed] == [1, 2, 3]  # the whole log, numbered
    # The client keeps each message once: "before" it had, the others it lacked.
    assert [msg.data["text"] for msg in b.session.take_messages()] == ["before", "lost in flight", "while away"]
    a.push(GameMessage("chat", {"text": "after"}))
    await run_ticks(room, 2)
    assert [msg.data["text"] for msg in b.session.take_messages()] == ["after"]


async def test_events_and_messages_survive_a_full_snapshot_fallback(nursery, autojump_clock):
    config = RoomConfig(tick_rate=RATE, max_players=4, history_ticks=8, ack_timeout_s=10.0)
    room = Room("cards", Cards(seed=1, config=GameConfig(tick_rate=RATE, max_players=4)), config)
    await nursery.start(room.run)
    a = await join(room, name="a")
    slow = StallingLink()
    slow.accepted = await room.join(m.Join(version=m.PROTOCOL_VERSION, name="slow"), slow)
    await run_ticks(room, 3)
    slow.session.take_events()
    slow.stalled = True
    a.push(GameMessage("play", {"slot": 0}))
    a.push(GameMessage("chat", {"text": "while you were stalled"}))
    await run_ticks(room, config.history_ticks + 5)  # the slow client's ack falls out of the world ring
    slow.stalled = False
    await run_ticks(room, 2)
    resumed = [snap for snap in slow.snapshots if snap.tick > slow.snapshots[0].tick + 3]
    assert resumed[0].base == m.NO_TICK  # a full snapshot: the deltas' events were gone with the ring ...
    events = slow.session.take_events()
    assert ["played", a.player] in [event[1:3] for event in events]  # ... yet the event arrived
    assert "while you were stalled" in [msg.data.get("text") for msg in room_messages(slow)]
    assert slow.session.desyncs == 0
    room.request_close()


async def test_a_rejoin_with_an_old_ack_gets_the_events_it_missed(nursery, autojump_clock):
    config = RoomConfig(tick_rate=RATE, max_players=4, history_ticks=8)
    room = Room("cards", Cards(seed=2, config=GameConfig(tick_rate=RATE, max_players=4)), config)
    await nursery.start(room.run)
    a = await join(room, name="a")
    b = await join(room, name="b")
    await run_ticks(room, 3)
    b.session.take_events()
    b.drop()
    a.push(GameMessage("play", {"slot": 1}))
    await run_ticks(room, config.history_ticks + 4)
    back = await join(room, session=b.messages[0].session, ack=b.session.acked_tick, client=b.session)
    await run_ticks(room, 1)
    assert back.snapshots[0].base == m.NO_TICK
    assert ["played", a.player] in [event[1:3] for event in back.session.take_events()]
    room.request_close()


def test_a_game_that_declares_messages_must_handle_them() -> None:
    class Deaf(Cards):
        handle_messages = None  # type: ignore[assignment]

    with pytest.raises(ValueError, match="handle_messages"):
        Room("deaf", Deaf(seed=1, config=GameConfig()), RoomConfig())


def test_a_send_the_room_cannot_encode_is_refused_at_once() -> None:
    game = Cards(seed=1, config=GameConfig())
    with pytest.raises(ValueError, match="kind"):
        game.requests.send("bad kind!", {})
    with pytest.raises(ValueError, match="data must be"):
        game.requests.send("x", {"v": np.float32(1)})
    with pytest.raises(ValueError, match="data must be"):
        game.requests.send("x", {1: "int key"})  # type: ignore[dict-item]
    game.requests.send("ok", {"list": [1, "a", b"b", None, 1.5, {"k": True}]}, to=[1, 2])
    taken: list[Any] = game.requests.take()
    assert taken[0].to == (1, 2)
