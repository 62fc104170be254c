"""Backpressure: many connections to a real server process, a fraction of
which read slowly or not at all.

Clients are minimal raw WebSocket clients (wsproto only for the upgrade
request; frames parsed by hand) so that one client process can hold 1,000
connections. Kinds:

- good: read everything, ack the newest snapshot every few ticks;
- slow: a small receive buffer, read 2 KiB every half second, ack what they saw;
- mute: a small receive buffer, never read after the join (they learn their
  close code at the end, from what the kernel kept).

Reported: the good clients' snapshot rate, the server's tick p99 and
overruns, latest-wins replacements and the largest reliable backlog (from the
server's load summary, --stats-interval 1), the server's RSS (VmRSS from
/proc, sampled each second), and the close codes of the slow and mute ones.

    python benchmarks/slow_readers.py                            # 1,000 connections, 20 s
    python benchmarks/slow_readers.py --connections 200 --duration 8
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.harness import running_server  # noqa: E402
from tickroom.loadtest.bench import cpu_seconds  # noqa: E402
from tickroom.protocol.client_session import ClientSession  # noqa: E402

SMALL_RCVBUF = 4096  # bytes: slow and mute clients back up quickly
ACK_EVERY = 5  # snapshots between acks of a good client
# The load summary line ("load: rooms=... connections=..."), not the
# governor's "load: over capacity (...)" warnings, which share the prefix.
_SUMMARY = re.compile(r"load: (rooms=.*)$", re.M)


@dataclass
class Result:
    kind: str
    snapshots: int = 0
    snapshots_in_window: int = 0
    close_code: int | None = None
    error: str | None = None


@dataclass
class Report:
    connections: int
    joined: int = 0
    good_snapshots_per_s: float = 0.0
    tick_rate: int = 20
    tick_ms_p99_max: float = 0.0
    overruns: int = 0
    snapshots_replaced: int = 0
    pending_bytes_max: int = 0
    server_cpu_cores: float = 0.0  # server CPU time / wall time over the window
    rss_mib_start: float = 0.0
    rss_mib_max: float = 0.0
    close_codes: dict = field(default_factory=dict)  # kind -> {code: count}

    def summary(self) -> str:
        return json.dumps(self.__dict__, indent=2, default=str)


def masked(payload: bytes) -> bytes:
    # A zero mask key: legal (the server must unmask whatever key it gets)
    # and it spares the load generator the XOR.
    n = len(payload)
    head = bytes((0x82, 0x80 | n)) if n < 126 else struct.pack("!BBH", 0x82, 0x80 | 126, n)
    return head + b"\0\0\0\0" + payload


def parse_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Complete (opcode, payload) server frames at the front of ``buf``
    (removed from it)."""
    out, pos = [], 0
    while len(buf) - pos >= 2:
        opcode, n = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
        head = 2
        if n == 126:
            if len(buf) - pos < 4:
                break
            n, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
        elif n == 127:
            if len(buf) - pos < 10:
                break
            n, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
        if len(buf) - pos < head + n:
            break
        out.append((opcode, bytes(buf[pos + head : pos + head + n])))
        pos += head + n
    del buf[:pos]
    return out


async def open_client(port: int, room: str, small_buffer: bool) -> tuple[trio.SocketStream, bytearray]:
    sock = trio.socket.socket()
    if small_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    await stream.send_all(WSConnection(ConnectionType.CLIENT).send(Request(host="127.0.0.1", target="/")))
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise ConnectionError("closed during the upgrade")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    await stream.send_all(masked(ClientSession().join(room=room, name="bp")))
    return stream, bytearray(rest)


def handle(frames, result: Result, window: list[bool]) -> bytes | None:
    """Count snapshots; the newest snapshot's payload, if any (decoded only
    when acked, to keep the load generator light)."""
    newest = None
    for opcode, payload in frames:
        if opcode == 0x8:
            result.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        elif opcode == 0x2 and payload[:1] == b"\x98":  # a snapshot: protocol version 2's array of 8
            result.snapshots += 1
            if window[0]:
                result.snapshots_in_window += 1
            newest = payload
    return newest


def ack(snapshot: bytes) -> bytes:
    return masked(msgpack.packb({"t": "ack", "tick": msgpack.unpackb(snapshot)[1]}))  # [seq, tick, ...]


async def good_client(port, room, result, window, stop) -> None:
    stream, buf = await open_client(port, room, small_buffer=False)
    async with stream:
        unacked = 0
        while not stop.is_set() and result.close_code is None:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            buf += chunk
            newest = handle(parse_frames(buf), result, window)
            if newest is not None:
                unacked += 1
                if unacked >= ACK_EVERY:
                    unacked = 0
                    await stream.send_all(ack(newest))


async def slow_client(port, room, result, window, stop) -> None:
    stream, buf = await open_client(port, room, small_buffer=True)
    async with stream:
        while not stop.is_set() and result.close_code is None:
            await trio.sleep(0.5)
            chunk = await stream.receive_some(2048)
            if not chunk:
                break
            buf += chunk
            newest = handle(parse_frames(buf), result, window)
            if newest is not None:
                try:
                    await stream.send_all(ack(newest))
                except trio.BrokenResourceError:
                    break
        await read_to_close(stream, buf, result)


async def mute_client(port, room, result, window, stop) -> None:
    stream, buf = await open_client(port, room, small_buffer=True)
    async with stream:
        await stop.wait()
        await read_to_close(stream, buf, result)


async def read_to_close(stream, buf, result) -> None:
    """Read what is left (bounded) to learn the close code the server sent."""
    with trio.move_on_after(5):
        try:
            while result.close_code is None:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                buf += chunk
                handle(parse_frames(buf), result, [False])
        except trio.BrokenResourceError:
            pass


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run(
    connections: int, slow_fraction: float, duration: float, room_size: int, tick_rate: int, ack_timeout: float
) -> Report:
    args = ["--tick-rate", str(tick_rate), "--max-players", str(room_size), "--ack-timeout", str(ack_timeout),
            "--stats-interval", "1", "--max-connections", str(connections + 10)]  # fmt: skip
    report = Report(connections=connections, tick_rate=tick_rate)
    with running_server(*args) as server:
        port = int(server.url.rsplit(":", 1)[1])
        pid = server.proc.pid
        report.rss_mib_start = rss_mib(pid)
        rng = random.Random(6)
        n_slow = int(connections * slow_fraction)
        kinds = ["slow"] * (n_slow // 2) + ["mute"] * (n_slow - n_slow // 2) + ["good"] * (connections - n_slow)
        rng.shuffle(kinds)
        results = [Result(kind) for kind in kinds]
        window, stop = [False], trio.Event()
        runners = {"good": good_client, "slow": slow_client, "mute": mute_client}
        async with trio.open_nursery() as nursery:
            for i, result in enumerate(results):
                nursery.start_soon(_guard, runners[result.kind], port, f"bp-{i // room_size}", result, window, stop)
                if i % 50 == 49:
                    await trio.sleep(0.05)  # do not overflow the listen backlog
            await trio.sleep(2)  # everyone joined and settled
            window[0] = True
            cpu0 = cpu_seconds(pid)
            for _ in range(int(duration)):
                await trio.sleep(1)
                report.rss_mib_max = max(report.rss_mib_max, rss_mib(pid))
            window[0] = False
            report.server_cpu_cores = (cpu_seconds(pid) - cpu0) / int(duration)
            stop.set()
        log = server.log()
    goods = [r for r in results if r.kind == "good"]
    report.joined = sum(1 for r in results if r.snapshots > 0 or r.close_code is not None)
    report.good_snapshots_per_s = sum(r.snapshots_in_window for r in goods) / max(1, len(goods)) / duration
    for line in _SUMMARY.findall(log):
        fields = dict(kv.split("=", 1) for kv in line.split())
        if int(fields.get("connections", 0)) == 0:
            continue
        report.tick_ms_p99_max = max(report.tick_ms_p99_max, float(fields["tick_ms_p99"]))
        report.overruns = max(report.overruns, int(fields["overruns"]))
        report.snapshots_replaced = max(report.snapshots_replaced, int(fields["snapshots_replaced"]))
        report.pending_bytes_max = max(report.pending_bytes_max, int(fields["pending_bytes_max"]))
    for r in results:
        if r.kind == "good" and r.snapshots == 0 and r.close_code is None and not r.error:
            r.error = "no snapshot"  # e.g. still waiting for its upgrade or welcome
        if r.kind != "good" or r.close_code is not None or r.error:
            codes = report.close_codes.setdefault(r.kind, {})
            key = r.error or str(r.close_code)
            codes[key] = codes.get(key, 0) + 1
    return report


async def _guard(fn, port, room, result, window, stop) -> None:
    try:
        await fn(port, room, result, window, stop)
    except (OSError, ConnectionError, trio.BrokenResourceError) as exc:
        result.error = type(exc).__name__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--slow-fraction", type=float, default=0.1)
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--room-size", type=int, default=10, help="players per room (the reference workload: 10)")
    parser.add_argument("--tick-rate", type=int, default=20)
    parser.add_argument("--ack-timeout", type=float, default=5.0)
    a = parser.parse_args()
    report = trio.run(run, a.connections, a.slow_fraction, a.duration, a.room_size, a.tick_rate, a.ack_timeout)
    print(report.summary())


if __name__ == "__main__":
    main()
