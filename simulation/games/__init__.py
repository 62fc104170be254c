"""The games this server can run, by registered name.

A room asks for its game by name (the matchmaker passes it along), so the
server itself knows no game: adding one is a class implementing
tickroom.simulation.game.Game plus a line here.
"""

from __future__ import annotations

from tickroom.simulation.games.arena import Arena

GAMES: dict[str, type] = {
    Arena.name: Arena,
}


def get_game(name: str) -> type:
    """The game class registered as ``name``.

    Raises KeyError naming the known games when there is none by that name.
    """
    try:
        return GAMES[name]
    except KeyError:
        known = ", ".join(sorted(GAMES))
        raise KeyError(f"unknown game {name!r}; known games: {known}") from None


__all__ = ["GAMES", "Arena", "get_game"]
