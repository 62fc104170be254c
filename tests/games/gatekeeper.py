"""Tag with a door: a game that refuses some joins, and one whose join has a bug."""

from __future__ import annotations

from typing import ClassVar

from tag_game.tag import Tag

from tickroom import JoinRejected


class Gatekeeper(Tag):
    name: ClassVar[str] = "gatekeeper"

    def join(self, name: str) -> int:
        if name.startswith("late"):
            raise JoinRejected("the match has started")
        if name == "bug":
            raise ZeroDivisionError("a bug in the game's join")
        return super().join(name)
