"""Per-player views on MockClock rooms: each client reconstructs exactly the
entities its row of the game's visibility mask allows, entities entering a
view arrive whole and leaving ones are removed, clients that see the same
thing share one encode (counted by the room's statistics), and a game
without visibility keeps the shared path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import FakeLink, join, run_ticks
from tickroom.protocol import envelope
from tickroom.protocol import messages as m
from tickroom.protocol.codec import finish_snapshot
from tickroom.protocol.delta import WorldState, apply_delta
from tickroom.protocol.schema import Schema
from tickroom.server.rooms.room import Room, RoomConfig
from tickroom.server.rooms.snapshots import SnapshotHistory
from tickroom.server.rooms.views import VisibilityError, split_views
from tickroom.simulation.game import GameConfig, InputBatch, View, Visibility
from tickroom.simulation.games.arena import Arena

RATE = 20
ITEMS = 6  # entities that are not players: ids 1001..1006


class Sight:
    """A scripted game: each player's avatar and ITEMS fixed items whose
    values change every tick; what each player sees is set by the test
    (``sees``: player -> item ids; a player always sees its own avatar),
    or drawn at random every tick (``random_masks``)."""

    name: ClassVar[str] = "sight"
    input_fields: ClassVar[Mapping[str, tuple]] = {"x": ("float", -1.0, 1.0)}
    components: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "v": {"dtype": "<u2", "shape": []},
        "xy": {"dtype": "<i2", "shape": [2]},
    }

    def __init__(self, seed: int, config: GameConfig) -> None:
        self.config = config
        self.tick = 0
        self.rng = np.random.default_rng(seed)
        self.players: list[int] = []
        self.sees: dict[int, list[int]] = {}
        self.random_masks = False
        self.visibility_calls = 0

    def join(self, name: str) -> int:
        pid = len(self.players) + 1
        self.players.append(pid)
        return pid

    def leave(self, player_id: int) -> None:
        if player_id in self.players:
            self.players.remove(player_id)

    def apply_inputs(self, batch: InputBatch) -> None:
        pass

    def step(self) -> list[list[Any]]:
        self.tick += 1
        return []

    def view(self) -> View:
        ids = np.array(self.players + list(range(1001, 1001 + ITEMS)), dtype="<u4")
        n = ids.shape[0]
        # Half the items change every tick, the others every other tick.
        v = ((ids.astype(np.int64) * 7 + self.tick // (1 + (ids % 2))) % 65536).astype("<u2")
        xy = np.stack([ids.astype("<i2"), np.full(n, self.tick % 1000, dtype="<i2")], axis=1)
        return View(ids=ids, components={"v": v, "xy": xy})

    def visibility(self, view: View) -> Visibility:
        self.visibility_calls += 1
        players = np.array(self.players, dtype=np.int64)
        ids = view.ids.astype(np.int64)
        if self.random_masks:
            mask = self.rng.random((players.shape[0], ids.shape[0])) < 0.5
        else:
            mask = np.zeros((players.shape[0], ids.shape[0]), dtype=bool)
            for row, pid in enumerate(self.players):  # a test fake, a handful of players
                mask[row] = np.isin(ids, [pid, *self.sees.get(pid, ())])
        return Visibility(players=players, mask=mask)

    def state(self) -> dict[str, Any]:
        return {"tick": self.tick, "players": list(self.players)}

    @classmethod
    def restore(cls, state: Mapping[str, Any], config: GameConfig) -> Sight:
        game = cls(0, config)
        game.tick, game.players = int(state["tick"]), list(state["players"])
        return game


class CheckingLink(FakeLink):
    """A client that, after every snapshot, compares the world it rebuilt
    with the one the server meant for it at that tick."""

    room: Room

    def offer(self, payload: bytes) -> None:
        super().offer(payload)
        snap = self.snapshots[-1]
        if self.accepted is not None:
            expected = self.room.history.world_for(self.player, snap.tick)
            assert self.session.world is not None and self.session.world.equals(expected), (
                f"player {self.player} at tick {snap.tick}: has {self.session.world.ids.tolist()}, "  # type: ignore[union-attr]
                f"should have {expected.ids.tolist()}"
            )
            self.checked = getattr(self, "checked", 0) + 1


async def join_checked(room: Room, name: str, **opts) -> CheckingLink:
    link = CheckingLink(**opts)
    link.room = room
    link.accepted = await room.join(m.Join(version=m.PROTOCOL_VERSION, name=name), link)
    return link


@pytest.fixture
async def room(nursery, autojump_clock):
    config = RoomConfig(tick_rate=RATE, max_players=8)
    room = Room("views", Sight(seed=3, config=GameConfig(tick_rate=RATE, max_players=8)), config)
    await nursery.start(room.run)
    yield room
    room.request_close()


def ids_of(link: FakeLink) -> list[int]:
    assert link.session.world is not None
    return link.session.world.ids.tolist()


async def test_two_players_see_different_entities(room, autojump_clock):
    a = await join_checked(room, "a")
    b = await join_checked(room, "b")
    room.game.sees = {a.player: [1001, 1002], b.player: [1003]}
    await run_ticks(room, 10)
    assert ids_of(a) == [a.player, 1001, 1002]
    assert ids_of(b) == [b.player, 1003]
    # The values are the server's, row for row.
    world = room.history.latest
    for link in (a, b):
        for entity in ids_of(link):
            assert link.session.world.entity(entity) == world.entity(entity)  # type: ignore[union-attr]
        assert link.session.desyncs == 0
    # ... and they stayed on deltas (acked every tick) all along.
    assert all(s.base == s.tick - 1 for s in a.snapshots[3:])


async def test_an_entity_entering_a_view_arrives_whole_and_one_leaving_is_removed(room, autojump_clock):
    a = await join_checked(room, "a")
    room.game.sees = {a.player: [1001]}
    await run_ticks(room, 5)
    assert ids_of(a) == [a.player, 1001]
    room.game.sees = {a.player: [1001, 1004]}
    await run_ticks(room, 1)
    entered = a.snapshots[-1]
    assert entered.base != m.NO_TICK  # a delta, not a full snapshot ...
    # ... in which the newcomer carries every component (the client had no row of it).
    carried = np.frombuffer(entered.fields["ids"], dtype="<u4").tolist()
    assert 1004 in carried and set(entered.fields["c"]) == {"v", "xy"}
    assert a.session.world.entity(1004) == room.history.latest.entity(1004)  # type: ignore[union-attr]
    room.game.sees = {a.player: [1004]}
    await run_ticks(room, 1)
    left = a.snapshots[-1]
    assert np.frombuffer(left.fields["rm"], dtype="<u4").tolist() == [1001]
    assert ids_of(a) == [a.player, 1004]
    # The entity is still in the room's world: only this player lost sight of it.
    assert room.history.latest.entity(1001) is not None  # type: ignore[union-attr]
    # Back into view later: whole again, with its current values.
    room.game.sees = {a.player: [1001, 1004]}
    await run_ticks(room, 3)
    assert ids_of(a) == [a.player, 1001, 1004]
    assert a.session.world.entity(1001) == room.history.latest.entity(1001)  # type: ignore[union-attr]
    assert a.session.desyncs == 0


async def test_players_who_see_the_same_share_one_encode(room, autojump_clock):
    links = [await join_checked(room, f"p{i}") for i in range(4)]
    # Every player always sees its own avatar, so make the avatars part of
    # both groups' views: two groups of two players with identical rows.
    group_a = [links[0].player, links[1].player, 1001, 1002]
    group_b = [links[2].player, links[3].player, 1005]
    room.game.sees = {link.player: (group_a if i < 2 else group_b) for i, link in enumerate(links)}
    await run_ticks(room, 10)
    before = room.statistics()
    await run_ticks(room, 20)
    after = room.statistics()
    assert after.distinct_views == 2
    # Everyone acks the previous tick and keeps its view: one encode per view per tick.
    assert after.deltas_encoded - before.deltas_encoded == 2 * 20
    assert ids_of(links[0]) == ids_of(links[1]) == sorted(group_a)
    assert ids_of(links[2]) == ids_of(links[3]) == sorted(group_b)


async def test_random_masks_and_lagging_acks_rebuild_exactly_each_players_world(room, autojump_clock):
    room.game.random_masks = True
    prompt = [await join_checked(room, f"prompt{i}") for i in range(3)]
    # These two ack only now and then: their deltas come from older
    # baselines, against the view each of them had back then.
    lagging = [await join_checked(room, f"lag{i}", auto_ack=False) for i in range(2)]
    for tick in range(120):
        await run_ticks(room, 1)
        for k, link in enumerate(lagging):
            if tick % (3 + 2 * k) == 0 and link.snapshots:
                link.push(m.Ack(tick=link.snapshots[-1].tick))
    for link in prompt + lagging:
        assert link.checked >= 100  # every snapshot checked against the server's view for it
        assert link.session.desyncs == 0
    assert any(s.base not in (m.NO_TICK, s.tick - 1) for s in lagging[1].snapshots)
    assert room.statistics().distinct_views == 5


async def test_a_game_without_visibility_stays_on_the_shared_path(nursery, autojump_clock):
    config = RoomConfig(tick_rate=RATE, max_players=4)
    room = Room("plain", Arena(seed=1, config=GameConfig(tick_rate=RATE, max_players=4)), config)
    await nursery.start(room.run)
    links = [await join(room, name=f"p{i}") for i in range(3)]
    await run_ticks(room, 5)
    before = room.statistics().deltas_encoded
    await run_ticks(room, 20)
    stats = room.statistics()
    assert stats.distinct_views == 0 and not room.history.per_player
    assert stats.deltas_encoded - before == 20  # one shared encode per tick for all three
    for link in links:
        assert link.session.world.equals(room.history.latest)  # type: ignore[union-attr]
    room.request_close()


SCHEMA = Schema.from_description(Sight.components)


def world_of(n: int) -> WorldState:
    ids = np.arange(1, n + 1, dtype="<u4")
    return WorldState.from_view(1, ids, {"v": ids.astype("<u2"), "xy": np.zeros((n, 2), dtype="<i2")}, SCHEMA)


@pytest.mark.parametrize(
    ("players", "mask", "why"),
    [
        (np.array([1, 2]), np.ones((2, 3), dtype=bool), "shape"),
        (np.array([1, 2]), np.ones((2, 4), dtype=np.uint8), "bool"),
        (np.array([1, 1]), np.ones((2, 4), dtype=bool), "unique"),
        (np.array([[1, 2]]), np.ones((2, 4), dtype=bool), "1-D"),
    ],
)
def test_a_mask_that_does_not_fit_the_view_is_refused(players, mask, why):
    with pytest.raises(VisibilityError, match=why):
        split_views(world_of(4), Visibility(players=players, mask=mask), world_of(4).ids, SCHEMA)


def test_split_views_follows_the_games_entity_order_and_hides_everything_from_strangers():
    world = world_of(4)
    # The game's view listed its ids in another order: 3, 1, 4, 2.
    game_order = np.array([3, 1, 4, 2], dtype="<u4")
    mask = np.array([[True, False, False, True], [True, True, True, True]])  # sees 3 and 2; everything
    views = split_views(world, Visibility(players=np.array([10, 20]), mask=mask), game_order, SCHEMA)
    assert views.worlds[views.group(10)].ids.tolist() == [2, 3]
    assert views.worlds[views.group(20)] is world  # a full row shares the tick's world
    assert views.worlds[views.group(99)].ids.tolist() == []  # no row: sees nothing
    assert views.distinct == 2


async def steer(link: FakeLink, mx: float, my: float) -> None:
    """One input; the arena keeps the stick until the next one."""
    seq = getattr(link, "seq", 0) + 1
    link.seq = seq  # type: ignore[attr-defined]
    link.push(
        m.Input(seq=seq, tick=0, ack=link.session.acked_tick, data={"mx": mx, "my": my, "aim": 0.0, "fire": False})
    )


def distance(room: Room, a: int, b: int) -> float:
    world = room.history.latest
    pa, pb = world.entity(a)["pos"], world.entity(b)["pos"]  # type: ignore[index]
    return float(np.hypot(pa[0] - pb[0], pa[1] - pb[1])) / 32  # wire units: 1/32 unit


async def test_arena_fog_players_appear_and_disappear_as_they_cross_the_radius(nursery, autojump_clock):
    fog = 20.0
    options = {"size": 100.0, "max_projectiles": 1024, "collision": "auto", "fog": fog}
    config = RoomConfig(tick_rate=RATE, max_players=4)
    room = Room("fog", Arena(seed=5, config=GameConfig(tick_rate=RATE, max_players=4, options=options)), config)
    await nursery.start(room.run)
    a = await join_checked(room, "a")
    b = await join_checked(room, "b")
    # Opposite corners: 140 units apart, far beyond the fog.
    await steer(a, -1.0, -1.0)
    await steer(b, 1.0, 1.0)
    await run_ticks(room, 200)
    assert distance(room, a.player, b.player) > 130
    assert b.player not in ids_of(a) and a.player not in ids_of(b)
    assert a.player in ids_of(a) and b.player in ids_of(b)  # each sees its own avatar
    # b walks towards a: a sees b from the first tick b is within the radius.
    await steer(b, -1.0, -1.0)
    for _ in range(400):
        await run_ticks(room, 1)
        if b.player in ids_of(a):
            break
    else:
        raise AssertionError("b never appeared to a")
    assert fog - 1 < distance(room, a.player, b.player) <= fog
    assert a.player in ids_of(b)  # the radius is the same both ways
    assert a.session.world.entity(b.player) == room.history.latest.entity(b.player)  # type: ignore[union-attr]
    # ... and walks away again: b vanishes from a's world once beyond it.
    await steer(b, 1.0, 1.0)
    for _ in range(400):
        await run_ticks(room, 1)
        if b.player not in ids_of(a):
            break
    else:
        raise AssertionError("b never disappeared from a")
    assert fog < distance(room, a.player, b.player) < fog + 1
    assert a.player not in ids_of(b)
    assert a.session.desyncs == b.session.desyncs == 0 and a.checked > 300
    room.request_close()


@st.composite
def worlds_and_masks(draw):
    """A few ticks of a random world (entities come and go, values change)
    with a random visibility mask per tick for three players."""
    ticks = draw(st.integers(2, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out = []
    for tick in range(1, ticks + 1):
        ids = np.flatnonzero(rng.random(12) < 0.7).astype("<u4") + 1
        n = ids.shape[0]
        components = {
            "v": rng.integers(0, 4, n).astype("<u2"),
            "xy": rng.integers(-3, 3, (n, 2)).astype("<i2"),
        }
        world = WorldState.from_view(tick, ids, components, SCHEMA)
        out.append((world, rng.random((3, n)) < draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))))
    return out


@given(worlds_and_masks(), st.lists(st.integers(0, 4), min_size=3, max_size=3))
@settings(max_examples=150)
def test_every_client_rebuilds_exactly_what_its_row_allows(ticks, lags) -> None:
    """The codec path of the room, without the room: each player's snapshot
    is its view against its own view at some older tick (its lag), and what
    the client rebuilds is exactly the entities of its row, values included."""
    players = np.array([7, 8, 9])
    history = SnapshotHistory(SCHEMA, 8)
    clients: list[dict[int, WorldState]] = [{} for _ in players]  # per player: tick -> rebuilt world
    for world, mask in ticks:
        history.record(world, [], split_views(world, Visibility(players, mask), world.ids, SCHEMA))
        for k, pid in enumerate(players.tolist()):
            older = [t for t in clients[k] if t <= world.tick - 1 - lags[k]]
            base = history.baseline_for(max(older)) if older else m.NO_TICK
            fields = envelope.decode(msgpack.unpackb(finish_snapshot(history.payload_for(pid, base), 0), raw=False))
            rebuilt = apply_delta(clients[k].get(base), world.tick, fields, SCHEMA)
            allowed = world.ids[mask[k]]
            assert rebuilt.ids.tolist() == allowed.tolist()
            for name, array in world.components.items():
                assert np.array_equal(rebuilt.components[name], array[mask[k]])
            clients[k][world.tick] = rebuilt
