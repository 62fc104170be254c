"""``serve_game``: a real tickroom node running one game, inside a test's
trio loop (pytest-trio), on free ports of 127.0.0.1.

Everything is the server's own code (sockets, rooms, the control API); only
the ports and the short shutdown deadline are chosen for tests. Clients are
tickroom's Python client (``server.connect``), so a test plays the game the
way a player would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import Any

import trio

from tickroom.client import Client, connect
from tickroom.server.config import ServerConfig
from tickroom.server.node import GameServer
from tickroom.server.rooms.game_catalog import GameCatalog, check_game_class
from tickroom.server.rooms.room import Room

STOP_DEADLINE_S = 10.0  # the node must stop within this once the test is done


class GameTestServer:
    """The node ``serve_game`` runs: its URLs, rooms and clients."""

    def __init__(self, node: GameServer, game: str) -> None:
        self.node = node
        self.game = game

    @property
    def url(self) -> str:
        """The game port's WebSocket URL."""
        return f"ws://127.0.0.1:{self.node.ports[0]}"

    @property
    def control_url(self) -> str:
        """The control API's base URL (no API key)."""
        assert self.node.control_url is not None
        return self.node.control_url

    def connect(
        self, *, room: str | None = None, name: str = "player", **kwargs: Any
    ) -> AbstractAsyncContextManager[Client]:
        """A player joining ``room`` (created on first join; None: any open
        room of the game). Use as ``async with server.connect(...) as client``;
        other keywords go to tickroom.connect."""
        return connect(self.url, room=room, name=name, game=self.game, **kwargs)

    def create_room(self, room_id: str | None = None, *, options: Mapping[str, Any] | None = None, **room: Any) -> Room:
        """Create a room of the game with room ``options`` (checked as the
        control API does; raises JoinRefused with the reason) and per-room
        settings (``tick_rate``, ``max_players``)."""
        config = replace(self.node.registry.config.room, **room) if room else None
        return self.node.registry.create(room_id, self.game, config=config, options=options)

    def room(self, room_id: str) -> Room | None:
        """The live room ``room_id``, to look at (its game, players, labels)."""
        return self.node.registry.get(room_id)

    async def signal(self, room_id: str, data: Mapping[str, Any]) -> Any:
        """What POST /v1/rooms/{room_id}/signal does: the game's answer.
        Raises SignalError (tickroom.server.rooms.game_hooks) and KeyError
        for a room this node does not run."""
        room = self.room(room_id)
        if room is None:
            raise KeyError(room_id)
        return await room.signal(data)


@asynccontextmanager
async def serve_game(game_cls: type[Any], **settings: Any) -> AsyncIterator[GameTestServer]:
    """Run a node whose only game is ``game_cls`` until the block ends.

    ``settings`` override tickroom.server.config.ServerConfig (e.g.
    ``tick_rate=30``, ``rejoin_grace_s=1``). Raises ValueError when the
    game's declarations are wrong (as ``tickroom serve`` would exit 2).
    The node shuts down gracefully when the block ends (its rooms closed
    with 1001) and must be gone within STOP_DEADLINE_S.
    """
    check_game_class(game_cls)
    config = ServerConfig(
        **{
            "host": "127.0.0.1",
            "port": 0,
            "control_port": 0,
            "stats_interval_s": 0,
            "graceful_timeout_s": 2.0,
            **settings,
        }
    )
    node = GameServer(config, games=GameCatalog({game_cls.name: game_cls}, default=game_cls.name))
    stopped = trio.Event()

    async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await node.run(task_status=task_status)
        stopped.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(run)
        yield GameTestServer(node, game_cls.name)
        node.shutdown()
        with trio.fail_after(STOP_DEADLINE_S):
            await stopped.wait()
