"""Request bodies and query strings of the control API, validated.

Each parser takes decoded JSON (or query pairs) and returns a value or raises
BadRequest with a message naming the field; docs/control-api.yaml states the
same limits.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

from tickroom.protocol.tickets import PLAYER_ID_RE
from tickroom.protocol.validate import ROOM_ID_RE
from tickroom.server.rooms.game_catalog import GameCatalog
from tickroom.server.rooms.placement import AllocationRequest
from tickroom.simulation.options import MAX_OPTIONS, OptionError, resolve_options

MAX_PLAYERS_LIMIT = 1024
MAX_TICK_RATE = 240  # Hz
MAX_SEED = 2**63 - 1
MAX_LABELS = 32
LABEL_KEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,63}")
MAX_LABEL_VALUE_CHARS = 256
IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces
MAX_TICKETS_PER_REQUEST = 100
DEFAULT_TICKET_TTL_S = 60
MAX_TICKET_TTL_S = 24 * 3600
DEFAULT_PAGE = 50
MAX_PAGE = 500
_PAGE_SIZE_RE = re.compile(r"[0-9]{1,6}")
MAX_REASON_BYTES = 100  # UTF-8; a WebSocket close reason holds 123 bytes
MAX_SIGNAL_BYTES = 4 * 2**10  # a signal's JSON body: a command, not a payload


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _int(body: dict, key: str, lo: int, hi: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadRequest(f"{key!r} must be an integer in [{lo}, {hi}]")
    return value


def _object(body: Any) -> dict:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _no_unknown(body: dict, allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"unknown field(s): {unknown}")


def allocation(body: Any) -> AllocationRequest:
    body = _object(body)
    _no_unknown(body, {"game", "max_players", "tick_rate", "seed", "labels", "idempotency_key", "options"})
    game = body.get("game")
    if game is not None and (not isinstance(game, str) or not ROOM_ID_RE.fullmatch(game)):
        raise BadRequest(f"'game' must match {ROOM_ID_RE.pattern}")
    key = body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not IDEMPOTENCY_KEY_RE.fullmatch(key)):
        raise BadRequest("'idempotency_key' must be 1 to 128 printable ASCII characters")
    return AllocationRequest(
        game=game,
        max_players=_int(body, "max_players", 1, MAX_PLAYERS_LIMIT),
        tick_rate=_int(body, "tick_rate", 1, MAX_TICK_RATE),
        seed=_int(body, "seed", 0, MAX_SEED),
        labels=labels(body.get("labels")),
        idempotency_key=key,
        options=_options_object(body.get("options")),
    )


def _options_object(value: Any) -> dict[str, Any]:
    """The shape of ``options``: an object of at most MAX_OPTIONS scalars.
    What each may hold is the game's to say (room_options)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_OPTIONS:
        raise BadRequest(f"'options' must be an object of at most {MAX_OPTIONS} options")
    for key, item in value.items():
        if isinstance(item, (dict, list)) or item is None:
            raise BadRequest(f"option {key!r} must be a number, a string or a boolean")
    return dict(value)


def room_options(request: AllocationRequest, games: GameCatalog) -> AllocationRequest:
    """``request`` with its options checked against its game's declaration
    and complete (defaults filled in). Raises BadRequest naming the option;
    an unknown game is left for the placement to refuse (422 unknown_game)."""
    name = request.game or games.default
    if name not in games:
        return request
    try:
        options = resolve_options(games.get(name), request.options)
    except OptionError as exc:
        raise BadRequest(exc.message) from None
    return dataclasses.replace(request, options=options)


def labels(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_LABELS:
        raise BadRequest(f"'labels' must be an object of at most {MAX_LABELS} string values")
    for key, item in value.items():
        if not LABEL_KEY_RE.fullmatch(key):
            raise BadRequest(f"label keys must match {LABEL_KEY_RE.pattern}")
        if not isinstance(item, str) or len(item) > MAX_LABEL_VALUE_CHARS:
            raise BadRequest(f"label values must be strings of at most {MAX_LABEL_VALUE_CHARS} characters")
    return dict(value)


@dataclass(frozen=True)
class TicketRequest:
    players: list[str]
    ttl_s: int


def tickets(body: Any) -> TicketRequest:
    body = _object(body)
    _no_unknown(body, {"players", "ttl_s"})
    players = body.get("players")
    if not isinstance(players, list) or not 1 <= len(players) <= MAX_TICKETS_PER_REQUEST:
        raise BadRequest(f"'players' must be a list of 1 to {MAX_TICKETS_PER_REQUEST} player ids")
    for player in players:
        if not isinstance(player, str) or not PLAYER_ID_RE.fullmatch(player):
            raise BadRequest(f"player ids must match {PLAYER_ID_RE.pattern}")
    if len(set(players)) != len(players):
        raise BadRequest("'players' has duplicates")
    ttl = _int(body, "ttl_s", 1, MAX_TICKET_TTL_S)
    return TicketRequest(players=players, ttl_s=DEFAULT_TICKET_TTL_S if ttl is None else ttl)


@dataclass(frozen=True)
class ListQuery:
    game: str | None
    labels: dict[str, str]
    limit: int
    after: str | None  # the cursor: list rooms whose id sorts after this one


def list_query(pairs: list[tuple[str, str]]) -> ListQuery:
    game, wanted, limit, after = None, {}, DEFAULT_PAGE, None
    for key, value in pairs:
        if key == "game":
            game = value
        elif key == "label":
            name, sep, label_value = value.partition(":")
            if not sep or not LABEL_KEY_RE.fullmatch(name):
                raise BadRequest("'label' must be KEY:VALUE")
            wanted[name] = label_value
        elif key == "limit":
            # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
            if not _PAGE_SIZE_RE.fullmatch(value) or not 1 <= int(value) <= MAX_PAGE:
                raise BadRequest(f"'limit' must be an integer in [1, {MAX_PAGE}]")
            limit = int(value)
        elif key == "cursor":
            after = decode_cursor(value)
        else:
            raise BadRequest(f"unknown query parameter {key!r}")
    return ListQuery(game=game, labels=wanted, limit=limit, after=after)


def encode_cursor(room_id: str) -> str:
    return base64.urlsafe_b64encode(room_id.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> str:
    try:
        room_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("'cursor' is not a cursor this API returned") from None
    if not ROOM_ID_RE.fullmatch(room_id):
        raise BadRequest("'cursor' is not a cursor this API returned")
    return room_id


def close_reason(pairs: list[tuple[str, str]]) -> str:
    """The ``reason`` of ``DELETE /v1/rooms/{id}``: what its clients read."""
    return _reason(pairs, default="room closed by the operator")


def signal(body: bytes) -> dict[str, Any]:
    """A signal's body: a JSON object of at most MAX_SIGNAL_BYTES, handed to
    the game as it is (its meaning is the game's)."""
    if len(body) > MAX_SIGNAL_BYTES:
        raise BadRequest(f"a signal is at most {MAX_SIGNAL_BYTES} bytes of JSON")
    try:
        value = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("a signal must be a JSON object")
    return value


def tick_times_after(pairs: list[tuple[str, str]]) -> int | None:
    """The ``after`` of ``GET /v1/rooms/{id}/tick-times``: a count of ticks
    timed (0 to 2**53), or None when absent."""
    after = None
    for key, value in pairs:
        if key != "after":
            raise BadRequest(f"unknown query parameter {key!r}")
        if not value.isdigit() or len(value) > 16 or int(value) > 2**53:
            raise BadRequest("'after' must be a whole number of ticks, 0 to 2**53")
        after = int(value)
    return after


def kick_reason(pairs: list[tuple[str, str]]) -> str:
    """The ``reason`` of ``DELETE /v1/rooms/{id}/players/{player}``: what the
    kicked client reads in its error message."""
    return _reason(pairs, default="removed by the operator")


def _reason(pairs: list[tuple[str, str]], *, default: str) -> str:
    """A ``reason`` query parameter (the only one allowed): 1 to
    MAX_REASON_BYTES of printable UTF-8, ``default`` when absent."""
    reason = default
    for key, value in pairs:
        if key != "reason":
            raise BadRequest(f"unknown query parameter {key!r}")
        if not 1 <= len(value.encode("utf-8")) <= MAX_REASON_BYTES or not value.isprintable():
            raise BadRequest(f"'reason' must be 1 to {MAX_REASON_BYTES} bytes of printable UTF-8")
        reason = value
    return reason
