"""Python bots playing in a background thread while a browser test runs
(Playwright's sync API owns the test's thread)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from tickroom.client import ClientClosed, connect

PLAY_LIMIT_S = 120.0  # bots stop by themselves even if a test hangs


@contextmanager
def bots_playing(url: str, seats: list[tuple[str, str]]) -> Iterator[dict[str, int]]:
    """Bots (room, name) moving in circles until the block ends. Yields
    name -> the code that closed the bot's connection, filled in as they end."""
    closed: dict[str, int] = {}
    stop = threading.Event()
    ready = threading.Barrier(len(seats) + 1, timeout=30)

    async def bot(i: int, room: str, name: str) -> None:
        try:
            async with connect(url, room=room, name=name) as client:
                await trio.to_thread.run_sync(ready.wait)  # never block the bots' event loop
                t = 0
                while not stop.is_set():
                    t += 1
                    angle = t / 25 + i * 2.1
                    await client.send_input(mx=math.cos(angle), my=math.sin(angle), aim=angle % math.pi)
                    await client.next_world()
        except* ClientClosed as group:  # the client's nursery may wrap it
            first = group.exceptions[0]
            assert isinstance(first, ClientClosed)
            closed[name] = first.code

    async def run() -> None:
        with trio.move_on_after(PLAY_LIMIT_S):
            async with trio.open_nursery() as nursery:
                for i, (room, name) in enumerate(seats):
                    nursery.start_soon(bot, i, room, name)

    thread = threading.Thread(target=trio.run, args=(run,), daemon=True)
    thread.start()
    ready.wait()  # every bot has joined
    try:
        yield closed
    finally:
        stop.set()
        thread.join(10)
