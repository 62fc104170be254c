"""What the control API's route modules share: the error a handler raises,
the answer it returns, the registry it reads, and how a path template
matches.

The dispatcher (tickroom.server.control.api) turns an ``HTTPError`` into
``{"error": ..., "reason": ...}`` with its status and headers; the route
modules (``api``, ``game_routes``, ``console_routes``) import only this, so
none of them imports another's dispatcher.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qsl

from tickroom.protocol.errors import Code
from tickroom.server.rooms.room import Room

Response = tuple[int, Any]  # (status, JSON value)
Handler = Callable[..., Awaitable[Response]]  # (scope, body, **path parameters) -> Response

_PARAM = re.compile(r"\{(\w+)\}")
_PARAM_RE = r"(?P<\1>[A-Za-z0-9_.:-]{1,64})"  # every path parameter is a room, node or player id


class HTTPError(Exception):
    """A refusal with its HTTP status, machine-readable ``reason``, message
    and extra headers (e.g. retry-after)."""

    def __init__(
        self, status: int, reason: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or []


class Rooms(Protocol):
    """What the API reads and asks of the room registry (tickroom.server.rooms.registry)."""

    @property
    def taking_rooms(self) -> bool: ...

    def get(self, room_id: str) -> Room | None: ...

    def rooms(self) -> list[Room]: ...

    def close(self, room_id: str, code: Code, reason: str) -> bool: ...

    def stop_taking_rooms(self) -> None: ...


def template_pattern(template: str) -> re.Pattern[str]:
    """The regular expression a path template (``/v1/rooms/{room_id}``)
    matches, with one named group per parameter."""
    return re.compile(_PARAM.sub(_PARAM_RE, template))


def query_pairs(scope: Any, *, keep_blank_values: bool = True) -> list[tuple[str, str]]:
    """The request's query string as (name, value) pairs, in order."""
    return parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=keep_blank_values)


def room_or_404(rooms: Rooms, room_id: str) -> Room:
    """The room ``room_id`` of this node; raises HTTPError 404 room_not_found."""
    room = rooms.get(room_id)
    if room is None:
        raise HTTPError(404, "room_not_found", f"no room {room_id!r} on this node")
    return room
