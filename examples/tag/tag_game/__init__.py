"""Tag, an example game for tickroom (docs/games.md walks through it)."""

from tag_game.tag import Tag

__all__ = ["Tag"]
