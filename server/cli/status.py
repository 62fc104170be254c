"""``tickroom status``: a cluster at a glance, from its Redis registry.

Per node (its heartbeat): rooms, players, capacity, tick p50/p99, overruns,
checkpoint lag, draining, pid. Per room (its lease and latest durable
state): owner, epoch, last durable tick; rooms without a live lease are
waiting for failover. ``--json`` prints one object for scripts; ``--watch
[SECONDS]`` refreshes until Ctrl-C (``--count`` bounds it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from typing import Any

import trio

from tickroom.server.cluster.redaction import redacted
from tickroom.server.cluster.store.base import StoreUnavailable
from tickroom.server.cluster.store.redis import RedisStore

DEFAULT_WATCH_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("TICKROOM_REDIS_URL"),
        help="the cluster's Redis (as given to tickroom serve) [env TICKROOM_REDIS_URL]",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    parser.add_argument(
        "--watch", type=float, nargs="?", const=DEFAULT_WATCH_S, default=None, metavar="SECONDS",
        help=f"refresh every SECONDS (default {DEFAULT_WATCH_S:g}) until Ctrl-C",
    )  # fmt: skip
    parser.add_argument("--count", type=int, default=0, help="with --watch: stop after this many refreshes (0: never)")


async def collect(store: Any) -> dict[str, Any]:
    """The cluster's state as one JSON-ready dict."""
    nodes = sorted(await store.nodes(), key=lambda n: n.node_id)
    rooms = []
    for room_id in sorted(await store.room_ids()):
        lease = await store.lease(room_id)
        ckpt = await store.read_checkpoint(room_id)
        tick = None
        if ckpt is not None:
            tick = ckpt.log[-1][0] if ckpt.log else ckpt.tick
        rooms.append(
            {
                "room_id": room_id,
                "node_id": lease.node_id if lease else None,
                "epoch": lease.epoch if lease else await store.current_epoch(room_id),
                "durable_tick": tick,
            }
        )
    by_node: dict[str, list[str]] = {}
    for room in rooms:
        if room["node_id"] is not None:
            by_node.setdefault(room["node_id"], []).append(room["room_id"])
    return {
        "nodes": [{**asdict(n), "room_ids": by_node.get(n.node_id, [])} for n in nodes],
        "rooms": rooms,
        "totals": {
            "nodes": len(nodes),
            "rooms": sum(n.rooms for n in nodes),
            "players": sum(n.players for n in nodes),
            "unowned_rooms": sum(1 for r in rooms if r["node_id"] is None),
        },
    }


def render(state: dict[str, Any]) -> str:
    """A small table for people."""
    header = ("NODE", "ROOMS", "PLAYERS", "CAP", "P50 ms", "P99 ms", "OVERRUNS", "CKPT LAG", "STATE", "PID", "URL")
    rows = [header]
    for n in state["nodes"]:
        rows.append(
            (
                n["node_id"], str(n["rooms"]), str(n["players"]), str(n["capacity"]),
                f"{n['tick_ms_p50']:.2f}", f"{n['tick_ms_p99']:.2f}", str(n["overruns"]), str(n["checkpoint_lag"]),
                "draining" if n["draining"] else "serving", str(n["pid"] or "-"), n["url"],
            )
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    t = state["totals"]
    lines.append(
        f"{t['nodes']} nodes, {t['rooms']} rooms, {t['players']} players, {t['unowned_rooms']} rooms awaiting failover"
    )
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> int:
    try:
        store = RedisStore(args.redis_url)
    except ValueError as exc:  # redis-py's own messages name no secret; we print the URL redacted
        print(f"tickroom: error: bad --redis-url {redacted(args.redis_url)}: {exc}", file=sys.stderr)
        return 2
    shown = 0
    try:
        while True:
            try:
                state = await collect(store)
            except StoreUnavailable as exc:
                print(f"tickroom: error: cannot reach {redacted(args.redis_url)}: {exc}", file=sys.stderr)
                if args.watch is None:
                    return 1
            else:
                if args.json:
                    print(json.dumps(state), flush=True)
                else:
                    if args.watch is not None and sys.stdout.isatty():
                        print("\x1b[H\x1b[2J", end="")
                    print(render(state), flush=True)
            shown += 1
            if args.watch is None or (args.count and shown >= args.count):
                return 0
            await trio.sleep(args.watch)
    finally:
        await store.aclose()


def run(args: argparse.Namespace) -> int:
    if not args.redis_url:
        print("tickroom: error: status needs --redis-url (or TICKROOM_REDIS_URL)", file=sys.stderr)
        return 2
    try:
        return trio.run(_main, args)
    except KeyboardInterrupt:
        return 0
