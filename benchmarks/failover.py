"""Failover time and ticks lost when a node hosting many rooms dies, on a
real Redis.

Two in-process nodes (a RoomRegistry and the real tickroom.server.cluster.failover.Failover
each, with its own tickroom.server.cluster.store.redis.RedisStore), in real time:

- node A hosts ``--rooms`` arena rooms with ``--players`` players each; the
  players are in-memory links (benchmarks/room_tick.py's BotLink: one input
  per tick, acking every snapshot), so the game really runs and A writes
  checkpoints and the input log to Redis; node B runs alongside, idle;
- after ``--warmup`` seconds A "crashes": its store is cut off (every call
  raises StoreUnavailable, as in tests/server/test_failover.py) and its tasks
  are cancelled. Nothing is drained, released or forgotten: its leases stay
  in Redis until they expire. The moment of the cut is "death"; each room's
  last tick on A is read once A's tasks have ended;
- B's recovery watcher claims, restores (checkpoint + replayed log) and
  adopts the rooms. Per room: death -> lease expiry (from the lease's PTTL
  read right after A ended), death -> adoption on B, death -> first tick on
  B (polled every 5 ms), lease expiry -> first tick on B, and ticks lost = last tick on A - the tick B
  resumes from. Then B closes the rooms (which forgets them in Redis).
  B restores up to RESTORE_CONCURRENCY rooms at once; its own figures
  (tickroom_failover_restore_seconds: mean restore time per room, restore
  failures) are printed too.

Use a scratch Redis database: the script refuses to start if it already
holds tickroom rooms.

    redis-server --port 6399 --save "" --appendonly no --daemonize yes
    python benchmarks/failover.py --rooms 100 --players 8 --redis-url redis://127.0.0.1:6399/0
"""

from __future__ import annotations

import argparse
import logging
import secrets
import statistics
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.room_tick import BotLink  # noqa: E402
from tests.fakes import CuttableStore  # noqa: E402
from tickroom.percentiles import percentiles  # noqa: E402
from tickroom.protocol import messages as m  # noqa: E402
from tickroom.server.cluster.failover import RESTORE_CONCURRENCY, Failover  # noqa: E402
from tickroom.server.cluster.leases import FailoverConfig, RoomLeases  # noqa: E402
from tickroom.server.cluster.store.redis import RedisStore, _key  # noqa: E402
from tickroom.server.rooms.registry import RegistryConfig, RoomRegistry  # noqa: E402
from tickroom.server.rooms.room import RoomConfig  # noqa: E402

RATE = 20
POLL_S = 0.005
RECOVER_TIMEOUT_S = 60.0  # after the lease TTL; then the run reports what it has


class Node:
    def __init__(self, node_id: str, url: str, ttl: float, interval: int, players: int) -> None:
        self.redis = RedisStore(url)
        self.store = CuttableStore(self.redis, why="cut off (benchmark: node crashed)")
        room = RoomConfig(tick_rate=RATE, max_players=max(players, 8), rejoin_grace_s=120, idle_close_s=120)
        leases = RoomLeases(FailoverConfig(node_id, lease_ttl_s=ttl, checkpoint_interval=interval), self.store)
        self.registry = RoomRegistry(RegistryConfig(room=room, max_rooms=10_000), hosting=leases)
        self.failover = Failover(leases, self.registry, public_url=f"ws://{node_id}")
        self.scope = trio.CancelScope()

    async def _run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with self.scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.registry.run)
                await nursery.start(self.failover.run)
                task_status.started()
                await trio.sleep_forever()


async def one_run(args: argparse.Namespace, run: int) -> dict:
    tag = secrets.token_hex(3)
    ids = [f"fb-{tag}-{i:03d}" for i in range(args.rooms)]
    probe = RedisStore(args.redis_url)
    client = probe._client  # the sync client, for PTTL reads in a thread
    if await probe.room_ids():
        raise SystemExit(f"{args.redis_url} already holds tickroom rooms; use a scratch database (or FLUSHDB it)")

    a = Node(f"bench-a-{tag}", args.redis_url, args.lease_ttl, args.interval, args.players)
    b = Node(f"bench-b-{tag}", args.redis_url, args.lease_ttl, args.interval, args.players)
    adopted: dict[str, tuple[float, int]] = {}  # room -> (wall time, tick it resumes from)
    first_tick: dict[str, float] = {}
    real_adopt = b.registry.adopt

    def adopt(room) -> None:
        real_adopt(room)
        adopted[room.room_id] = (time.monotonic(), room.game.tick)

    b.registry.adopt = adopt  # type: ignore[method-assign]

    async with trio.open_nursery() as nursery:
        await nursery.start(a._run)
        await nursery.start(b._run)

        async def fill(rid: str) -> None:
            room = a.registry.create(rid)
            for p in range(args.players):  # a join waits for a tick boundary: rooms fill concurrently
                link = BotLink(room, seed=p)
                link.accepted = await a.registry.join(
                    m.Join(version=m.PROTOCOL_VERSION, name=f"bot{p}", room=rid), link
                )

        with trio.fail_after(60):
            async with trio.open_nursery() as fillers:
                for rid in ids:
                    fillers.start_soon(fill, rid)
            while len(a.failover.keepers) < args.rooms or any(k.written_tick < 0 for k in a.failover.keepers.values()):
                await trio.sleep(0.05)
        tick0 = {rid: a.registry.get(rid).game.tick for rid in ids}
        await trio.sleep(args.warmup)
        # Under CPU starvation A can miss a renewal on a live node: B then takes
        # the room before the crash (A's copy is fenced off). Counted, excluded.
        early = {
            rid for rid in ids
            if a.registry.get(rid) is None or rid not in a.failover.keepers or a.failover.keepers[rid].lost or rid in adopted
        }  # fmt: skip
        rooms_a = {rid: a.registry.get(rid) for rid in ids if rid not in early}
        rate_a = statistics.median((r.game.tick - tick0[rid]) / args.warmup for rid, r in rooms_a.items())

        # -- the crash ------------------------------------------------------------
        death = time.monotonic()
        a.store.cut = True
        a.scope.cancel()
        while any(not r.closed for r in rooms_a.values()):
            await trio.sleep(0.001)
        a_ended = time.monotonic()
        early |= {rid for rid, (t, _) in adopted.items() if t < death}
        ids_all, ids = ids, [rid for rid in ids if rid not in early]
        last_a = {rid: rooms_a[rid].game.tick for rid in ids}

        def pttls() -> list[int]:
            pipe = client.pipeline(transaction=False)
            for rid in ids:
                pipe.pttl(_key(rid, "lease"))
            return pipe.execute()

        t0 = time.monotonic()
        ttl_ms = await trio.to_thread.run_sync(pttls)
        t1 = time.monotonic()
        expiry = {
            rid: (t0 + t1) / 2 + ms / 1000 - death if ms > 0 else float("nan")
            for rid, ms in zip(ids, ttl_ms, strict=True)
        }

        # -- B recovers ---------------------------------------------------------
        with trio.move_on_after(args.lease_ttl + RECOVER_TIMEOUT_S):
            while len(first_tick) < len(ids):
                now = time.monotonic()
                for rid, (_, tick) in adopted.items():
                    if rid not in first_tick:
                        room = b.registry.get(rid)
                        if room is not None and room.game.tick > tick:
                            first_tick[rid] = now - death
                await trio.sleep(POLL_S)
        for rid in ids_all:
            b.registry.close(rid)
        with trio.move_on_after(10):
            while b.registry.rooms():
                await trio.sleep(0.05)
        await b.failover.leave_cluster()
        b.scope.cancel()
    await a.redis.aclose()
    await b.redis.aclose()
    await probe.aclose()

    got = [rid for rid in ids if rid in first_tick]
    restores = b.failover.stats.statistics()
    return {
        "restore_mean_ms": restores.restore_seconds.sum / max(restores.restore_seconds.count, 1) * 1000,
        "restore_failures": restores.restore_failures,
        "run": run,
        "rooms": len(ids),
        "early": len(early),
        "rate_a": rate_a,
        "recovered": len(got),
        "a_end_ms": (a_ended - death) * 1000,
        "expiry": [expiry[r] for r in ids if expiry[r] == expiry[r]],
        "adopt": [adopted[r][0] - death for r in got],
        "first": [first_tick[r] for r in got],
        "lost": [last_a[r] - adopted[r][1] for r in got],
        "expiry_to_first": [first_tick[r] - expiry[r] for r in got if expiry[r] == expiry[r]],
        "batch": max(first_tick[r] for r in got) if got and len(got) == len(ids) else float("nan"),
        "ticks_a": statistics.median(last_a.values()),
    }


def show(res: dict) -> None:
    print(
        f"\nrun {res['run']}: {res['recovered']}/{res['rooms']} rooms recovered; A's tasks ended "
        f"{res['a_end_ms']:.0f} ms after the crash; median last tick on A {res['ticks_a']:.0f}, "
        f"A ticked at {res['rate_a']:.1f}/s (of {RATE})"
    )
    if res["early"]:
        print(f"  {res['early']} room(s) moved to B BEFORE the crash (a lease lapsed on live A): excluded below")
    print(f"{'per room':<38}{'min':>8}{'median':>8}{'p99':>8}{'max':>8}")
    rows = [
        ("crash -> lease expiry (s)", res["expiry"], "{:.2f}"),
        ("crash -> adopted on B (s)", res["adopt"], "{:.2f}"),
        ("crash -> first tick on B (s)", res["first"], "{:.2f}"),
        ("lease expiry -> first tick on B (s)", res["expiry_to_first"], "{:.2f}"),
        ("ticks lost", res["lost"], "{:.0f}"),
    ]
    for name, vals, fmt in rows:
        if not vals:
            print(f"{name:<38}{'-':>8}")
            continue
        cells = [min(vals), statistics.median(vals), percentiles(vals, (99,))[0], max(vals)]
        print(f"{name:<38}" + "".join(f"{fmt.format(c):>8}" for c in cells))
    print(f"whole batch: crash -> all {res['rooms']} rooms ticking on B: {res['batch']:.2f} s")
    print(
        f"B's restores: {res['restore_mean_ms']:.0f} ms per room on average (claim to adopted, "
        f"{RESTORE_CONCURRENCY} at once), {res['restore_failures']} failed"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--players", type=int, default=8)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--lease-ttl", type=float, default=3.0)
    parser.add_argument(
        "--interval", type=int, default=RATE, help="ticks between checkpoints (the server's default: tick rate)"
    )
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds A runs before it crashes")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="log the nodes' warnings (lease and restore trouble)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.ERROR)
    print(
        f"{args.rooms} rooms x {args.players} players, {RATE} Hz, lease TTL {args.lease_ttl:g} s, "
        f"checkpoint every {args.interval} ticks, crash after {args.warmup:g} s"
    )
    for run in range(1, args.runs + 1):
        show(trio.run(one_run, args, run))


if __name__ == "__main__":
    main()
