"""Finding a game class by name or by ``module.path:Class``, in simulation.

Games come from three places, in this order: the games shipped with
tickroom (tickroom.simulation.games), installed packages' entry points in
the group ``tickroom.games`` (``tag = "tag_game.tag:Tag"``), and a
``module.path:Class`` reference to anything importable. The server's
catalog (tickroom.server.rooms.game_catalog) builds on ``import_reference``
and adds the protocol's checks of a game's declarations; tools that live in
simulation (the step benchmark, tickroom.simulation.bench) resolve a game
here, without importing the server or the protocol.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from tickroom.simulation.games import GAMES as BUILTIN_GAMES

ENTRY_POINT_GROUP = "tickroom.games"
#: The Game methods a class must have to be run at all.
REQUIRED_METHODS = ("join", "leave", "apply_inputs", "step", "view", "state", "restore")


class GameLoadError(Exception):
    """A game cannot be loaded or its declarations are wrong; the message
    says which and names the games that are known."""


def import_reference(reference: str) -> Any:
    """The object named by ``module.path:Class`` (``Outer.Inner`` after the
    colon walks attributes). Raises GameLoadError when the text is not of
    that form or the import or an attribute fails (any exception raised
    by the user's module while it is imported is such a failure)."""
    module_name, _, attr = reference.partition(":")
    if not module_name or not attr:
        raise GameLoadError(f"{reference!r} is not module.path:Class")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # noqa: BLE001 - any import-time error of the user's code is a load error
        raise GameLoadError(f"cannot load game {reference!r}: {type(exc).__name__}: {exc}") from exc
    return obj


def installed_game_names(found: Callable[[], Iterable[EntryPoint]] | None = None) -> list[str]:
    """The built-in games' names and the installed entry points', sorted
    (entry points are listed, not loaded). ``found`` replaces the installed
    entry points (tests)."""
    points = found() if found is not None else entry_points(group=ENTRY_POINT_GROUP)
    return sorted(set(BUILTIN_GAMES) | {point.name for point in points})


def resolve_game(spec: str, found: Callable[[], Iterable[EntryPoint]] | None = None) -> type:
    """The game class ``spec`` names: a built-in game's name, an installed
    entry point's name, or ``module.path:Class``. Only the class's shape is
    checked here (a class with the Game methods); the protocol's checks of
    its declarations are the server catalog's.

    Raises GameLoadError naming the known games when ``spec`` is unknown or
    the class cannot be loaded."""
    if ":" in spec:
        game_cls = import_reference(spec)
    elif spec in BUILTIN_GAMES:
        game_cls = BUILTIN_GAMES[spec]
    else:
        points = list(found() if found is not None else entry_points(group=ENTRY_POINT_GROUP))
        matching = [point for point in points if point.name == spec]
        if not matching:
            known = ", ".join(installed_game_names(lambda: points))
            raise GameLoadError(f"unknown game {spec!r}; known games: {known}")
        game_cls = import_reference(matching[-1].value)
    missing = [method for method in REQUIRED_METHODS if not callable(getattr(game_cls, method, None))]
    if not isinstance(game_cls, type) or missing:
        what = f"lacks {', '.join(missing)}" if isinstance(game_cls, type) else "is not a class"
        raise GameLoadError(f"game {spec!r} {what}")
    return game_cls
