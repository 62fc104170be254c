"""Cluster-wide idempotency records (tickroom.server.cluster.idempotency) on
the in-memory store: the same rules the Redis store runs end to end in
tests/integration/test_placement.py."""

from __future__ import annotations

import time

import pytest
import trio

from tickroom.server.cluster.idempotency import PENDING_WAIT_S, ClusterKeys
from tickroom.server.cluster.store.base import NodeInfo
from tickroom.server.cluster.store.memory import MemoryStore
from tickroom.server.rooms.placement import Allocation, AllocationRefused, AllocationRequest, NoCapacity

REQUEST = AllocationRequest(max_players=2, labels={"mode": "duel"}, idempotency_key="k1")


def allocation(room_id: str = "r1", *, age_s: float = 60.0) -> Allocation:
    return Allocation(room_id, "node-a", "ws://a", "arena", 2, 20, {"mode": "duel"}, time.time() - age_s, True)


async def test_the_first_request_holds_the_key_and_a_retry_gets_its_room(autojump_clock):
    store = MemoryStore()
    keys = ClusterKeys(store)
    assert await keys.reserve(REQUEST) is None
    await store.claim("r1", "node-a", 10)  # the room runs
    await keys.complete(REQUEST, allocation())
    again = await keys.reserve(REQUEST)
    assert again is not None and again.room_id == "r1" and not again.created
    with pytest.raises(AllocationRefused):
        await keys.reserve(AllocationRequest(max_players=3, idempotency_key="k1"))


async def test_a_concurrent_retry_waits_for_the_first_answer(autojump_clock):
    store = MemoryStore()
    keys = ClusterKeys(store)
    assert await keys.reserve(REQUEST) is None
    answers = []

    async def retry():
        answers.append(await keys.reserve(REQUEST))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(retry)
        await trio.sleep(1)
        await store.claim("r1", "node-a", 10)
        await keys.complete(REQUEST, allocation())
    assert answers[0] is not None and answers[0].room_id == "r1"


async def test_a_retry_gives_up_on_an_allocation_that_never_finishes(autojump_clock):
    keys = ClusterKeys(MemoryStore())
    assert await keys.reserve(REQUEST) is None
    with trio.fail_after(PENDING_WAIT_S + 1), pytest.raises(NoCapacity) as busy:
        await keys.reserve(REQUEST)
    assert busy.value.reason == "busy"


async def test_a_key_whose_room_ended_is_free_again_and_a_moved_room_names_its_owner(autojump_clock):
    store = MemoryStore()
    keys = ClusterKeys(store)
    assert await keys.reserve(REQUEST) is None
    await keys.complete(REQUEST, allocation())  # old, and the store knows no such room: it ended
    assert await keys.reserve(REQUEST) is None  # held anew
    await keys.complete(REQUEST, allocation("r2"))
    await store.claim("r2", "node-b", 10)  # r2 failed over to node-b
    await store.heartbeat(NodeInfo("node-b", "ws://b", 10), 10)
    moved = await keys.reserve(REQUEST)
    assert moved is not None and (moved.room_id, moved.node_id, moved.ws_url) == ("r2", "node-b", "ws://b")


async def test_an_unreadable_record_is_replaced(autojump_clock):
    store = MemoryStore()
    await store.put_key("k1", b"\xff not json", 60)
    assert await ClusterKeys(store).reserve(REQUEST) is None
