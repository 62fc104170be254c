"""One suite for every Store implementation: the in-memory store, and the
Redis store on a real redis-server and on a real Redis Cluster (three
masters, rooms spread over them: every script and pipeline must stay within
one slot per command)."""

from __future__ import annotations

import pytest
import trio

from tickroom.server.cluster.store.base import FENCED, WRITTEN, NodeInfo, StoreUnavailable, Write
from tickroom.server.cluster.store.memory import MemoryStore
from tickroom.server.cluster.store.redis import RedisStore

TTL_S = 0.3  # short, so expiry tests wait little; expiry is polled, never slept for


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request):
    if request.param == "memory":
        yield MemoryStore()
    else:
        url = request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
        store = RedisStore(url)
        try:
            yield store
        finally:
            await store.aclose()


async def wait_for(predicate, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(0.02)


async def test_new_room_claims_epoch_one_and_a_live_lease_is_not_claimable(store):
    assert await store.claim("r1", "a", 10) == 1
    assert await store.claim("r1", "b", 10) is None
    lease = await store.lease("r1")
    assert (lease.node_id, lease.epoch) == ("a", 1)
    assert await store.room_ids() == ["r1"]


async def test_expired_lease_is_claimed_with_the_next_epoch(store):
    assert await store.claim("r1", "a", TTL_S) == 1

    async def expired():
        return await store.lease("r1") is None

    await wait_for(expired)
    assert await store.claim("r1", "b", 10) == 2
    assert (await store.lease("r1")).node_id == "b"


async def test_renew_keeps_the_lease_and_a_stale_epoch_cannot_renew(store):
    assert await store.claim("r1", "a", 10) == 1
    assert await store.renew("r1", "a", 1, 10)
    assert await store.release("r1", 1)
    assert await store.claim("r1", "b", 10) == 2
    assert not await store.renew("r1", "a", 1, 10)
    assert (await store.lease("r1")).node_id == "b"


async def test_stale_epoch_checkpoint_and_log_writes_are_refused(store):
    await store.claim("r1", "a", 10)
    assert await store.write_checkpoint("r1", 1, 20, b"state-a")
    assert await store.append_log("r1", 1, [(21, b"i21"), (22, b"i22")])
    assert await store.release("r1", 1)
    assert await store.claim("r1", "b", 10) == 2
    # The old owner wakes up: every write is fenced off.
    assert not await store.write_checkpoint("r1", 1, 99, b"stale")
    assert not await store.append_log("r1", 1, [(23, b"stale")])
    assert not await store.release("r1", 1)
    assert not await store.forget("r1", 1)
    ckpt = await store.read_checkpoint("r1")
    assert (ckpt.epoch, ckpt.tick, ckpt.data) == (1, 20, b"state-a")
    assert ckpt.log == [(21, b"i21"), (22, b"i22")]
    assert await store.write_checkpoint("r1", 2, 25, b"state-b")
    ckpt = await store.read_checkpoint("r1")
    assert (ckpt.epoch, ckpt.tick, ckpt.data, ckpt.log) == (2, 25, b"state-b", [])


async def test_checkpoint_empties_the_log(store):
    await store.claim("r1", "a", 10)
    assert await store.read_checkpoint("r1") is None
    await store.write_checkpoint("r1", 1, 10, b"c10")
    await store.append_log("r1", 1, [(t, b"i%d" % t) for t in range(11, 16)])
    assert (await store.read_checkpoint("r1")).log == [(t, b"i%d" % t) for t in range(11, 16)]
    await store.write_checkpoint("r1", 1, 15, b"c15")
    await store.append_log("r1", 1, [(16, b"i16")])
    ckpt = await store.read_checkpoint("r1")
    assert (ckpt.tick, ckpt.data, ckpt.log) == (15, b"c15", [(16, b"i16")])


async def test_forget_deletes_the_room_and_a_reused_id_counts_epochs_on(store):
    await store.claim("r1", "a", 10)
    await store.write_checkpoint("r1", 1, 10, b"c")
    assert await store.forget("r1", 1)
    assert await store.room_ids() == []
    assert await store.read_checkpoint("r1") is None
    assert await store.lease("r1") is None
    assert await store.claim("r1", "b", 10) == 2


async def test_concurrent_claims_of_one_expired_room_have_one_winner(store):
    await store.claim("r1", "old", TTL_S)

    async def expired():
        return await store.lease("r1") is None

    await wait_for(expired)
    results: dict[str, int | None] = {}

    async def claim(node: str) -> None:
        results[node] = await store.claim("r1", node, 10)

    async with trio.open_nursery() as nursery:
        for node in "abcdefgh":
            nursery.start_soon(claim, node)
    winners = [n for n, e in results.items() if e is not None]
    assert len(winners) == 1
    assert results[winners[0]] == 2
    assert (await store.lease("r1")).node_id == winners[0]


async def test_nodes_that_stop_heartbeating_disappear(store):
    figures = dict(tick_ms_p50=0.25, tick_ms_p99=1.5, overruns=3, checkpoint_lag=7, pid=4242)
    await store.heartbeat(NodeInfo("a", "ws://a:1", 10, rooms=2, players=5, **figures), 10)
    await store.heartbeat(NodeInfo("b", "ws://b:1", 10, control_url="http://b:2"), TTL_S)
    assert [n.node_id for n in await store.nodes()] == ["a", "b"]
    assert (await store.nodes())[0] == NodeInfo("a", "ws://a:1", 10, rooms=2, players=5, **figures)
    assert (await store.nodes())[1] == NodeInfo("b", "ws://b:1", 10, control_url="http://b:2")

    async def only_a():
        return [n.node_id for n in await store.nodes()] == ["a"]

    await wait_for(only_a)
    await store.remove_node("a")
    assert await store.nodes() == []


async def test_an_unreachable_redis_raises_store_unavailable():
    store = RedisStore("redis://127.0.0.1:1/0")
    with pytest.raises(StoreUnavailable):
        await store.claim("r1", "a", 1)
    await store.aclose()


async def test_current_epoch_is_zero_for_unknown_rooms_and_survives_forget(store):
    assert await store.current_epoch("r1") == 0
    await store.claim("r1", "a", 10)
    assert await store.current_epoch("r1") == 1
    await store.forget("r1", 1)
    assert await store.current_epoch("r1") == 1


async def test_unowned_rooms_are_those_with_state_and_no_live_lease(store):
    await store.claim("live", "a", 10)
    await store.claim("expiring", "a", TTL_S)
    await store.claim("released", "a", 10)
    await store.release("released", 1)
    assert await store.has_room("released") and not await store.has_room("nope")

    async def expired():
        return await store.unowned_rooms() == ["expiring", "released"]

    await wait_for(expired)


async def test_a_new_owner_can_log_after_its_checkpoint_even_past_old_entries(store):
    # The old owner's log has a hole (13 missing); the new owner restored to
    # 12, checkpoints there, and logs 13 on: its entries must be accepted.
    await store.claim("r1", "a", 10)
    await store.write_checkpoint("r1", 1, 10, b"c10")
    await store.append_log("r1", 1, [(11, b"a11"), (12, b"a12"), (14, b"a14")])
    await store.release("r1", 1)
    assert await store.claim("r1", "b", 10) == 2
    assert await store.write_checkpoint("r1", 2, 12, b"c12")
    assert await store.append_log("r1", 2, [(13, b"b13"), (14, b"b14")])
    ckpt = await store.read_checkpoint("r1")
    assert (ckpt.tick, ckpt.log) == (12, [(13, b"b13"), (14, b"b14")])


async def test_write_many_writes_each_room_fenced_on_its_own(store):
    from tickroom.server.cluster.store.base import FENCED, WRITTEN, Write

    await store.claim("r1", "a", 10)
    await store.claim("r2", "a", 10)
    await store.release("r2", 1)
    await store.claim("r2", "b", 10)  # r2 now belongs to b, epoch 2
    results = await store.write_many(
        [
            Write("r1", 1, (10, b"c10"), [(11, b"i11")]),
            Write("r2", 1, (10, b"stale"), [(11, b"stale")]),
            Write("r1", 1, None, [(12, b"i12")]),
        ]
    )
    assert results == [WRITTEN, FENCED, WRITTEN]
    assert (await store.read_checkpoint("r1")).log == [(11, b"i11"), (12, b"i12")]
    assert await store.read_checkpoint("r2") is None


async def test_a_renewal_under_an_epoch_another_node_holds_is_refused(store):
    # After a promotion lost a claim's INCR, the next claim hands out the
    # same epoch number again: its first holder must not keep the room.
    epoch = await store.claim("r1", "b", 10)
    assert await store.renew("r1", "a", epoch, 10) is False
    assert await store.renew("r1", "b", epoch, 10) is True
    assert (await store.lease("r1")).node_id == "b"


async def test_renew_many_renews_each_lease_on_its_own(store):
    assert await store.claim("r1", "a", TTL_S) == 1
    assert await store.claim("r2", "a", TTL_S) == 1
    assert await store.claim("r3", "b", 10) == 1
    # r1 and r2 renewed for long; r3 is b's (refused); r4 was never claimed.
    assert await store.renew_many("a", [("r1", 1), ("r2", 1), ("r3", 1), ("r4", 1)], 10) == [True, True, False, False]
    await trio.sleep(TTL_S + 0.1)  # past the claims' TTL: only the renewal keeps them
    assert (await store.lease("r1")).node_id == "a" and (await store.lease("r2")).node_id == "a"
    assert (await store.lease("r3")).node_id == "b"
    assert await store.renew_many("a", [], 10) == []


async def test_the_scan_tells_when_the_soonest_lease_expires(store):
    assert await store.claim("short", "a", 0.5) == 1
    assert await store.claim("long", "b", 10) == 1
    assert await store.unowned_rooms() == []
    soonest = await store.next_expiry_s()
    assert soonest is not None and 0 < soonest <= 0.5
    await store.release("short", 1)
    await store.release("long", 1)
    assert await store.unowned_rooms() == ["long", "short"]
    assert await store.next_expiry_s() is None


async def test_writes_under_an_epoch_another_node_holds_are_refused(store):
    # The same lost claim: node a, the first holder of this epoch number,
    # must not land a checkpoint, a log entry, a release or a forget while
    # b's lease is live; b writes, and a write fenced by the epoch alone
    # (node_id None: tools) still works as before.
    epoch = await store.claim("r1", "b", 10)
    assert await store.write_checkpoint("r1", epoch, 5, b"from-a", node_id="a") is False
    assert await store.append_log("r1", epoch, [(6, b"a6")], node_id="a") is False
    results = await store.write_many([Write("r1", epoch, (7, b"from-a"), [(8, b"a8")], node_id="a")])
    assert results == [FENCED]
    assert await store.release("r1", epoch, node_id="a") is False
    assert await store.forget("r1", epoch, node_id="a") is False
    assert await store.read_checkpoint("r1") is None
    assert (await store.lease("r1")).node_id == "b"

    assert await store.write_checkpoint("r1", epoch, 10, b"from-b", node_id="b") is True
    assert await store.write_many([Write("r1", epoch, None, [(11, b"b11")], node_id="b")]) == [WRITTEN]
    ckpt = await store.read_checkpoint("r1")
    assert (ckpt.data, ckpt.log) == (b"from-b", [(11, b"b11")])
    assert await store.release("r1", epoch, node_id="b") is True
    # No live lease: the epoch's holder may write its last checkpoint (a hand-over).
    assert await store.write_checkpoint("r1", epoch, 12, b"last", node_id="a") is True
