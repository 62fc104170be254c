"""A real GameServer run inside the test's trio loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from tickroom.server.node import GameServer

STOP_DEADLINE_S = 10.0


@asynccontextmanager
async def serving(server: GameServer, *, stop_deadline: float = STOP_DEADLINE_S) -> AsyncIterator[GameServer]:
    """Run ``server`` until the block ends, then shut it down gracefully;
    ``run()`` must return within ``stop_deadline`` seconds."""
    returned = trio.Event()

    async def run(task_status=trio.TASK_STATUS_IGNORED) -> None:
        await server.run(task_status=task_status)
        returned.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(run)
        yield server
        server.shutdown()
        with trio.fail_after(stop_deadline):
            await returned.wait()
