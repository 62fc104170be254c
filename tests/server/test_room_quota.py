"""Room spam (issue 16, item 5): the rooms clients of one source address
create are capped while they run (TOO_MANY_ROOMS, 4012), and a room a client
created but nobody took a seat in ends after ``unjoined_close_s``. The
registry runs for real under trio's MockClock, with FakeLink clients."""

from __future__ import annotations

import pytest
import trio

import tickroom.simulation.games
from tests.fakes import FakeLink
from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code
from tickroom.server.rooms.registry import RegistryConfig, RoomRegistry
from tickroom.server.rooms.room import JoinRefused, RoomConfig
from tickroom.simulation.game import GameFull
from tickroom.simulation.games.arena import Arena

RATE = 20
QUOTA = 3
UNJOINED_S = 5.0
IDLE_S = 30.0


class NobodyArena(Arena):
    """An arena whose game refuses every player (as a game's join hook may)."""

    name = "nobody"

    def join(self, name: str) -> int:
        raise GameFull("this game takes nobody")


@pytest.fixture
def nobody_game(monkeypatch):
    monkeypatch.setitem(tickroom.simulation.games.GAMES, NobodyArena.name, NobodyArena)


@pytest.fixture
async def registry(nursery):
    config = RegistryConfig(
        room=RoomConfig(tick_rate=RATE, idle_close_s=IDLE_S),
        max_rooms_per_address=QUOTA,
        unjoined_close_s=UNJOINED_S,
    )
    registry = RoomRegistry(config)
    await nursery.start(registry.run)
    return registry


async def join(registry: RoomRegistry, address: str | None, *, room: str | None = None, game: str | None = None):
    link = FakeLink()
    msg = m.Join(version=m.PROTOCOL_VERSION, name="p", room=room, game=game)
    link.accepted = await registry.join(msg, link, address=address)
    return link


async def test_one_address_creates_rooms_up_to_its_quota_then_gets_4012(registry, autojump_clock):
    for i in range(QUOTA):
        await join(registry, "10.0.0.1", room=f"spam-{i}")
    with pytest.raises(JoinRefused) as refused:
        await join(registry, "10.0.0.1", room="spam-over")
    assert refused.value.code is Code.TOO_MANY_ROOMS == 4012
    assert registry.get("spam-over") is None
    # A quick match still seats the client in a room that runs (no new room needed).
    quick = await join(registry, "10.0.0.1")
    assert quick.accepted.room_id.startswith("spam-")
    stats = registry.room_quota.statistics()
    assert (stats.addresses, stats.rooms) == (1, QUOTA)
    assert stats.refused >= 1


async def test_the_quota_limits_creating_not_joining(registry, autojump_clock):
    for i in range(QUOTA):
        await join(registry, "10.0.0.1", room=f"mine-{i}")
    # The capped address still joins rooms that run, its own or others'.
    await join(registry, "10.0.0.2", room="theirs")
    again = await join(registry, "10.0.0.1", room="theirs")
    assert again.accepted.room_id == "theirs"
    mine = await join(registry, "10.0.0.1", room="mine-0")
    assert mine.accepted.room_id == "mine-0"
    # Other addresses, rooms by the operator and in-process links are not limited.
    await join(registry, "10.0.0.3", room="fresh")
    registry.create("operators")
    await join(registry, None, room="in-process")
    assert {r.room_id for r in registry.rooms()} >= {"theirs", "fresh", "operators", "in-process"}


async def test_a_room_that_ends_gives_its_creator_one_back(registry, autojump_clock):
    for i in range(QUOTA):
        await join(registry, "10.0.0.1", room=f"spam-{i}")
    assert registry.close("spam-0")
    await trio.sleep(2 / RATE)  # the room ends at its next tick
    assert registry.get("spam-0") is None
    assert registry.room_quota.statistics().rooms == QUOTA - 1
    link = await join(registry, "10.0.0.1", room="spam-again")
    assert link.accepted.room_id == "spam-again"


async def test_a_client_room_nobody_joined_ends_after_the_short_idle(registry, nobody_game, autojump_clock):
    start = trio.current_time()
    with pytest.raises(JoinRefused) as refused:
        await join(registry, "10.0.0.1", room="empty", game="nobody")
    assert refused.value.code is Code.ROOM_FULL
    assert registry.get("empty") is not None  # created, then the game refused the seat
    while registry.get("empty") is not None:
        await trio.sleep(1 / RATE)
    assert UNJOINED_S <= trio.current_time() - start < UNJOINED_S + 0.5
    assert registry.room_quota.statistics().rooms == 0


async def test_a_room_someone_joined_keeps_the_normal_idle_close(registry, autojump_clock):
    link = await join(registry, "10.0.0.1", room="played")
    link.drop(left=True)  # the creator leaves at once: the room was joined, so --idle-close applies
    await trio.sleep(UNJOINED_S + 1)
    assert registry.get("played") is not None
    await trio.sleep(IDLE_S)
    assert registry.get("played") is None


async def test_rooms_made_by_the_operator_wait_the_normal_idle_close(registry, autojump_clock):
    registry.create("allocated")  # by the control API: its players come with tickets later
    await trio.sleep(UNJOINED_S + 1)
    assert registry.get("allocated") is not None
