"""Failover in one process: several "nodes" (a registry and a Failover each)
share one MemoryStore, under trio's MockClock, so leases expire without
waiting. A node is cut off from the store (a partition, or a paused process
seen from outside) by wrapping its store."""

from __future__ import annotations

import pytest
import trio

from tests.fakes import CuttableStore, FakeLink
from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code
from tickroom.server.cluster.failover import Failover, FailoverConfig, RoomLeases
from tickroom.server.cluster.store.memory import MemoryStore
from tickroom.server.rooms.registry import RegistryConfig, RoomRegistry
from tickroom.server.rooms.room import JoinRefused, RoomConfig

RATE = 20
TTL_S = 3.0


class Node:
    def __init__(self, node_id: str, store: MemoryStore) -> None:
        self.store = CuttableStore(store, why="cut off (test)")
        config = FailoverConfig(node_id, lease_ttl_s=TTL_S, checkpoint_interval=RATE)
        self.leases = RoomLeases(config, self.store)
        self.registry = RoomRegistry(
            RegistryConfig(room=RoomConfig(tick_rate=RATE, max_players=4, rejoin_grace_s=30)), hosting=self.leases
        )
        self.failover = Failover(self.leases, self.registry, public_url=f"ws://{node_id}")

    async def start(self, nursery: trio.Nursery) -> Node:
        await nursery.start(self.registry.run)
        await nursery.start(self.failover.run)
        return self


@pytest.fixture
def store():
    return MemoryStore()


async def until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.05)
        return
    raise AssertionError(f"timed out waiting for {what}")


async def join(registry: RoomRegistry, room: str, *, session: str | None = None) -> FakeLink:
    link = FakeLink()
    link.accepted = await registry.join(
        m.Join(version=m.PROTOCOL_VERSION, name="ada", room=room, session=session), link
    )
    return link


def move(link: FakeLink, seq: int) -> None:
    link.push(m.Input(seq=seq, tick=0, ack=m.NO_TICK, data={"mx": 1.0, "my": 0.0, "aim": 0.0, "fire": False}))


async def play(link: FakeLink, room, ticks: int, first_seq: int = 1) -> int:
    seq = first_seq
    for _ in range(ticks):
        move(link, seq)
        seq += 1
        target = room.game.tick + 1
        await until(lambda target=target: room.game.tick >= target)
    return seq


async def test_a_cut_off_nodes_room_moves_and_the_old_copy_is_fenced_off(nursery, store, autojump_clock):
    a = await Node("a", store).start(nursery)
    b = await Node("b", store).start(nursery)
    link = await join(a.registry, "r1")
    room_a = a.registry.get("r1")
    await play(link, room_a, 50)
    pos_a = room_a.game.state()["p_pos"].copy()

    a.store.cut = True  # node a can no longer reach the store; its lease runs out
    await until(lambda: b.registry.get("r1") is not None, what="node b to recover r1")
    room_b = b.registry.get("r1")
    assert store_lease(store, "r1") == ("b", 2)
    assert room_b.game.tick >= 40  # the checkpoint at 40 plus the logged ticks after it
    assert room_b.game.tick <= room_a.game.tick
    (player,) = list(room_b.players)
    assert player.id == link.player and player.link is None and player.last_seq > 0
    assert abs(room_b.game.state()["p_pos"][0, 0] - pos_a[0, 0]) < 5.0  # continuous, not a respawn

    # The client rejoins at b (same entity, same session); at a it is redirected.
    session = link.session.welcome.session
    back = await join(b.registry, "r1", session=session)
    assert back.player == link.player
    # a comes back: its renewal is refused, it stops its copy and redirects.
    a.store.cut = False
    await until(lambda: a.registry.get("r1") is None, what="node a to stop its stale copy")
    assert link.kicked[0] == Code.REDIRECT
    assert store_lease(store, "r1") == ("b", 2)
    assert (await store.read_checkpoint("r1")).epoch == 2
    with pytest.raises(JoinRefused) as refused:
        await join(a.registry, "r1", session=session)
    assert refused.value.code == Code.REDIRECT and refused.value.url == "ws://b"


async def test_of_two_watchers_exactly_one_recovers_the_room(nursery, store, autojump_clock):
    a = await Node("a", store).start(nursery)
    link = await join(a.registry, "r1")
    await play(link, a.registry.get("r1"), 25)
    b = await Node("b", store).start(nursery)
    c = await Node("c", store).start(nursery)
    a.store.cut = True
    await until(lambda: b.registry.get("r1") or c.registry.get("r1"), what="a recovery")
    for _ in range(40):  # well past a few watcher rounds
        await trio.sleep(TTL_S / 3)
    assert (b.registry.get("r1") is None) != (c.registry.get("r1") is None)
    assert b.failover.recovered + c.failover.recovered == 1


async def test_drain_hands_rooms_over_without_losing_a_tick(nursery, store, autojump_clock):
    a = await Node("a", store).start(nursery)
    b = await Node("b", store).start(nursery)
    link = await join(a.registry, "r1")
    room_a = a.registry.get("r1")
    await play(link, room_a, 33)
    a.failover.hand_over_rooms()
    a.registry.close_all(Code.REDIRECT, "draining")
    await until(lambda: a.registry.get("r1") is None, what="a to end the room")
    final_tick = room_a.game.tick
    assert link.kicked[0] == Code.REDIRECT
    await until(lambda: b.registry.get("r1") is not None, timeout=TTL_S, what="b to take the room at once")
    assert b.registry.get("r1").game.tick >= final_tick


async def test_a_room_that_ends_is_forgotten(nursery, store, autojump_clock):
    a = await Node("a", store).start(nursery)
    link = await join(a.registry, "r1")
    await play(link, a.registry.get("r1"), 25)
    assert await store.room_ids() == ["r1"]
    a.registry.close("r1")
    await until(lambda: a.registry.get("r1") is None)
    assert await store.room_ids() == []


def store_lease(store: MemoryStore, room_id: str) -> tuple[str, int]:
    room = store._rooms[room_id]
    return room.lease_node, room.epoch
