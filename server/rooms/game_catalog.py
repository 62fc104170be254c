"""The games a node can run, resolved once when the node starts.

Games are the users' code. They come from three places, in this order:

1. the games shipped with tickroom (tickroom.simulation.games, arena);
2. installed packages' entry points in the group ``tickroom.games``
   (``tag = "tag_game.tag:Tag"`` in the package's pyproject.toml);
3. ``--game module.path:Class``: a class importable from ``sys.path``, no
   packaging needed.

Every game is loaded and its declarations (name, input fields, components,
options) are checked here, before the node binds a port, so an unknown or
broken game stops the server with a message naming the games it knows
(``tickroom serve`` exits 2) rather than answering every join with
UNKNOWN_GAME. Workers (``--workers``) get the parent's flags and run the
same resolution; a node restoring a room after failover looks the room's
game up by name in its own catalog, so every node of a cluster must be
able to load the games its rooms run (the same package, or the same
``--game`` flag).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from tickroom.protocol.game_messages import DEFAULT_MESSAGE_RATE, MessageTypes
from tickroom.protocol.schema import Schema
from tickroom.protocol.validate import ROOM_ID_RE, InputFields
from tickroom.server.rooms.views import hidden_components
from tickroom.simulation.game_loader import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from tickroom.simulation.game_loader import REQUIRED_METHODS, import_reference
from tickroom.simulation.game_loader import GameLoadError as GameLoadError
from tickroom.simulation.games import GAMES as BUILTIN_GAMES
from tickroom.simulation.options import check_declaration, declared_options

log = logging.getLogger(__name__)


def check_game_class(game_cls: Any) -> None:
    """Raises ValueError when ``game_cls`` does not declare what the server
    needs: a name usable as a game id, valid input fields, a valid
    component schema, well-formed options, hidden components and message
    types, and the Game methods."""
    if not isinstance(game_cls, type):
        raise ValueError(f"{game_cls!r} is not a class")
    name = getattr(game_cls, "name", None)
    if not isinstance(name, str) or not ROOM_ID_RE.fullmatch(name):
        raise ValueError(f"{game_cls.__qualname__}.name must be a string matching {ROOM_ID_RE.pattern}")
    missing = [method for method in REQUIRED_METHODS if not callable(getattr(game_cls, method, None))]
    if missing:
        raise ValueError(f"game {name!r} lacks {', '.join(missing)}")
    InputFields(getattr(game_cls, "input_fields", None) or {})
    schema = Schema.from_description(getattr(game_cls, "components", None) or {})
    check_declaration(game_cls)
    hidden_components(game_cls, schema)  # VisibilityError is a ValueError
    types = MessageTypes(
        getattr(game_cls, "message_types", None), getattr(game_cls, "message_rate", DEFAULT_MESSAGE_RATE)
    )
    if types.types and not callable(getattr(game_cls, "handle_messages", None)):
        raise ValueError(f"game {name!r} declares message_types but no handle_messages()")


def load_reference(reference: str) -> type:
    """The class named by ``module.path:Class`` (checked). Raises GameLoadError."""
    obj = import_reference(reference)  # shared with simulation's tools (simulation/game_loader.py)
    try:
        check_game_class(obj)
    except ValueError as exc:
        raise GameLoadError(f"game {reference!r} is not a valid game: {exc}") from exc
    return obj


class GameCatalog:
    """Game classes by name. Built by ``GameCatalog.discover()``; read-only after."""

    def __init__(self, games: Mapping[str, type], *, default: str) -> None:
        if default not in games:
            raise GameLoadError(f"unknown game {default!r}; known games: {', '.join(sorted(games))}")
        self._games = dict(games)
        self.default = default  # the game of rooms created without naming one

    @classmethod
    def discover(
        cls,
        game: str | None = None,
        *,
        found: Callable[[], Iterable[EntryPoint]] | None = None,
    ) -> GameCatalog:
        """The built-in games, the installed entry points' and ``game``
        (a name among those, or ``module.path:Class``), which becomes the
        default (None: arena).

        An entry point that fails to load is left out with a warning unless
        it is the one ``game`` names. Raises GameLoadError when ``game``
        cannot be loaded or is unknown; the message names the known games.
        ``found`` replaces the installed entry points (tests)."""
        games: dict[str, type] = dict(BUILTIN_GAMES)
        broken: dict[str, str] = {}
        points = found() if found is not None else entry_points(group=ENTRY_POINT_GROUP)
        for point in points:
            game_cls: Any
            try:
                game_cls = load_reference(point.value)
                if game_cls.name != point.name:
                    raise GameLoadError(f"entry point {point.name!r} loads a game named {game_cls.name!r}")
            except GameLoadError as exc:
                broken[point.name] = str(exc)
                log.warning("game %s from entry point %s is left out: %s", point.name, point.value, exc)
                continue
            if point.name in games and games[point.name] is not game_cls:
                log.warning("entry point %s replaces the game of that name", point.value)
            games[point.name] = game_cls
        default = game or "arena"
        if ":" in default:
            try:
                game_cls = load_reference(default)
            except GameLoadError as exc:
                raise GameLoadError(f"{exc}; known games: {', '.join(sorted(games))}") from exc
            games[game_cls.name] = game_cls
            default = game_cls.name
        elif default in broken:
            raise GameLoadError(f"{broken[default]}; known games: {', '.join(sorted(games))}")
        return cls(games, default=default)

    def names(self) -> list[str]:
        """The known games' names, sorted."""
        return sorted(self._games)

    def get(self, name: str) -> type:
        """The class of game ``name``. Raises KeyError naming the known games."""
        try:
            return self._games[name]
        except KeyError:
            raise KeyError(f"unknown game {name!r}; known games: {', '.join(self.names())}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._games

    def describe(self) -> list[dict[str, Any]]:
        """Every game as JSON: name, input fields, components and options
        (``GET /v1/games``)."""
        return [
            {
                "name": name,
                "default": name == self.default,
                "inputs": InputFields(game_cls.input_fields).describe(),  # type: ignore[attr-defined]
                "components": Schema.from_description(game_cls.components).describe(),  # type: ignore[attr-defined]
                "options": {key: option.describe() for key, option in declared_options(game_cls).items()},
            }
            for name, game_cls in sorted(self._games.items())
        ]
