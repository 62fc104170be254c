"""Failover on a Redis Sentinel group, end to end: one master, one replica
and three Sentinels (real redis-server processes on loopback), two real
nodes on ``--redis-url redis+sentinel://...``, clients playing.

The master is killed during play; Sentinel promotes the replica. The rooms
keep ticking on their nodes (the clients never reconnect and keep their
entities), both nodes see the master change, checkpoints land on the new
master, and every room is still owned by exactly the node that ran it.
Then a room's owner is killed and the room fails over through the new
master. Every wait polls a condition under a deadline."""

from __future__ import annotations

import re
import urllib.request

import trio

from tests.redis_server import redis_sentinel_group
from tickroom.client import connect
from tickroom.server.cluster.store.redis import RedisStore

from .harness import eventually, running_server

TTL_S = 2.0
CHECKPOINT_TICKS = 10
RATE = 20
PROMOTION_DEADLINE_S = 30.0  # Sentinel's down-after (1 s) + vote + promotion, with CI slack
RECOVERY_DEADLINE_S = TTL_S + 10.0


def node(url: str, node_id: str):
    return running_server(
        "--redis-url", url, "--node-id", node_id, "--lease-ttl", str(TTL_S),
        "--checkpoint-interval", str(CHECKPOINT_TICKS), "--tick-rate", str(RATE),
        "--rejoin-grace", "20", "--idle-close", "60",
    )  # fmt: skip


def counter(control_url: str, name: str) -> float:
    """One unlabelled counter from a node's /metrics."""
    with urllib.request.urlopen(f"{control_url}/metrics", timeout=5) as response:  # noqa: S310 - loopback test URL
        text = response.read().decode()
    found = re.search(rf"^{re.escape(name)}_total (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name} not in /metrics"
    return float(found.group(1))


async def checkpoint_tick(store: RedisStore, room: str) -> int:
    try:
        ckpt = await store.read_checkpoint(room)
    except Exception:  # noqa: BLE001 - the master is down or moving: not written yet
        return -1
    return -1 if ckpt is None else ckpt.tick


async def keep_playing(client, gaps: list[float], stop: trio.Event) -> None:
    """Send an input and read a world every tick until ``stop``; record the
    longest wait for a world (the interruption of play)."""
    while not stop.is_set():
        began = trio.current_time()
        await client.send_input(mx=1.0, my=0.0)  # dropped (returns at once) while the client rejoins
        world = client.world  # None while a rejoin waits for its full snapshot
        await client.next_world(after=world.tick if world is not None else None)
        gaps[0] = max(gaps[0], trio.current_time() - began)


async def test_play_goes_on_through_a_sentinel_promotion_and_a_node_failover():
    with redis_sentinel_group() as group, node(group.url, "sn-a") as a, node(group.url, "sn-b") as b:
        store = RedisStore(group.url)
        try:
            async with (
                connect(a.url, room="sn-room-a", name="ada", reconnect=True, urls=[b.url]) as ada,
                connect(b.url, room="sn-room-b", name="bo", reconnect=True, urls=[a.url]) as bo,
            ):
                players = (ada.player, bo.player)
                gaps = [0.0]
                stop = trio.Event()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(keep_playing, ada, gaps, stop)
                    nursery.start_soon(keep_playing, bo, [0.0], stop)
                    with trio.fail_after(RECOVERY_DEADLINE_S):
                        while await checkpoint_tick(store, "sn-room-a") < CHECKPOINT_TICKS:
                            await trio.sleep(0.05)
                    gaps[0] = 0.0  # from the kill on
                    tick_at_kill = ada.world.tick
                    group.kill(group.master_port)
                    killed_at = trio.current_time()
                    await eventually(
                        lambda: (group.master() or ("", 0))[1] == group.replica_port,
                        timeout=PROMOTION_DEADLINE_S, what="Sentinel to promote the replica",
                    )  # fmt: skip
                    promoted_s = trio.current_time() - killed_at
                    # Both nodes notice the new master and re-anchor their rooms.
                    for n in (a, b):
                        await eventually(
                            lambda n=n: counter(n.control_url, "tickroom_failover_master_changes") >= 1,
                            timeout=PROMOTION_DEADLINE_S, what=f"{n.url} to see the new master",
                        )  # fmt: skip
                    with trio.fail_after(PROMOTION_DEADLINE_S):
                        while (
                            min([await checkpoint_tick(store, r) for r in ("sn-room-a", "sn-room-b")]) <= tick_at_kill
                        ):
                            await trio.sleep(0.05)
                    resumed_s = trio.current_time() - killed_at
                    stop.set()
                print(
                    f"sentinel promotion: master replaced in {promoted_s:.2f} s, checkpoints on the new master "
                    f"{resumed_s:.2f} s after the kill, longest wait for a world {gaps[0] * 1000:.0f} ms"
                )
                # The rooms ticked on through it: nobody reconnected or changed entity.
                assert ada.reconnects == 0 and bo.reconnects == 0
                assert (ada.player, bo.player) == players
                assert ada.world.tick > tick_at_kill + RATE
                assert gaps[0] < 1.0  # play was not interrupted (Redis is off the tick path)
                # Fencing held: each room is owned by the node that ran it, once.
                lease_a, lease_b = await store.lease("sn-room-a"), await store.lease("sn-room-b")
                assert lease_a is not None and lease_a.node_id == "sn-a"
                assert lease_b is not None and lease_b.node_id == "sn-b"
                assert counter(a.control_url, "tickroom_failover_leases_lost") == 0
                assert counter(b.control_url, "tickroom_failover_leases_lost") == 0

                # Then the owner of sn-room-a dies: the room moves to B through the new master.
                before = ada.world
                a.proc.kill()
                await eventually(lambda: ada.url == b.url, timeout=RECOVERY_DEADLINE_S, what="the client to move")
                with trio.fail_after(RECOVERY_DEADLINE_S):
                    after = await ada.next_world(after=before.tick)
                assert ada.player == players[0] and after.entity(ada.player) is not None
                moved = await store.lease("sn-room-a")
                assert moved is not None and moved.node_id == "sn-b" and moved.epoch > lease_a.epoch
                assert counter(b.control_url, "tickroom_failover_rooms_recovered") >= 1
                await ada.send_input(mx=1.0, my=0.0)
                assert (await ada.next_world(after=after.tick)).tick > after.tick
        finally:
            await store.aclose()
