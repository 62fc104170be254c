"""The room registry under trio's MockClock: the per-room crash fence, quick
match, rooms by name, refusals, drain and close, with FakeLink clients."""

from __future__ import annotations

import pytest
import trio

import tickroom.simulation.games
from tests.fakes import FakeLink
from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code
from tickroom.server.rooms.registry import LocalHosting, RegistryConfig, RoomRegistry
from tickroom.server.rooms.room import JoinRefused, RoomConfig
from tickroom.simulation.games.arena import Arena

RATE = 20
DT = 1 / RATE
MAX_PLAYERS = 3


class CrashingArena(Arena):
    """The arena, with a bug that fires in the step of tick 5."""

    name = "crashing"

    def step(self):
        if self.tick + 1 == 5:
            raise RuntimeError("simulated bug at tick 5")
        return super().step()


@pytest.fixture
def crashing_game(monkeypatch):
    # get_game looks names up in tickroom.simulation.games.GAMES at call time.
    monkeypatch.setitem(tickroom.simulation.games.GAMES, CrashingArena.name, CrashingArena)


def make_registry(**overrides) -> RoomRegistry:
    room = RoomConfig(tick_rate=RATE, max_players=MAX_PLAYERS)
    return RoomRegistry(RegistryConfig(**{"room": room, **overrides}))


# pytest-trio installs the MockClock only when the test function itself names
# autojump_clock, so every test below lists it beside ``registry``.
@pytest.fixture
async def registry(nursery):
    registry = make_registry()
    await nursery.start(registry.run)
    return registry


async def join(registry: RoomRegistry, *, room: str | None = None, game: str | None = None,
               session: str | None = None, name: str = "p") -> FakeLink:  # fmt: skip
    link = FakeLink()
    msg = m.Join(version=m.PROTOCOL_VERSION, name=name, room=room, game=game, session=session)
    link.accepted = await registry.join(msg, link)
    return link


async def test_a_crashing_room_is_fenced_off_from_its_siblings(registry, crashing_game, autojump_clock):
    doomed = [await join(registry, room="doomed", game="crashing", name=f"d{i}") for i in range(2)]
    healthy = await join(registry, room="healthy", name="h")
    healthy_room = registry.get("healthy")
    await trio.sleep(10 * DT)

    assert registry.crashes == 1
    assert registry.get("doomed") is None
    assert all(link.kicked is not None and link.kicked[0] is Code.ROOM_CRASHED for link in doomed)
    # Ticks 1..4 were sent before the crash; nothing after it.
    assert [s.tick for s in doomed[0].snapshots] == [1, 2, 3, 4]

    tick = healthy_room.game.tick
    await trio.sleep(10 * DT)
    assert healthy_room.game.tick >= tick + 9
    assert healthy.kicked is None and not healthy_room.closed
    assert registry.get("healthy") is healthy_room
    assert healthy.snapshots[-1].tick == healthy_room.game.tick
    # The name is free again: a new room of it starts from tick 0.
    again = await join(registry, room="doomed", name="again")
    assert again.accepted.room_id == "doomed" and registry.get("doomed").game.tick < 5


async def test_quick_match_fills_a_room_then_opens_another(registry, autojump_clock):
    links = [await join(registry, name=f"p{i}") for i in range(MAX_PLAYERS + 1)]
    first = {link.accepted.room_id for link in links[:MAX_PLAYERS]}
    assert len(first) == 1
    assert links[-1].accepted.room_id not in first
    assert len(registry.rooms()) == 2
    assert len(registry.get(first.pop()).players) == MAX_PLAYERS
    # Naming the default game explicitly matches the open room too.
    same = await join(registry, game="arena")
    assert same.accepted.room_id == links[-1].accepted.room_id


async def test_quick_match_keeps_games_apart(registry, crashing_game, autojump_clock):
    arena = await join(registry, game="arena")
    other = await join(registry, game="crashing")
    assert arena.accepted.room_id != other.accepted.room_id
    assert registry.get(other.accepted.room_id).game.name == "crashing"


async def test_a_room_by_name_is_created_once_and_reused(registry, autojump_clock):
    a = await join(registry, room="lobby", name="a")
    b = await join(registry, room="lobby", name="b")
    assert a.accepted.room_id == b.accepted.room_id == "lobby"
    assert [room.room_id for room in registry.rooms()] == ["lobby"]
    assert len(registry.get("lobby").players) == 2
    with pytest.raises(JoinRefused) as wrong_game:
        await join(registry, room="lobby", game="chess")
    assert wrong_game.value.code is Code.UNKNOWN_GAME


@pytest.mark.parametrize("room", [None, "chess-room"])
async def test_an_unknown_game_is_refused(registry, room, autojump_clock):
    with pytest.raises(JoinRefused) as refused:
        await join(registry, room=room, game="chess")
    assert refused.value.code is Code.UNKNOWN_GAME
    assert registry.rooms() == []


async def test_without_client_rooms_only_existing_rooms_can_be_joined(nursery, autojump_clock):
    registry = make_registry(allow_client_rooms=False)
    await nursery.start(registry.run)
    for room in ("no-such-room", None):
        with pytest.raises(JoinRefused) as refused:
            await join(registry, room=room)
        assert refused.value.code is Code.UNAUTHORIZED
    assert registry.rooms() == []
    registry.create("operators-room")
    link = await join(registry, room="operators-room")
    assert link.accepted.room_id == "operators-room"


async def test_drain_closes_every_room_and_refuses_new_ones(registry, autojump_clock):
    links = [await join(registry, room=name) for name in ("a", "a", "b")]
    registry.close_all()
    with trio.fail_after(5):
        await registry.wait_empty()
    assert registry.rooms() == []
    assert [link.kicked[0] if link.kicked else None for link in links] == [Code.GOING_AWAY] * 3
    with pytest.raises(JoinRefused) as refused:
        registry.create("late")
    assert refused.value.code is Code.SERVER_FULL
    with pytest.raises(JoinRefused) as refused:
        await join(registry, room="late")
    assert refused.value.code is Code.SERVER_FULL


async def test_close_ends_that_room_only(registry, autojump_clock):
    closing = [await join(registry, room="closing", name=f"c{i}") for i in range(2)]
    staying = await join(registry, room="staying")
    assert registry.close("closing")
    await trio.sleep(2 * DT)
    assert all(link.kicked is not None and link.kicked[0] is Code.ROOM_CLOSED for link in closing)
    assert registry.get("closing") is None
    assert staying.kicked is None and registry.get("staying") is not None
    assert registry.close("no-such-room") is False


async def test_a_rejoin_for_a_room_not_on_this_node_is_session_unknown(registry, autojump_clock):
    await join(registry, room="here")
    for room in ("elsewhere", None):
        with pytest.raises(JoinRefused) as refused:
            await join(registry, room=room, session="token-from-another-node")
        assert refused.value.code is Code.SESSION_UNKNOWN
    assert [room.room_id for room in registry.rooms()] == ["here"]  # none created


async def test_max_rooms_refuses_with_server_full(nursery, autojump_clock):
    registry = make_registry(max_rooms=2)
    await nursery.start(registry.run)
    await join(registry, room="one")
    await join(registry, room="two")
    with pytest.raises(JoinRefused) as refused:
        await join(registry, room="three")
    assert refused.value.code is Code.SERVER_FULL
    assert (await join(registry, room="one")).accepted.room_id == "one"


async def test_concurrent_quick_matches_for_the_last_seat_open_a_new_room(registry, autojump_clock):
    for i in range(MAX_PLAYERS - 1):
        await join(registry, name=f"early{i}")
    joined: list[str] = []
    refused: list[Code] = []

    async def join_late(name: str) -> None:
        try:
            joined.append((await join(registry, name=name)).accepted.room_id)
        except JoinRefused as exc:
            refused.append(exc.code)

    async with trio.open_nursery() as nursery:  # both arrive within one tick
        nursery.start_soon(join_late, "late-a")
        nursery.start_soon(join_late, "late-b")
    assert refused == []
    assert len(set(joined)) == 2


class SlowHosting(LocalHosting):
    """Locating a room takes a round trip, as it does through Redis."""

    async def locate(self, room_id: str, *, rejoin: bool) -> None:
        await trio.sleep(0.01)


async def test_two_joins_that_create_the_same_room_at_once_both_get_in(nursery, autojump_clock):
    registry = RoomRegistry(
        RegistryConfig(room=RoomConfig(tick_rate=RATE, max_players=MAX_PLAYERS)), hosting=SlowHosting()
    )
    await nursery.start(registry.run)
    links: list[FakeLink] = []

    async def join_lobby(name: str) -> None:
        links.append(await join(registry, room="raced", name=name))

    async with trio.open_nursery() as joins:
        joins.start_soon(join_lobby, "ada")
        joins.start_soon(join_lobby, "bob")
    assert len(links) == 2 and len(registry.rooms()) == 1
    assert {link.accepted.room_id for link in links} == {"raced"}
