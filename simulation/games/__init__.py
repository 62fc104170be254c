"""The games built into tickroom, by name (the reference game, arena).

A studio's own game is not added here: it lives in its own package and is
declared as a ``tickroom.games`` entry point, or named as ``--game
module.path:Class`` (docs/games.md; tickroom.simulation.game_loader finds
them all).
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
