"""Attacks against one real ``tickroom serve`` process on 127.0.0.1, with a
well-behaved canary player in another room (docs/benchmarks.md, "Attacks").

    python benchmarks/attacks.py                 # this checkout
    python benchmarks/attacks.py --src /tmp/main # another checkout (before/after)

Each attack is bounded in time (SECONDS) and count; figures printed:
- ping flood after the join (3 clients): the canary's snapshots/s, the
  flooders' close codes, the server's RSS;
- pong flood after the join (3 clients): the same;
- empty-continuation flood (1 client): close code, RSS;
- wss:// client sending 2 inputs per tick: RTT (protocol ping) over time;
- with ``--room-spam`` (alone): one address joining a new room name per
  connection, SPAM_ATTEMPTS at most in SPAM_SECONDS: rooms created, the
  refusals' close codes, the canary's snapshots/s.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.certs import make_self_signed  # noqa: E402
from tests.rawws import (  # noqa: E402
    OP_BINARY,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    RawWebSocket,
    frame,
    rtts_at_two_messages_per_tick,
)

SECONDS = 5.0  # each flood
SPAM_ATTEMPTS = 400  # room spam: joins naming a new room, at most ...
SPAM_SECONDS = 15.0  # ... in this long
RTT_SECONDS = 10.0  # the wss:// run
TICK_RATE = 20
_LISTENING = re.compile(r"listening on (wss?)://[^:]+:(\d+)")


def start(src: Path, *extra: str) -> tuple[subprocess.Popen, int, Path]:
    log = Path(tempfile.mkstemp(prefix="attacks-", suffix=".log")[1])
    proc = subprocess.Popen(  # noqa: S603 (our own server, our arguments)
        [sys.executable, "-m", "tickroom.server", "serve", "--host", "127.0.0.1", "--port", "0", *extra],
        cwd=src,
        env={**os.environ, "PYTHONPATH": str(src)},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = _LISTENING.search(log.read_text())
        if found:
            return proc, int(found.group(2)), log
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(log.read_text())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def canary(port: int, stop: trio.Event, counts: list[int]) -> None:
    """A well-behaved player: acks every snapshot; counts them."""
    ws = await RawWebSocket.connect("127.0.0.1", port)
    await ws.join("canary-room", "canary")
    counts.append(0)
    while not stop.is_set():
        seen = ws.session.acked_tick
        if not await ws.read_some():
            break
        if ws.session.world is not None and ws.session.world.tick != seen:
            counts[0] += 1
            await ws.send(frame(OP_BINARY, ws.session.ack()))
    await ws.aclose()


async def flooder(port: int, room: str, data: bytes, codes: list[int], until: float) -> None:
    ws = await RawWebSocket.connect("127.0.0.1", port)
    await ws.join(room)
    async with trio.open_nursery() as nursery:

        async def flood() -> None:
            while trio.current_time() < until and ws.close_code is None:
                await ws.send(data)
                await trio.sleep(0)

        nursery.start_soon(flood)
        with trio.move_on_after(max(0.1, until - trio.current_time()) + 3):
            await ws.read_until_closed(until - trio.current_time() + 10)
        nursery.cancel_scope.cancel()
    codes.append(ws.close_code or 0)  # 0: never closed
    await ws.aclose()


async def flood_run(port: int, pid: int, name: str, data: bytes, clients: int, first: bytes = b"") -> None:
    stop = trio.Event()
    counts: list[int] = []
    codes: list[int] = []
    rss0 = rss_mb(pid)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(canary, port, stop, counts)
        while not counts:
            await trio.sleep(0.01)
        await trio.sleep(1.0)  # the canary settles
        base = counts[0]
        t0 = trio.current_time()
        until = t0 + SECONDS
        for i in range(clients):
            nursery.start_soon(flooder, port, f"attack-{name.split()[0]}-{i}", first + data, codes, until)
        await trio.sleep_until(until)
        rate = (counts[0] - base) / (trio.current_time() - t0)
        peak = rss_mb(pid)
        stop.set()
    print(
        f"{name}: canary {rate:.1f} snapshots/s; close codes {sorted(codes)}; "
        f"RSS {rss0:.0f} -> {peak:.0f} MB (after the attack: {rss_mb(pid):.0f} MB)"
    )


async def wss_rtt(port: int, context) -> None:
    ws = await RawWebSocket.connect("127.0.0.1", port, tls=context)
    await ws.join("wss-room", "two-per-tick")
    rtts = await rtts_at_two_messages_per_tick(ws, RTT_SECONDS, TICK_RATE, ping_every=10)
    marks = [rtt for rtt in rtts if rtt[0] < 1.5][-1:] + [rtt for rtt in rtts if rtt[0] > RTT_SECONDS - 1.5][-1:]
    text = ", ".join(f"{rtt * 1000:.0f} ms at {at:.1f} s" for at, rtt in marks)
    print(f"wss:// 2 messages per tick for {RTT_SECONDS:g} s: RTT {text}; close {ws.close_code}")
    await ws.aclose()


async def room_spam_run(port: int) -> None:
    stop = trio.Event()
    counts: list[int] = []
    created, refused = 0, Counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(canary, port, stop, counts)
        while not counts:
            await trio.sleep(0.01)
        base, t0 = counts[0], trio.current_time()
        attempts = 0
        while attempts < SPAM_ATTEMPTS and trio.current_time() - t0 < SPAM_SECONDS:
            ws = await RawWebSocket.connect("127.0.0.1", port)
            try:
                await ws.join(f"spam-{attempts}", "spammer")
                created += 1
                await ws.send(frame(OP_BINARY, ws.session.leave()))
            except ConnectionError:
                refused[ws.close_code] += 1
            finally:
                await ws.aclose()
            attempts += 1
        elapsed = trio.current_time() - t0
        rate = (counts[0] - base) / elapsed
        stop.set()
    print(
        f"room spam from one address: {attempts} joins naming new rooms in {elapsed:.1f} s; "
        f"{created} rooms created; refused {dict(refused)}; canary {rate:.1f} snapshots/s"
    )


async def main(src: Path) -> None:
    proc, port, _ = start(src)
    try:
        await flood_run(port, proc.pid, "ping flood x3", frame(OP_PING, b"p") * 200, 3)
        await flood_run(port, proc.pid, "pong flood x3", frame(OP_PONG, b"q") * 200, 3)
        await flood_run(
            port, proc.pid, "empty continuations x1", frame(OP_CONTINUATION, fin=False) * 500, 1,
            first=frame(OP_BINARY, b"\x81", fin=False),
        )  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(10)
    cert = make_self_signed(Path(tempfile.mkdtemp()))
    proc, port, _ = start(src, "--tls-cert", str(cert.cert_file), "--tls-key", str(cert.key_file))
    try:
        await wss_rtt(port, cert.client_context())
    finally:
        proc.terminate()
        proc.wait(10)


async def spam_main(src: Path) -> None:
    proc, port, _ = start(src)
    try:
        await room_spam_run(port)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, default=REPO, help="the checkout whose server to attack")
    parser.add_argument("--room-spam", action="store_true", help="run the room spam alone (its own server)")
    args = parser.parse_args()
    if args.room_spam:
        trio.run(spam_main, args.src.resolve())
    else:
        trio.run(main, args.src.resolve())
