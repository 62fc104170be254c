"""tickroom.testing: the test kit for game authors.

    from tickroom.testing import check_game, serve_game

    def test_my_game_keeps_the_rules():
        report = check_game(MyGame, options={"size": 80})
        assert report.ok, report          # prints the rule-by-rule table on failure

    async def test_two_players_meet():    # pytest-trio
        async with serve_game(MyGame) as server, server.connect(name="ada") as ada:
            await ada.send_input(mx=1.0)
            world = await ada.next_world()

``check_game`` (tickroom.testing.rules) holds a game class to the rules of
tickroom.simulation.game; ``serve_game`` (tickroom.testing.server) runs a
real node with the game, in the test's trio loop, on free local ports.
docs/games.md, "Test it", walks through both.
"""

from tickroom.testing.rules import GameReport, RuleResult, check_game
from tickroom.testing.server import GameTestServer, serve_game

__all__ = ["GameReport", "GameTestServer", "RuleResult", "check_game", "serve_game"]
