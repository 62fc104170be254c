"""Failover on a Redis Cluster, end to end: three masters with one replica
each (real redis-servers joined by ``redis-cli --cluster create`` on
loopback), two real nodes on ``--redis-url redis+cluster://...``, rooms whose
keys live on different masters, clients playing.

The master holding one room's slot is killed during play and its replica
promoted: rooms keep ticking (no client reconnects), checkpoints land on
every shard again, each room stays with its node. Then a node is killed and
its room fails over through the cluster. Every wait polls a condition under
a deadline."""

from __future__ import annotations

import trio
from redis.crc import key_slot

from tests.redis_server import redis_cluster_group
from tickroom.client import connect
from tickroom.server.cluster.store.redis import RedisStore

from .harness import eventually
from .test_sentinel import CHECKPOINT_TICKS, TTL_S, checkpoint_tick, counter, keep_playing, node

PROMOTION_DEADLINE_S = 30.0  # cluster-node-timeout (1 s) + the replica's election, with CI slack
RECOVERY_DEADLINE_S = TTL_S + 10.0


def master_of(masters: dict[int, int], room: str) -> int:
    """The port of the master serving the room's hash tag."""
    slot = key_slot(f"{{{room}}}".encode())
    return masters[max(start for start in masters if start <= slot)]


def rooms_on_different_masters(masters: dict[int, int]) -> tuple[str, str]:
    by_master: dict[int, str] = {}
    for i in range(1000):
        by_master.setdefault(master_of(masters, f"cl-{i}"), f"cl-{i}")
        if len(by_master) == 3:
            break
    first, second, *_ = by_master.values()
    return first, second


async def test_play_goes_on_through_a_cluster_master_failover_and_a_node_failover():
    with redis_cluster_group() as group:
        masters = group.masters()
        room_a, room_b = rooms_on_different_masters(masters)
        doomed = master_of(masters, room_a)
        assert doomed != master_of(masters, room_b)
        with node(group.url, "cl-a") as a, node(group.url, "cl-b") as b:
            store = RedisStore(group.url)
            try:
                async with (
                    connect(a.url, room=room_a, name="ada", reconnect=True, urls=[b.url]) as ada,
                    connect(b.url, room=room_b, name="bo", reconnect=True, urls=[a.url]) as bo,
                ):
                    players = (ada.player, bo.player)
                    gaps = [0.0]
                    stop = trio.Event()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(keep_playing, ada, gaps, stop)
                        nursery.start_soon(keep_playing, bo, [0.0], stop)
                        with trio.fail_after(RECOVERY_DEADLINE_S):
                            while min([await checkpoint_tick(store, r) for r in (room_a, room_b)]) < CHECKPOINT_TICKS:
                                await trio.sleep(0.05)
                        gaps[0] = 0.0
                        tick_at_kill = ada.world.tick
                        group.kill(doomed)
                        killed_at = trio.current_time()
                        await eventually(
                            lambda: doomed not in group.masters().values() and len(group.masters()) == 3,
                            timeout=PROMOTION_DEADLINE_S, what="the replica to take over the slots",
                        )  # fmt: skip
                        promoted_s = trio.current_time() - killed_at
                        with trio.fail_after(PROMOTION_DEADLINE_S):
                            while min([await checkpoint_tick(store, r) for r in (room_a, room_b)]) <= tick_at_kill:
                                await trio.sleep(0.05)
                        resumed_s = trio.current_time() - killed_at
                        for n in (a, b):
                            await eventually(
                                lambda n=n: counter(n.control_url, "tickroom_failover_master_changes") >= 1,
                                timeout=PROMOTION_DEADLINE_S, what=f"{n.url} to see the new master",
                            )  # fmt: skip
                        stop.set()
                    print(
                        f"cluster failover: slots moved in {promoted_s:.2f} s, checkpoints on every shard "
                        f"{resumed_s:.2f} s after the kill, longest wait for a world {gaps[0] * 1000:.0f} ms"
                    )
                    assert ada.reconnects == 0 and bo.reconnects == 0
                    assert (ada.player, bo.player) == players
                    assert gaps[0] < 1.0
                    lease_a, lease_b = await store.lease(room_a), await store.lease(room_b)
                    assert lease_a is not None and lease_a.node_id == "cl-a"
                    assert lease_b is not None and lease_b.node_id == "cl-b"

                    # Node A dies: its room moves to B through the cluster.
                    before = ada.world
                    a.proc.kill()
                    await eventually(lambda: ada.url == b.url, timeout=RECOVERY_DEADLINE_S, what="the client to move")
                    with trio.fail_after(RECOVERY_DEADLINE_S):
                        after = await ada.next_world(after=before.tick)
                    assert ada.player == players[0] and after.entity(ada.player) is not None
                    moved = await store.lease(room_a)
                    assert moved is not None and moved.node_id == "cl-b" and moved.epoch > lease_a.epoch
            finally:
                await store.aclose()
