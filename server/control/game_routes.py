"""The control API's routes for the games: which games this node runs
(``GET /v1/games``) and a signal to a room's game
(``POST /v1/rooms/{room_id}/signal``).

Handlers are looked up by the names of tickroom.server.control.api.ROUTES.
"""

from __future__ import annotations

from typing import Any

from tickroom.server.control import validation
from tickroom.server.control.routing import HTTPError, Response, Rooms, room_or_404
from tickroom.server.rooms.game_catalog import GameCatalog
from tickroom.server.rooms.game_hooks import SignalError

# A signal the room could not answer: status and headers by SignalError.reason.
SIGNAL_ERRORS: dict[str, tuple[int, list[tuple[bytes, bytes]]]] = {
    "room_busy": (503, [(b"retry-after", b"1")]),
    "room_closing": (409, []),
    "signal_timeout": (504, []),
    "signal_unsupported": (422, []),
    "signal_failed": (500, []),
}


class GameRoutes:
    """``list_games`` and ``signal_room`` over ``games`` and ``rooms``."""

    def __init__(self, *, games: GameCatalog, rooms: Rooms) -> None:
        self.games = games
        self.rooms = rooms

    async def list_games(self, scope: Any, body: bytes) -> Response:
        """``GET /v1/games``: the games this node runs, with their input
        fields, components and option schema (what ``options`` may hold)."""
        return 200, {"games": self.games.describe(), "default": self.games.default}

    async def signal_room(self, scope: Any, body: bytes, room_id: str) -> Response:
        """``POST /v1/rooms/{room_id}/signal``: hand a small JSON object to
        the room's game (its ``on_signal``) at the room's next tick and answer
        with the game's reply. Bounded: a body of at most
        validation.MAX_SIGNAL_BYTES, an answer of at most 16 KiB, a wait of at
        most tickroom.server.rooms.room_signals.SIGNAL_TIMEOUT_S."""
        data = validation.signal(body)
        room = room_or_404(self.rooms, room_id)
        try:
            answer = await room.signal(data)
        except SignalError as exc:
            status, headers = SIGNAL_ERRORS[exc.reason]
            raise HTTPError(status, exc.reason, exc.message, headers) from None
        return 200, {"room_id": room_id, "answer": answer}
