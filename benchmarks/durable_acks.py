"""What --durable-acks costs: input-to-acknowledgement time and server CPU.

Starts a real redis-server and, per mode (off, on), a real server process
on 127.0.0.1 (the counter game, tests/games/counter.py); ROOMS rooms of
PLAYERS clients send one input per tick for DURATION_S seconds. Reported per
mode: the time from sending input N to the first snapshot whose ``seq``
acknowledges it (p50/p99), and the server's CPU seconds per second (from
/proc, user + system). Bounded: a fixed count of clients and a fixed time.

    .venv/bin/python benchmarks/durable_acks.py [--rooms 4] [--players 4] [--duration 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.harness import running_server  # noqa: E402
from tests.redis_server import redis_server_process  # noqa: E402
from tickroom.client import connect  # noqa: E402
from tickroom.percentiles import percentiles  # noqa: E402

RATE = 20


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def player(
    url: str, room: str, name: str, duration_s: float, samples: list[float], created: trio.Event, first: bool
) -> None:
    if not first:
        await created.wait()  # the room's first player creates it; the others join it
    async with connect(url, room=room, name=name) as client:
        created.set()
        sent: dict[int, float] = {}
        n = 0
        end = trio.current_time() + duration_s
        while trio.current_time() < end:
            n += 1
            seq = await client.send_input(mx=0.0, my=0.0, n=n)
            sent[seq] = time.perf_counter()
            with trio.move_on_after(1.0):
                await client.next_world()
            acked = client.session.last_processed_seq
            now = time.perf_counter()
            for s in [s for s in sent if s <= acked]:
                samples.append(now - sent.pop(s))


async def run_mode(redis_url: str, durable: bool, args: argparse.Namespace) -> tuple[list[float], float]:
    flags = ["--redis-url", redis_url, "--tick-rate", str(RATE), "--game", "tests.games.counter:Counter"]
    if durable:
        flags.append("--durable-acks")
    with running_server(*flags) as server:
        samples: list[float] = []
        cpu0, wall0 = cpu_seconds(server.proc.pid), time.perf_counter()
        async with trio.open_nursery() as nursery:
            for r in range(args.rooms):
                created = trio.Event()
                for p in range(args.players):
                    room = f"bench-{int(durable)}-{r}"
                    nursery.start_soon(player, server.url, room, f"p{p}", args.duration, samples, created, p == 0)
        cpu = (cpu_seconds(server.proc.pid) - cpu0) / (time.perf_counter() - wall0)
    return samples, cpu


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--players", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    with redis_server_process() as redis_url:
        print(f"{args.rooms} rooms x {args.players} players, {RATE} Hz, {args.duration:g} s per mode, loopback Redis")
        for durable in (False, True):
            samples, cpu = await run_mode(redis_url, durable, args)
            p50, p99 = (v * 1e3 for v in percentiles(samples, (50, 99)))
            print(
                f"durable acks {'on ' if durable else 'off'}: input->ack p50 {p50:.1f} ms, p99 {p99:.1f} ms "
                f"({len(samples)} inputs); server CPU {cpu * 100:.1f}% of a core"
            )


if __name__ == "__main__":
    trio.run(main)
