"""Games that must not load: each shows one way a game can be broken."""

from __future__ import annotations

from typing import ClassVar

from tickroom.simulation.games.arena import Arena
from tickroom.simulation.options import Option


class BadInputs(Arena):
    name: ClassVar[str] = "bad-inputs"
    input_fields: ClassVar = {"mx": ("float", 1.0, -1.0)}  # lo > hi


class BadOptionDefault(Arena):
    name: ClassVar[str] = "bad-default"
    options: ClassVar = {"size": Option("float", 5000.0, lo=4.0, hi=1023.0)}


class NoName:
    """Not a game at all."""


raise_on_import = False
