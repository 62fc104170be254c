"""What a raw bot (loadtest/rawbots.py) costs per snapshot, at the scale the
server cannot reach yet.

Why a stand-in server: the real one saturates its core long before 1,500
players, and then the bots see fewer snapshots and spend their time on
reconnects, so "CPU per snapshot" would measure the server's limit. Here a
minimal fake node in a forked process does only what the bots need to see:
the upgrade (101 with the right accept), a welcome for each join, and one
~160-byte delta snapshot per player per tick at 20 Hz, rooms of 10 ticking
at staggered phases like real rooms; it counts the inputs it gets to fill
each snapshot's "seq". The bots are the real ones (one ``Fleet``, one
process), so their cost is exactly what ``--bot-kind raw`` costs per worker.

    python benchmarks/rawbots_cost.py --bots 500,1000,1500 --duration 15

Output: one JSON line per size with the bots' CPU per snapshot (user +
system, the steady window only), their cores, snapshots per bot-second and
RTT p50/p99 (against the fake node, so one tick plus the two loops' delays).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import select
import socket
import sys
import time
from pathlib import Path

import msgpack
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tickroom.loadtest.bots import Meter, Target  # noqa: E402
from tickroom.loadtest.rawbots import Fleet  # noqa: E402
from tickroom.loadtest.scenarios import schedule  # noqa: E402
from tickroom.protocol.websocket_handshake import accept_for  # noqa: E402

RATE = 20
ROOM = 10
IDS = np.arange(1, ROOM + 1, dtype="<u4").tobytes()


def fake_node(listener: socket.socket, rooms: int) -> None:
    """The stand-in server: accept, upgrade, welcome, then snapshots."""
    ep = select.epoll()
    listener.setblocking(False)
    ep.register(listener.fileno(), select.EPOLLIN)
    conns: dict[int, dict] = {}
    period = 1.0 / RATE
    start = time.monotonic()
    next_tick = [start + period * (r / rooms) for r in range(rooms)]  # staggered, like independent rooms
    members: list[list[dict]] = [[] for _ in range(rooms)]
    tick = [0] * rooms
    joined = 0
    while True:
        now = time.monotonic()
        timeout = max(0.0, min(next_tick) - now)
        for fd, _ in ep.poll(min(timeout, 0.001)):
            if fd == listener.fileno():
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[sock.fileno()] = {"sock": sock, "buf": b"", "up": False, "frames": 0, "room": None}
                    ep.register(sock.fileno(), select.EPOLLIN)
                continue
            c = conns.get(fd)
            if c is None:
                continue
            try:
                data = c["sock"].recv(262144)
            except OSError:
                data = b""
            if not data:
                ep.unregister(fd)
                c["sock"].close()
                del conns[fd]
                if c["room"] is not None:
                    members[c["room"]].remove(c)
                continue
            buf = c["buf"] + data
            if not c["up"]:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    c["buf"] = buf
                    continue
                key = next(
                    line.split(b":", 1)[1].strip()
                    for line in buf[:end].split(b"\r\n")
                    if line.lower().startswith(b"sec-websocket-key")
                )
                c["sock"].send(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
                    + accept_for(key)
                    + b"\r\n\r\n"
                )
                c["up"], buf = True, buf[end + 4 :]
            # Count whole client frames (masked: 4 mask bytes after the length).
            pos = 0
            while len(buf) - pos >= 6:
                n = buf[pos + 1] & 0x7F
                head = 6 if n < 126 else 8
                if n == 126:
                    n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                if len(buf) - pos < head + n:
                    break
                pos += head + n
                c["frames"] += 1
                if c["room"] is None:  # the join
                    c["room"] = joined // ROOM % rooms
                    joined += 1
                    members[c["room"]].append(c)
                    welcome = msgpack.packb({"t": "welcome", "v": 2, "room": f"fake-{c['room']}", "game": "arena", "player": joined,
                                             "session": f"s{joined:023d}", "rate": RATE, "tick": tick[c["room"]], "schema": {}, "inputs": {}, "players": [],
                                             "layout": []})  # fmt: skip
                    c["sock"].send(bytes((0x82, 126)) + len(welcome).to_bytes(2, "big") + welcome)
            c["buf"] = buf[pos:]
        now = time.monotonic()
        for r in range(rooms):
            if now < next_tick[r]:
                continue
            next_tick[r] += period
            tick[r] += 1
            for c in members[r]:
                # Protocol version 2's positional snapshot: [seq, tick, base, n, ids, c, rm, ev].
                snap = msgpack.packb([c["frames"] - 1, tick[r], tick[r] - 1, ROOM, IDS,
                                      {"aim": [b"", b"\x14" * ROOM], "pos": [b"", b"\x48\x05\xba\x0b" * ROOM]}, b"", []])  # fmt: skip
                frame = (
                    bytes((0x82, len(snap))) if len(snap) < 126 else bytes((0x82, 126)) + len(snap).to_bytes(2, "big")
                ) + snap
                try:
                    c["sock"].send(frame)
                except OSError:
                    pass


def measure(bots: int, duration: float, ramp_up: float) -> dict:
    rooms = max(1, bots // ROOM)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    node = mp.get_context("fork").Process(target=fake_node, args=(listener, rooms), daemon=True)
    node.start()
    url = f"ws://127.0.0.1:{listener.getsockname()[1]}/"
    try:
        specs = schedule("steady", rooms=rooms, bots_per_room=ROOM, duration=duration, ramp_up=ramp_up, seed=1)
        meter = Meter(0)
        t0 = time.monotonic()
        fleet = Fleet([(s, Target(url, f"fake-{s.room}")) for s in specs], meter, start=t0)
        marks: dict[str, tuple] = {}
        got = {"snapshots": 0, "rtt": []}

        def report() -> None:
            delta = meter.take(0)
            got["snapshots"] += delta.snapshots
            second = round(time.monotonic() - t0)
            if second >= ramp_up + 1:
                got["rtt"].append(np.frombuffer(delta.rtt_ms, dtype=np.float32))
            if second == int(ramp_up + 1):
                marks["a"] = (time.monotonic(), os.times(), got["snapshots"], meter.connected)
            marks["b"] = (time.monotonic(), os.times(), got["snapshots"], meter.connected)

        fleet.run(t0 + duration - 0.5, report=report)
    finally:
        node.kill()
        node.join()
        listener.close()
    (wa, ta, sa, _), (wb, tb, sb, connected) = marks["a"], marks["b"]
    snaps = max(sb - sa, 1)
    cpu = (tb.user - ta.user) + (tb.system - ta.system)
    rtt = np.concatenate(got["rtt"]) if got["rtt"] else np.zeros(1, np.float32)
    return {
        "bots": bots,
        "connected": connected,
        "bot_cpu_us_per_snapshot": round(cpu / snaps * 1e6, 1),
        "user_us": round((tb.user - ta.user) / snaps * 1e6, 1),
        "system_us": round((tb.system - ta.system) / snaps * 1e6, 1),
        "bot_cores": round(cpu / (wb - wa), 3),
        "snapshots_per_bot_s": round(snaps / (wb - wa) / bots, 2),
        "rtt_p50_ms": round(float(np.percentile(rtt, 50)), 2),
        "rtt_p99_ms": round(float(np.percentile(rtt, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", default="500,1000,1500", help="sizes, comma-separated (rooms of 10)")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--ramp-up", type=float, default=3.0)
    args = parser.parse_args()
    for n in (int(x) for x in args.bots.split(",")):
        print(json.dumps(measure(n, args.duration, args.ramp_up)), flush=True)


if __name__ == "__main__":
    main()
