"""The control API's routes, as a plain ASGI application.

A dozen JSON routes do not need a framework: a table of (method, path
pattern, handler, public) and a small dispatcher. Every answer is JSON
(Prometheus text for /metrics); every error is ``{"error": ..., "reason":
...}`` with a stable machine-readable ``reason``. Handlers run in the server's
trio task tree (hypercorn's trio worker), so they call the registry directly;
the registry's methods never block. The API is given what it reads, each
through a narrow protocol below (the rooms, the node's health, the
placement) and the metrics and secrets it uses; it knows nothing of the node
that wires them.

This module holds the dispatcher, the one ROUTES table, and the routes of
health, allocation, rooms and tickets; the games' routes are in
tickroom.server.control.game_routes, the operator console's (kick, tick
times, the nodes, any node's rooms) in tickroom.server.control.console_routes,
and what they share (HTTPError, Rooms) in tickroom.server.control.routing.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Protocol

from tickroom.protocol.errors import Code
from tickroom.protocol.tickets import sign_ticket
from tickroom.server.control import validation
from tickroom.server.control.auth import PUBLIC_PATHS, Refusal, authorized, body_refusal, browser_refusal
from tickroom.server.control.console import CONSOLE_PATH, console_app
from tickroom.server.control.console_routes import ConsoleRoutes
from tickroom.server.control.demo_page import answer_lifespan, handles, web_app
from tickroom.server.control.game_routes import GameRoutes
from tickroom.server.control.nodes import NodeDirectory
from tickroom.server.control.routing import Handler, Response, query_pairs, room_or_404, template_pattern
from tickroom.server.control.routing import HTTPError as HTTPError
from tickroom.server.control.routing import Rooms as Rooms
from tickroom.server.control.serve import MAX_BODY_BYTES
from tickroom.server.ops.metrics import CONTENT_TYPE, ServerMetrics
from tickroom.server.ops.overload import LoadGovernor
from tickroom.server.rooms.game_catalog import GameCatalog
from tickroom.server.rooms.placement import Allocation, AllocationRefused, NoCapacity, Placement

log = logging.getLogger("tickroom.server.control")


FORWARDED_HEADER = b"x-tickroom-forwarded"  # tickroom.server.cluster.placement.FORWARDED_HEADER, as ASGI spells it


def rfc3339(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Health(Protocol):
    """What /readyz reports of the node."""

    @property
    def stopping(self) -> bool:
        """The node is shutting down."""
        ...

    @property
    def listening(self) -> bool:
        """The game port is bound."""
        ...


# (method, path template, handler name); docs/control-api.yaml lists the same.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/healthz", "healthz"),
    ("GET", "/readyz", "readyz"),
    ("GET", "/metrics", "metrics"),
    ("POST", "/v1/rooms", "allocate"),
    ("GET", "/v1/rooms", "list_rooms"),
    ("GET", "/v1/rooms/{room_id}", "get_room"),
    ("DELETE", "/v1/rooms/{room_id}", "close_room"),
    ("POST", "/v1/rooms/{room_id}/tickets", "issue_tickets"),
    ("POST", "/v1/drain", "drain"),
    ("GET", "/v1/games", "list_games"),
    ("POST", "/v1/rooms/{room_id}/signal", "signal_room"),
    ("GET", "/v1/rooms/{room_id}/tick-times", "room_tick_times"),
    ("GET", "/v1/nodes", "list_nodes"),
    ("DELETE", "/v1/rooms/{room_id}/players/{player_id}", "kick_player"),
    # Any node's rooms, through this node (tickroom.server.control.node_proxy).
    ("GET", "/v1/nodes/{node_id}/rooms", "node_list_rooms"),
    ("GET", "/v1/nodes/{node_id}/rooms/{room_id}", "node_get_room"),
    ("DELETE", "/v1/nodes/{node_id}/rooms/{room_id}", "node_close_room"),
    ("GET", "/v1/nodes/{node_id}/rooms/{room_id}/tick-times", "node_room_tick_times"),
    ("DELETE", "/v1/nodes/{node_id}/rooms/{room_id}/players/{player_id}", "node_kick_player"),
    ("POST", "/v1/nodes/{node_id}/drain", "node_drain"),
)


class ControlAPI:
    """The ASGI application over ``rooms``, ``placement``, ``health`` and
    ``metrics``. ``api_key``: required on every non-public route when set
    (and on /metrics with ``metrics_need_key``); ``ticket_secret``: signs
    join tickets (none: tickets are refused); ``nodes``: the nodes
    ``GET /v1/nodes`` lists (none: the route answers 404)."""

    def __init__(
        self,
        *,
        rooms: Rooms,
        placement: Placement,
        health: Health,
        metrics: ServerMetrics,
        api_key: str | None = None,
        ticket_secret: str | None = None,
        clock: Callable[[], float] = time.time,
        games: GameCatalog | None = None,
        nodes: NodeDirectory | None = None,
        metrics_need_key: bool = False,
        overload: LoadGovernor | None = None,
    ) -> None:
        self.rooms = rooms
        # The games this node runs (GET /v1/games; allocations' options are
        # checked against them). None: the built-in and installed ones.
        self.games = games if games is not None else GameCatalog.discover()
        self.placement = placement
        self.health = health
        self.node_metrics = metrics
        self.overload = overload  # the load governor: 503 on allocations while over capacity
        self.api_key = api_key
        self.ticket_secret = ticket_secret
        self.clock = clock  # unix seconds, for ticket expiries
        self.game_routes = GameRoutes(games=self.games, rooms=rooms)
        self.console_routes = ConsoleRoutes(rooms=rooms, here=self, nodes=nodes, api_key=api_key)
        # /metrics names every room, and a room id is all a client needs to
        # join a client-created room: --metrics-need-key puts it behind the key.
        self.public_paths = PUBLIC_PATHS - {"/metrics"} if metrics_need_key and api_key else PUBLIC_PATHS
        # Each route's handler, by its name in ROUTES, from this module or a route module's.
        handlers = (self, self.game_routes, self.console_routes)
        self.routes: list[tuple[str, str, Handler]] = [
            (method, template, next(getattr(h, name) for h in handlers if hasattr(h, name)))
            for method, template, name in ROUTES
        ]
        self._web = web_app()
        self._console = console_app()
        self._patterns = [template_pattern(template) for _, template, _ in self.routes]

    # -- ASGI ------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if handles(scope["path"]):
            # The demo page and its static files: public, not part of the API.
            await self._web(scope, receive, send)
            return
        if scope["path"] == CONSOLE_PATH:
            # The operator console's page: public, it holds no data (the
            # operator types the API key into it).
            await self._console(scope, receive, send)
            return
        try:
            handler, params = self._route(scope)
            if scope["path"] not in self.public_paths and not authorized(scope["headers"], self.api_key):
                raise HTTPError(
                    401, "unauthorized", "missing or wrong API key", [(b"www-authenticate", b'Bearer realm="tickroom"')]
                )
            if not self.api_key:
                _refuse(browser_refusal(scope["headers"]))  # loopback, but not for other web pages
            body = await _read_body(receive)
            if not self.api_key:
                _refuse(body_refusal(scope["headers"], body))
            status, value = await handler(scope, body, **params)
            headers: list[tuple[bytes, bytes]] = []
        except HTTPError as exc:
            status, value, headers = exc.status, {"error": exc.message, "reason": exc.reason}, exc.headers
        except validation.BadRequest as exc:
            status, value, headers = 400, {"error": exc.message, "reason": "bad_request"}, []
        except Exception:  # the fence: one request's bug is a 500, never a dead API
            log.exception("control API: %s %s failed", scope["method"], scope["path"])
            status, value, headers = 500, {"error": "internal error", "reason": "internal"}, []
        if isinstance(value, bytes):  # /metrics
            payload, content_type = value, CONTENT_TYPE.encode()
        else:
            payload, content_type = json.dumps(value, separators=(",", ":")).encode(), b"application/json"
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(payload)).encode()), (b"cache-control", b"no-store"), *headers],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": payload if scope["method"] != "HEAD" else b""})

    def _route(self, scope) -> tuple[Handler, dict[str, str]]:
        path, method = scope["path"], scope["method"]
        allowed = []
        for (route_method, _, handler), pattern in zip(self.routes, self._patterns, strict=True):
            match = pattern.fullmatch(path)
            if match:
                if route_method == method or (route_method == "GET" and method == "HEAD"):
                    return handler, match.groupdict()
                allowed.append(route_method)
        if allowed:
            raise HTTPError(
                405, "method_not_allowed", f"{method} is not allowed here", [(b"allow", ", ".join(allowed).encode())]
            )
        raise HTTPError(404, "not_found", f"no route {path}")

    # -- health ----------------------------------------------------------------

    async def healthz(self, scope, body) -> Response:
        return 200, {"status": "ok"}

    async def readyz(self, scope, body) -> Response:
        if self.health.stopping:
            return 503, {"status": "stopping", "ready": False}
        if not self.rooms.taking_rooms:
            return 503, {"status": "draining", "ready": False}
        if not self.health.listening:
            return 503, {"status": "starting", "ready": False}
        # Over capacity the node stays ready: it serves its players and their
        # rejoins; "accepting" says whether it takes new ones.
        load = self.overload.state().as_json() if self.overload is not None else None
        return 200, {"status": "ready", "ready": True, "load": load}

    async def metrics(self, scope, body) -> Response:
        return 200, await self.node_metrics.scrape()

    async def drain(self, scope, body) -> Response:
        """``POST /v1/drain``: stop taking new rooms; the rooms running now
        play on, and nothing is handed over or closed."""
        if self.rooms.taking_rooms:
            log.info("control API: draining: no new rooms")
        self.rooms.stop_taking_rooms()
        return 202, {"status": "draining", "rooms": len(self.rooms.rooms())}

    # -- rooms -----------------------------------------------------------------

    async def allocate(self, scope, body) -> Response:
        request = validation.room_options(validation.allocation(_json(body)), self.games)
        counter = self.node_metrics.allocations
        if self.overload is not None and not self.overload.accepting:
            # A new room means new players, which the node would refuse (4203).
            counter.labels("no_capacity").inc()
            retry = str(self.overload.retry_after_s).encode()
            raise HTTPError(
                503, "over_capacity", "this node is over its capacity; retry later", [(b"retry-after", retry)]
            )
        try:
            if any(name == FORWARDED_HEADER for name, _ in scope["headers"]):
                # Another node chose this one: allocate here, never forward again.
                allocation = await self.placement.allocate(request, forwarded=True)
            else:
                allocation = await self.placement.allocate(request)
        except NoCapacity as exc:
            counter.labels("no_capacity").inc()
            raise HTTPError(503, exc.reason, exc.message, [(b"retry-after", b"5")]) from None
        except AllocationRefused as exc:
            counter.labels("refused").inc()
            status = 409 if exc.reason == "idempotency_conflict" else 422
            raise HTTPError(status, exc.reason, exc.message) from None
        counter.labels("created" if allocation.created else "reused").inc()
        return (201 if allocation.created else 200), _allocation_json(allocation)

    async def get_room(self, scope, body, room_id: str) -> Response:
        room = self.rooms.get(room_id)
        allocation = self.placement.describe(room_id) if room is not None else None
        if room is None or allocation is None:
            raise HTTPError(404, "room_not_found", f"no room {room_id!r} on this node")
        stats = room.statistics()
        return 200, {
            **_allocation_json(allocation),
            "status": "closing" if room.closed else "open",
            "tick": stats.tick,
            "players": [
                {"id": p.id, "name": p.name, "connected": p.link is not None and not p.link.closed}
                for p in room.players
            ],
            "statistics": asdict(stats),
        }

    async def list_rooms(self, scope, body) -> Response:
        query = validation.list_query(query_pairs(scope))
        matching = []
        for room in sorted(self.rooms.rooms(), key=lambda r: r.room_id):
            if query.after is not None and room.room_id <= query.after:
                continue
            if query.game is not None and room.game.name != query.game:
                continue
            allocation = self.placement.describe(room.room_id)
            if allocation is None or any(allocation.labels.get(k) != v for k, v in query.labels.items()):
                continue
            matching.append(allocation)
            if len(matching) > query.limit:
                break
        page, more = matching[: query.limit], len(matching) > query.limit
        rooms = []
        for allocation in page:
            live = self.rooms.get(allocation.room_id)
            players = len(live.players) if live is not None else 0
            rooms.append({**_allocation_json(allocation), "players": players})
        return 200, {"rooms": rooms, "next_cursor": validation.encode_cursor(page[-1].room_id) if more else None}

    async def close_room(self, scope, body, room_id: str) -> Response:
        reason = validation.close_reason(query_pairs(scope))
        room_or_404(self.rooms, room_id)
        # False means the room's inbox is closed or full: it is ending anyway.
        if self.rooms.close(room_id, Code.ROOM_CLOSED, reason):
            log.info("control API: closing room %s", room_id)
        return 202, {"room_id": room_id, "status": "closing"}

    async def issue_tickets(self, scope, body, room_id: str) -> Response:
        secret = self.ticket_secret
        if not secret:
            raise HTTPError(409, "tickets_disabled", "this node has no ticket secret (--ticket-secret)")
        request = validation.tickets(_json(body))
        allocation = self.placement.describe(room_id)
        room = self.rooms.get(room_id)
        if allocation is None or room is None:
            raise HTTPError(404, "room_not_found", f"no room {room_id!r} on this node")
        if room.closed:
            raise HTTPError(409, "room_closing", f"room {room_id!r} is closing; allocate another")
        expires = int(self.clock()) + request.ttl_s
        key = secret.encode("utf-8")
        issued = {p: sign_ticket(key, room_id, p, expires, secrets.token_urlsafe(12)) for p in request.players}
        self.node_metrics.tickets_issued.inc(len(issued))
        return 200, {"room_id": room_id, "ws_url": allocation.ws_url, "tickets": issued, "expires_at": rfc3339(expires)}


def _allocation_json(allocation: Allocation) -> dict[str, Any]:
    return {
        "room_id": allocation.room_id,
        "node_id": allocation.node_id,
        "ws_url": allocation.ws_url,
        "game": allocation.game,
        "max_players": allocation.max_players,
        "tick_rate": allocation.tick_rate,
        "labels": dict(allocation.labels),
        "options": dict(allocation.options),
        "created_at": rfc3339(allocation.created_at),
    }


def _refuse(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise HTTPError(refusal.status, refusal.reason, refusal.message)


def _json(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise validation.BadRequest("the body is not valid JSON") from None
    except RecursionError:  # nested deeper than the interpreter's stack: not a request any route takes
        raise validation.BadRequest("the body's JSON is nested too deeply") from None


async def _read_body(receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            raise HTTPError(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        if not message.get("more_body", False):
            break
    return bytes(body)
