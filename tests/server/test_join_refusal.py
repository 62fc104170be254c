"""A game that refuses a join: the joiner gets 4106 with the game's reason
at once; a join() that raises anything else is refused with 4200 and the
room plays on. Real sockets, an in-process server, the Python client."""

from __future__ import annotations

import pytest
import trio

from tests.in_process import serving
from tickroom.client import JoinFailed, connect
from tickroom.protocol.errors import Code
from tickroom.server.config import ServerConfig
from tickroom.server.node import GameServer
from tickroom.server.rooms.game_catalog import GameCatalog

DEADLINE_S = 5.0  # far below the room's 10 s join timeout: the answer must come at once


@pytest.fixture
async def server():
    config = ServerConfig(host="127.0.0.1", port=0, stats_interval_s=0, graceful_timeout_s=2.0)
    games = GameCatalog.discover("tests.games.gatekeeper:Gatekeeper")
    async with serving(GameServer(config, games=games)) as running:
        yield running


@pytest.mark.parametrize(
    ("name", "code", "says"),
    [("late-lou", Code.JOIN_REJECTED, "the match has started"), ("bug", Code.INTERNAL_ERROR, "the room plays on")],
)
async def test_a_refused_join_is_answered_at_once_and_the_room_plays_on(server, name, code, says) -> None:
    url = f"ws://127.0.0.1:{server.ports[0]}"
    async with connect(url, room="door", name="ada") as ada:
        await ada.send_input(mx=1.0, my=0.0)
        before = (await ada.next_world()).tick
        with trio.fail_after(DEADLINE_S), pytest.raises(JoinFailed) as refused:
            async with connect(url, room="door", name=name):
                pass
        assert refused.value.code == code and says in refused.value.reason
        # The room and its player are untouched: snapshots keep coming, one seat taken.
        with trio.fail_after(DEADLINE_S):
            for _ in range(3):
                await ada.send_input(mx=1.0, my=0.0)
                world = await ada.next_world()
        assert world.tick > before and world.entity(ada.player) is not None
        room = server.registry.get("door")
        assert room is not None and not room.closed and len(room.players) == 1
        assert server.registry.crashes == 0
        # And a welcome player still gets in.
        with trio.fail_after(DEADLINE_S):
            async with connect(url, room="door", name="bob") as bob:
                assert bob.welcome.room == "door"
