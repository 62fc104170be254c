"""tickroom.testing.serve_game: a game author plays their game from a test
in a few lines, with real sockets and tickroom's own client."""

from __future__ import annotations

import trio
from tag_game.tag import Tag

from tests.games.lifecycle import Lifecycle
from tickroom.testing import serve_game

DEADLINE_S = 10.0


async def test_two_players_play_tag_in_a_room_with_options() -> None:
    with trio.fail_after(DEADLINE_S):
        async with serve_game(Tag) as server:
            server.create_room("field", options={"size": 20}, tick_rate=30)
            async with server.connect(room="field", name="ada") as ada, server.connect(room="field", name="bob") as bob:
                assert ada.options["size"] == 20.0 and ada.welcome.tick_rate == 30
                for _ in range(5):
                    await ada.send_input(mx=1.0, my=0.0)
                    world = await bob.next_world()
                assert world.entity(ada.player) is not None and world.entity(bob.player) is not None


async def test_a_test_signals_the_game_and_reads_its_labels() -> None:
    with trio.fail_after(DEADLINE_S):
        async with serve_game(Lifecycle) as server:
            async with server.connect(room="r1", name="ada") as ada:
                answer = await server.signal("r1", {"op": "labels", "labels": {"phase": "playing"}})
                assert answer["players"] == [ada.player]
                assert server.room("r1").labels == {"phase": "playing"}
