"""``python -m loadtest``: a small bot load test (the full QA tool, with
worker processes, scenarios and plots, builds on loadtest.bots).

    python -m loadtest --url ws://127.0.0.1:7350 --rooms 10 --bots-per-room 8 --duration 30
"""

from __future__ import annotations

import argparse
import json
import sys

import trio

from .bots import BotStats, run_bot


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def main_async(args: argparse.Namespace) -> dict:
    bots = [BotStats() for _ in range(args.rooms * args.bots_per_room)]
    async with trio.open_nursery() as nursery:
        for i, stats in enumerate(bots):
            room = f"load-{args.seed}-{i // args.bots_per_room}"
            nursery.start_soon(
                lambda s=stats, r=room, i=i: run_bot(
                    args.url, r, f"bot{i}", input_rate=args.input_rate, duration=args.duration, seed=args.seed * 100_003 + i, stats=s
                )
            )
            await trio.sleep(args.ramp_up / len(bots))
    rtt = [x for b in bots for x in b.rtt_s]
    gaps = [x for b in bots for x in b.snapshot_gaps_s]
    errors: dict[str, int] = {}
    for b in bots:
        for kind, n in b.errors.items():
            errors[kind] = errors.get(kind, 0) + n
    ms = lambda v: round(v * 1e3, 2)  # noqa: E731
    return {
        "bots": len(bots),
        "connected": sum(b.connected for b in bots),
        "errors": errors,
        "desyncs": sum(b.desyncs for b in bots),
        "inputs": sum(b.inputs for b in bots),
        "snapshots": sum(b.snapshots for b in bots),
        "rtt_ms": {q: ms(percentile(rtt, p)) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))} | {"max": ms(max(rtt, default=0))},
        "snapshot_interval_ms": {"p50": ms(percentile(gaps, 50)), "p99": ms(percentile(gaps, 99)), "max": ms(max(gaps, default=0))},
        "bytes_in_per_bot_s": round(sum(b.bytes_in for b in bots) / len(bots) / args.duration, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:7350")
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--bots-per-room", type=int, default=8)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds each bot plays")
    parser.add_argument("--ramp-up", type=float, default=2.0, help="seconds over which bots join")
    parser.add_argument("--input-rate", type=float, default=20.0, help="inputs per second per bot")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report", help="write the JSON report here")
    args = parser.parse_args(argv)
    report = trio.run(main_async, args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text + "\n")
    return 0 if report["connected"] == report["bots"] and not report["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
