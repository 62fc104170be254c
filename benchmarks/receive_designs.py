"""Which receive design wins: a reader task per connection, or the room's
tick reading every socket once, both with the same frame parser.

A child process plays N clients over TCP on 127.0.0.1: every 50 ms it writes
one masked 40-byte binary frame to each connection. The parent reads them
with trio one way or the other for a few seconds and reports its own CPU
time (the child's is not counted) per message received:

- ``task``: one task per connection looping on wait_readable + recv + parse
  (what a reader task costs even without wsproto's events and a channel);
- ``tick``: one task that, every 50 ms, does a non-blocking recv on every
  connection and parses what came (tickroom.server.transport.connection's take_inputs path).

    python benchmarks/receive_designs.py --connections 500 --seconds 5
"""

from __future__ import annotations

import argparse
import os
import socket
import time

import trio

from tickroom.protocol.websocket_frames import FrameParser, client_frame

TICK_S = 0.05
FRAME = client_frame(0x2, bytes(40), b"\x01\x02\x03\x04")  # one masked 40-byte input


def connections(n: int) -> tuple[list[socket.socket], list[socket.socket]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(n)
    clients, servers = [], []
    for _ in range(n):
        clients.append(socket.create_connection(listener.getsockname()))
        servers.append(listener.accept()[0])
    listener.close()
    for s in servers:
        s.setblocking(False)
    return clients, servers


def play(clients: list[socket.socket], seconds: float) -> None:
    """The child: one frame per connection per tick, on the tick."""
    start = time.monotonic()
    n = 0
    while time.monotonic() < start + seconds + 1.0:
        for c in clients:
            c.send(FRAME)
        n += 1
        time.sleep(max(0.0, start + n * TICK_S - time.monotonic()))
    os._exit(0)


async def read_with_tasks(servers: list[socket.socket], seconds: float) -> int:
    count = 0

    async def reader(sock: socket.socket) -> None:
        nonlocal count
        parser = FrameParser(4096)
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)
                continue
            count += len(parser.receive(data))
            await trio.lowlevel.checkpoint()

    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for sock in servers:
                nursery.start_soon(reader, sock)
    return count


async def read_in_ticks(servers: list[socket.socket], seconds: float) -> int:
    count = 0
    parsers = [FrameParser(4096) for _ in servers]
    deadline = trio.current_time() + seconds
    n = 0
    start = trio.current_time()
    while trio.current_time() < deadline:
        n += 1
        await trio.sleep_until(start + n * TICK_S)
        for sock, parser in zip(servers, parsers, strict=True):
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            count += len(parser.receive(data))
    return count


def measure(design: str, n: int, seconds: float) -> tuple[float, float]:
    clients, servers = connections(n)
    pid = os.fork()
    if pid == 0:
        play(clients, seconds)
    for c in clients:
        c.close()
    began = time.process_time()
    count = trio.run(read_with_tasks if design == "task" else read_in_ticks, servers, seconds)
    cpu = time.process_time() - began
    os.waitpid(pid, 0)
    for s in servers:
        s.close()
    return cpu / max(count, 1) * 1e6, count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for design in ("task", "tick") * args.rounds:
        us, rate = measure(design, args.connections, args.seconds)
        print(
            f"{design}: {us:.1f} us CPU per message ({rate:,.0f} messages/s, {args.connections} connections)",
            flush=True,
        )


if __name__ == "__main__":
    main()
