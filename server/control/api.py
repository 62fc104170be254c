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
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl

from tickroom.protocol.errors import Code
from tickroom.protocol.tickets import sign_ticket
from tickroom.server.cluster.store.base import StoreUnavailable
from tickroom.server.control import validation
from tickroom.server.control.auth import PUBLIC_PATHS, Refusal, authorized, body_refusal, browser_refusal
from tickroom.server.control.console import CONSOLE_PATH, console_app
from tickroom.server.control.demo_page import answer_lifespan, handles, web_app
from tickroom.server.control.node_proxy import NodeCallFailed, NodeProxy
from tickroom.server.control.nodes import NodeDirectory
from tickroom.server.control.serve import MAX_BODY_BYTES
from tickroom.server.ops.metrics import CONTENT_TYPE, ServerMetrics
from tickroom.server.rooms.game_catalog import GameCatalog
from tickroom.server.rooms.game_hooks import SignalError
from tickroom.server.rooms.placement import Allocation, AllocationRefused, NoCapacity, Placement
from tickroom.server.rooms.room import Room

log = logging.getLogger("tickroom.server.control")


class HTTPError(Exception):
    def __init__(
        self, status: int, reason: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or []


Response = tuple[int, Any]  # (status, JSON value)
FORWARDED_HEADER = b"x-tickroom-forwarded"  # tickroom.server.cluster.placement.FORWARDED_HEADER, as ASGI spells it
_PARAM = re.compile(r"\{(\w+)\}")
_PARAM_RE = r"(?P<\1>[A-Za-z0-9_.:-]{1,64})"  # every path parameter is a room, node or player id


def rfc3339(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Rooms(Protocol):
    """What the API reads and asks of the room registry (tickroom.server.rooms.registry)."""

    @property
    def taking_rooms(self) -> bool: ...

    def get(self, room_id: str) -> Room | None: ...

    def rooms(self) -> list[Room]: ...

    def close(self, room_id: str, code: Code, reason: str) -> bool: ...

    def stop_taking_rooms(self) -> None: ...


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
    ) -> None:
        self.rooms = rooms
        # The games this node runs (GET /v1/games; allocations' options are
        # checked against them). None: the built-in and installed ones.
        self.games = games if games is not None else GameCatalog.discover()
        self.placement = placement
        self.health = health
        self.node_metrics = metrics
        self.api_key = api_key
        self.ticket_secret = ticket_secret
        self.clock = clock  # unix seconds, for ticket expiries
        self.node_directory = nodes
        # The other nodes' rooms, with the same key (the cluster shares one).
        self.node_proxy = NodeProxy(nodes, api_key=api_key) if nodes is not None else None
        # /metrics names every room, and a room id is all a client needs to
        # join a client-created room: --metrics-need-key puts it behind the key.
        self.public_paths = PUBLIC_PATHS - {"/metrics"} if metrics_need_key and api_key else PUBLIC_PATHS
        self.routes: list[tuple[str, str, Callable[..., Awaitable[Response]]]] = [
            (method, template, getattr(self, name)) for method, template, name in ROUTES
        ]
        self._web = web_app()
        self._console = console_app()
        self._patterns = [re.compile(_PARAM.sub(_PARAM_RE, template)) for _, template, _ in self.routes]

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

    def _route(self, scope) -> tuple[Callable[..., Awaitable[Response]], dict[str, str]]:
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
        return 200, {"status": "ready", "ready": True}

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
        query = validation.list_query(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
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
        reason = validation.close_reason(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        room = self.rooms.get(room_id)
        if room is None:
            raise HTTPError(404, "room_not_found", f"no room {room_id!r} on this node")
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

    # -- games -----------------------------------------------------------------

    async def list_games(self, scope, body) -> Response:
        """``GET /v1/games``: the games this node runs, with their input
        fields, components and option schema (what ``options`` may hold)."""
        return 200, {"games": self.games.describe(), "default": self.games.default}

    # -- signals -----------------------------------------------------------------

    async def signal_room(self, scope, body, room_id: str) -> Response:
        """``POST /v1/rooms/{room_id}/signal``: hand a small JSON object to
        the room's game (its ``on_signal``) at the room's next tick and answer
        with the game's reply. Bounded: a body of at most
        validation.MAX_SIGNAL_BYTES, an answer of at most 16 KiB, a wait of at
        most tickroom.server.rooms.room_signals.SIGNAL_TIMEOUT_S."""
        data = validation.signal(body)
        room = self.rooms.get(room_id)
        if room is None:
            raise HTTPError(404, "room_not_found", f"no room {room_id!r} on this node")
        try:
            answer = await room.signal(data)
        except SignalError as exc:
            status, headers = _SIGNAL_ERRORS[exc.reason]
            raise HTTPError(status, exc.reason, exc.message, headers) from None
        return 200, {"room_id": room_id, "answer": answer}

    # -- the operator console ----------------------------------------------------

    async def kick_player(self, scope, body, room_id: str, player_id: str) -> Response:
        """``DELETE /v1/rooms/{id}/players/{player}``: remove one player (its
        connection closes with 4108 KICKED and the reason; its session ends)."""
        reason = validation.kick_reason(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        room = self.rooms.get(room_id)
        if room is None:
            raise HTTPError(404, "room_not_found", f"no room {room_id!r} on this node")
        pid = int(player_id) if player_id.isdigit() and len(player_id) <= 10 else None
        if pid is None or all(p.id != pid for p in room.players):
            raise HTTPError(404, "player_not_found", f"no player {player_id!r} in room {room_id!r}")
        if not room.request_kick(pid, reason):
            raise HTTPError(
                503, "room_busy", f"room {room_id!r} is closing or too busy; retry", [(b"retry-after", b"1")]
            )
        log.info("control API: kicking player %d from room %s", pid, room_id)
        return 202, {"room_id": room_id, "player": pid, "status": "kicking"}

    async def list_nodes(self, scope, body) -> Response:
        """``GET /v1/nodes``: the cluster's nodes from its Redis registry
        (with --redis-url), else this node alone."""
        if self.node_directory is None:
            raise HTTPError(404, "not_found", "this API lists no nodes")
        try:
            nodes = await self.node_directory.nodes()
        except StoreUnavailable as exc:
            raise HTTPError(503, "store_unavailable", f"cannot read the node registry: {exc}") from None
        return 200, {"nodes": [asdict(node) for node in nodes], "this_node": self.node_directory.node_id}

    async def room_tick_times(self, scope, body, room_id: str) -> Response:
        """``GET /v1/rooms/{id}/tick-times?after=N``: the durations of the
        room's ticks timed after its N-th (all it keeps when N is absent or
        too old: the newest 2048), for the console's live chart. ``timed``
        is the count to pass as ``after`` next time."""
        room = self.rooms.get(room_id)
        if room is None:
            raise HTTPError(404, "room_not_found", f"no room {room_id!r} on this node")
        after = validation.tick_times_after(parse_qsl(scope["query_string"].decode("latin-1")))
        timed = room.ticks_timed
        durations = list(room.tick_durations)  # a copy: the room appends on the same thread, never meanwhile
        new = len(durations) if after is None else max(0, min(timed - after, len(durations)))
        return 200, {
            "room_id": room_id,
            "tick": room.statistics().tick,
            "timed": timed,
            "tick_ms": [round(d * 1e3, 4) for d in durations[len(durations) - new :]],
        }

    # -- any node's rooms (the console's cluster view) ---------------------------

    async def node_list_rooms(self, scope, body, node_id: str) -> Response:
        """``GET /v1/nodes/{node}/rooms``: ``GET /v1/rooms`` of that node."""
        return await self._on_node(scope, body, node_id, ("v1", "rooms"), "GET", self.list_rooms)

    async def node_get_room(self, scope, body, node_id: str, room_id: str) -> Response:
        """``GET /v1/nodes/{node}/rooms/{id}``: ``GET /v1/rooms/{id}`` of that node."""
        return await self._on_node(
            scope, body, node_id, ("v1", "rooms", room_id), "GET", self.get_room, room_id=room_id
        )

    async def node_close_room(self, scope, body, node_id: str, room_id: str) -> Response:
        """``DELETE /v1/nodes/{node}/rooms/{id}``: ``DELETE /v1/rooms/{id}`` of that node."""
        path = ("v1", "rooms", room_id)
        return await self._on_node(scope, body, node_id, path, "DELETE", self.close_room, room_id=room_id)

    async def node_room_tick_times(self, scope, body, node_id: str, room_id: str) -> Response:
        """``GET /v1/nodes/{node}/rooms/{id}/tick-times``: that node's answer."""
        path = ("v1", "rooms", room_id, "tick-times")
        return await self._on_node(scope, body, node_id, path, "GET", self.room_tick_times, room_id=room_id)

    async def node_kick_player(self, scope, body, node_id: str, room_id: str, player_id: str) -> Response:
        """``DELETE /v1/nodes/{node}/rooms/{id}/players/{player}``: that node's kick."""
        path = ("v1", "rooms", room_id, "players", player_id)
        return await self._on_node(
            scope, body, node_id, path, "DELETE", self.kick_player, room_id=room_id, player_id=player_id
        )

    async def node_drain(self, scope, body, node_id: str) -> Response:
        """``POST /v1/nodes/{node}/drain``: ``POST /v1/drain`` of that node."""
        return await self._on_node(scope, body, node_id, ("v1", "drain"), "POST", self.drain)

    async def _on_node(
        self,
        scope,
        body: bytes,
        node_id: str,
        path: tuple[str, ...],
        method: str,
        here: Callable[..., Awaitable[Response]],
        **params: str,
    ) -> Response:
        """The call on ``node_id``: answered by ``here`` when that is this
        node, else forwarded to it (tickroom.server.control.node_proxy) and
        its answer passed back, its errors as they are."""
        if self.node_directory is None or self.node_proxy is None:
            raise HTTPError(404, "not_found", "this API lists no nodes")
        if node_id == self.node_directory.node_id:
            return await here(scope, body, **params)
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        try:
            node = await self.node_proxy.find(node_id)
            answer = await self.node_proxy.call(node, method, path, query)
        except NodeCallFailed as exc:
            raise HTTPError(exc.status, exc.reason, exc.message) from None
        except StoreUnavailable as exc:
            raise HTTPError(503, "store_unavailable", f"cannot read the node registry: {exc}") from None
        if answer.status >= 400:
            error = answer.body if isinstance(answer.body, dict) else {}
            reason, message = (
                str(error.get("reason", "node_error")),
                str(error.get("error", f"node {node_id!r} answered {answer.status}")),
            )
            raise HTTPError(answer.status, reason, message, answer.headers)
        return answer.status, answer.body


# A signal the room could not answer: status and headers by SignalError.reason.
_SIGNAL_ERRORS: dict[str, tuple[int, list[tuple[bytes, bytes]]]] = {
    "room_busy": (503, [(b"retry-after", b"1")]),
    "room_closing": (409, []),
    "signal_timeout": (504, []),
    "signal_unsupported": (422, []),
    "signal_failed": (500, []),
}


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
