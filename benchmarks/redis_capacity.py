"""What one room costs Redis, per second of play: commands, bytes and Redis
CPU, measured on a real redis-server with ``INFO commandstats``, ``INFO
stats`` and ``INFO cpu`` read before and after a steady window.

One in-process node (a RoomRegistry and the real Failover with a
RedisStore) runs ``--rooms`` arena rooms of ``--players`` in-memory bots
(benchmarks/room_tick.py's BotLink: one input per tick, every snapshot
acked) at 20 Hz, with the server's defaults (checkpoint every 20 ticks,
lease TTL 3 s). After ``--warmup`` seconds it reads the counters, runs
``--seconds`` more, reads them again and divides by rooms x seconds. The
checkpoint size per player comes from the stored checkpoints.

Use a scratch Redis (it refuses one that already holds tickroom rooms):

    redis-server --port 6399 --save "" --appendonly no --daemonize yes
    python benchmarks/redis_capacity.py --rooms 20 --players 8 --redis-url redis://127.0.0.1:6399/0
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from pathlib import Path
from typing import Any

import redis
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.failover import Node  # noqa: E402
from benchmarks.room_tick import BotLink  # noqa: E402
from tickroom.protocol import messages as m  # noqa: E402
from tickroom.server.cluster.store.redis import RedisStore  # noqa: E402


def counters(client: redis.Redis) -> dict[str, Any]:
    stats, cpu = client.info("stats"), client.info("cpu")
    commands = client.info("commandstats")
    return {
        "calls": {name.removeprefix("cmdstat_"): v["calls"] for name, v in commands.items()},
        "in": stats["total_net_input_bytes"],
        "out": stats["total_net_output_bytes"],
        "cpu": cpu["used_cpu_user"] + cpu["used_cpu_sys"],
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    client = redis.Redis.from_url(args.redis_url)
    if await RedisStore(args.redis_url).room_ids():
        raise SystemExit(f"{args.redis_url} already holds tickroom rooms; use a scratch database")
    tag = secrets.token_hex(3)
    node = Node(f"cap-{tag}", args.redis_url, 3.0, 20, args.players)
    ids = [f"cap-{tag}-{i:03d}" for i in range(args.rooms)]
    async with trio.open_nursery() as nursery:
        await nursery.start(node._run)
        for rid in ids:
            room = node.registry.create(rid)
            for p in range(args.players):
                link = BotLink(room, seed=p)
                link.accepted = await node.registry.join(
                    m.Join(version=m.PROTOCOL_VERSION, name=f"b{p}", room=rid), link
                )
        await trio.sleep(args.warmup)
        ticks0 = sum(node.registry.get(r).game.tick for r in ids)
        before = await trio.to_thread.run_sync(counters, client)
        t0 = trio.current_time()
        await trio.sleep(args.seconds)
        after = await trio.to_thread.run_sync(counters, client)
        elapsed = trio.current_time() - t0
        ticks = sum(node.registry.get(r).game.tick for r in ids) - ticks0
        sizes = [len(client.hget(f"tickroom:{{{r}}}:ckpt", "data") or b"") for r in ids]
        for rid in ids:
            node.registry.close(rid)
        with trio.move_on_after(10):
            while node.registry.rooms():
                await trio.sleep(0.05)
        await node.failover.leave_cluster()
        node.scope.cancel()
    room_s = args.rooms * elapsed
    calls = {k: after["calls"].get(k, 0) - before["calls"].get(k, 0) for k in after["calls"]}
    return {
        "room_seconds": room_s,
        "tick_rate": ticks / room_s,
        "commands": {k: v / room_s for k, v in sorted(calls.items(), key=lambda kv: -kv[1]) if v},
        "in_bytes": (after["in"] - before["in"]) / room_s,
        "out_bytes": (after["out"] - before["out"]) / room_s,
        "cpu_ms": (after["cpu"] - before["cpu"]) * 1000 / room_s,
        "checkpoint_bytes_per_player": sum(sizes) / len(sizes) / args.players,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--players", type=int, default=8)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    res = trio.run(measure, args)
    print(f"{args.rooms} rooms x {args.players} players, {res['room_seconds']:.0f} room-seconds, "
          f"rooms ticked at {res['tick_rate']:.1f}/s (of 20)")  # fmt: skip
    print("per room-second:")
    for name, rate in res["commands"].items():
        print(f"  {name:<12} {rate:8.2f} commands")
    print(f"  {'total':<12} {sum(res['commands'].values()):8.2f} commands")
    print(f"  bytes into Redis  {res['in_bytes']:10.0f}")
    print(f"  bytes out of Redis {res['out_bytes']:9.0f}")
    print(f"  Redis CPU          {res['cpu_ms']:9.3f} ms")
    print(f"checkpoint: {res['checkpoint_bytes_per_player']:.0f} bytes per player")


if __name__ == "__main__":
    main()
