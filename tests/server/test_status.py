"""``tickroom status`` over the in-memory store: what it collects and shows."""

from __future__ import annotations

import json

from tickroom.server.cli.status import collect, render
from tickroom.server.cluster.store.base import NodeInfo
from tickroom.server.cluster.store.memory import MemoryStore


async def test_status_reports_nodes_rooms_and_rooms_awaiting_failover():
    store = MemoryStore()
    await store.heartbeat(
        NodeInfo(
            "b",
            "ws://h:2",
            10,
            rooms=1,
            players=3,
            tick_ms_p50=0.5,
            tick_ms_p99=2.0,
            overruns=1,
            checkpoint_lag=4,
            pid=12,
        ),
        10,
    )
    await store.heartbeat(NodeInfo("a", "ws://h:1", 10, draining=True), 10)
    epoch = await store.claim("r1", "b", 10)
    assert await store.write_checkpoint("r1", epoch, 40, b"state")
    assert await store.append_log("r1", epoch, [(41, b"x"), (42, b"y")])
    orphan = await store.claim("r2", "gone", 10)
    assert await store.write_checkpoint("r2", orphan, 7, b"state")
    assert await store.release("r2", orphan)

    state = await collect(store)
    json.dumps(state)  # ready for --json
    assert [n["node_id"] for n in state["nodes"]] == ["a", "b"]
    b = state["nodes"][1]
    assert (b["room_ids"], b["tick_ms_p99"], b["overruns"], b["checkpoint_lag"], b["pid"]) == (["r1"], 2.0, 1, 4, 12)
    assert state["rooms"] == [
        {"room_id": "r1", "node_id": "b", "epoch": epoch, "durable_tick": 42},
        {"room_id": "r2", "node_id": None, "epoch": orphan, "durable_tick": 7},
    ]
    assert state["totals"] == {"nodes": 2, "rooms": 1, "players": 3, "unowned_rooms": 1}

    table = render(state).splitlines()
    assert table[0].split()[:3] == ["NODE", "ROOMS", "PLAYERS"]
    assert table[1].split()[0] == "a" and "draining" in table[1]
    assert table[2].split()[:3] == ["b", "1", "3"] and "serving" in table[2]
    assert table[-1] == "2 nodes, 1 rooms, 3 players, 1 rooms awaiting failover"
