"""The control API's routes for the operator console (``/console``): kick a
player, a room's tick times, the cluster's nodes, and any node's rooms
through this node (``/v1/nodes/{node_id}/...``, forwarded by
tickroom.server.control.node_proxy).

Handlers are looked up by the names of tickroom.server.control.api.ROUTES.
A ``/v1/nodes/{node_id}/...`` call for this node is answered by the same
handler as its ``/v1/...`` route (``Here``), so both answer alike.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any, Protocol

from tickroom.server.cluster.store.base import StoreUnavailable
from tickroom.server.control import validation
from tickroom.server.control.node_proxy import NodeCallFailed, NodeProxy
from tickroom.server.control.nodes import NodeDirectory
from tickroom.server.control.routing import Handler, HTTPError, Response, Rooms, query_pairs, room_or_404

log = logging.getLogger("tickroom.server.control")


class Here(Protocol):
    """This node's own room routes (tickroom.server.control.api.ControlAPI)."""

    async def list_rooms(self, scope: Any, body: bytes) -> Response: ...

    async def get_room(self, scope: Any, body: bytes, room_id: str) -> Response: ...

    async def close_room(self, scope: Any, body: bytes, room_id: str) -> Response: ...

    async def drain(self, scope: Any, body: bytes) -> Response: ...


class ConsoleRoutes:
    """The console's routes over ``rooms`` and ``nodes`` (None: the node
    routes answer 404); ``api_key`` is passed on to the other nodes (the
    cluster shares one)."""

    def __init__(self, *, rooms: Rooms, here: Here, nodes: NodeDirectory | None, api_key: str | None) -> None:
        self.rooms = rooms
        self.here = here
        self.node_directory = nodes
        # The other nodes' rooms, with the same key (the cluster shares one).
        self.node_proxy = NodeProxy(nodes, api_key=api_key) if nodes is not None else None

    # -- this node's rooms --------------------------------------------------------

    async def kick_player(self, scope: Any, body: bytes, room_id: str, player_id: str) -> Response:
        """``DELETE /v1/rooms/{id}/players/{player}``: remove one player (its
        connection closes with 4108 KICKED and the reason; its session ends)."""
        reason = validation.kick_reason(query_pairs(scope))
        room = room_or_404(self.rooms, room_id)
        pid = int(player_id) if player_id.isdigit() and len(player_id) <= 10 else None
        if pid is None or all(p.id != pid for p in room.players):
            raise HTTPError(404, "player_not_found", f"no player {player_id!r} in room {room_id!r}")
        if not room.request_kick(pid, reason):
            raise HTTPError(
                503, "room_busy", f"room {room_id!r} is closing or too busy; retry", [(b"retry-after", b"1")]
            )
        log.info("control API: kicking player %d from room %s", pid, room_id)
        return 202, {"room_id": room_id, "player": pid, "status": "kicking"}

    async def room_tick_times(self, scope: Any, body: bytes, room_id: str) -> Response:
        """``GET /v1/rooms/{id}/tick-times?after=N``: the durations of the
        room's ticks timed after its N-th (all it keeps when N is absent or
        too old: the newest 2048), for the console's live chart. ``timed``
        is the count to pass as ``after`` next time."""
        room = room_or_404(self.rooms, room_id)
        after = validation.tick_times_after(query_pairs(scope, keep_blank_values=False))
        timed = room.ticks_timed
        durations = list(room.tick_durations)  # a copy: the room appends on the same thread, never meanwhile
        new = len(durations) if after is None else max(0, min(timed - after, len(durations)))
        return 200, {
            "room_id": room_id,
            "tick": room.statistics().tick,
            "timed": timed,
            "tick_ms": [round(d * 1e3, 4) for d in durations[len(durations) - new :]],
        }

    # -- the cluster ------------------------------------------------------------

    async def list_nodes(self, scope: Any, body: bytes) -> Response:
        """``GET /v1/nodes``: the cluster's nodes from its Redis registry
        (with --redis-url), else this node alone."""
        if self.node_directory is None:
            raise HTTPError(404, "not_found", "this API lists no nodes")
        try:
            nodes = await self.node_directory.nodes()
        except StoreUnavailable as exc:
            raise HTTPError(503, "store_unavailable", f"cannot read the node registry: {exc}") from None
        return 200, {"nodes": [asdict(node) for node in nodes], "this_node": self.node_directory.node_id}

    # -- any node's rooms (the console's cluster view) ---------------------------

    async def node_list_rooms(self, scope: Any, body: bytes, node_id: str) -> Response:
        """``GET /v1/nodes/{node}/rooms``: ``GET /v1/rooms`` of that node."""
        return await self._on_node(scope, body, node_id, ("v1", "rooms"), "GET", self.here.list_rooms)

    async def node_get_room(self, scope: Any, body: bytes, node_id: str, room_id: str) -> Response:
        """``GET /v1/nodes/{node}/rooms/{id}``: ``GET /v1/rooms/{id}`` of that node."""
        path = ("v1", "rooms", room_id)
        return await self._on_node(scope, body, node_id, path, "GET", self.here.get_room, room_id=room_id)

    async def node_close_room(self, scope: Any, body: bytes, node_id: str, room_id: str) -> Response:
        """``DELETE /v1/nodes/{node}/rooms/{id}``: ``DELETE /v1/rooms/{id}`` of that node."""
        path = ("v1", "rooms", room_id)
        return await self._on_node(scope, body, node_id, path, "DELETE", self.here.close_room, room_id=room_id)

    async def node_room_tick_times(self, scope: Any, body: bytes, node_id: str, room_id: str) -> Response:
        """``GET /v1/nodes/{node}/rooms/{id}/tick-times``: that node's answer."""
        path = ("v1", "rooms", room_id, "tick-times")
        return await self._on_node(scope, body, node_id, path, "GET", self.room_tick_times, room_id=room_id)

    async def node_kick_player(self, scope: Any, body: bytes, node_id: str, room_id: str, player_id: str) -> Response:
        """``DELETE /v1/nodes/{node}/rooms/{id}/players/{player}``: that node's kick."""
        path = ("v1", "rooms", room_id, "players", player_id)
        return await self._on_node(
            scope, body, node_id, path, "DELETE", self.kick_player, room_id=room_id, player_id=player_id
        )

    async def node_drain(self, scope: Any, body: bytes, node_id: str) -> Response:
        """``POST /v1/nodes/{node}/drain``: ``POST /v1/drain`` of that node."""
        return await self._on_node(scope, body, node_id, ("v1", "drain"), "POST", self.here.drain)

    async def _on_node(
        self,
        scope: Any,
        body: bytes,
        node_id: str,
        path: tuple[str, ...],
        method: str,
        here: Handler,
        **params: str,
    ) -> Response:
        """The call on ``node_id``: answered by ``here`` when that is this
        node, else forwarded to it (tickroom.server.control.node_proxy) and
        its answer passed back, its errors as they are."""
        if self.node_directory is None or self.node_proxy is None:
            raise HTTPError(404, "not_found", "this API lists no nodes")
        if node_id == self.node_directory.node_id:
            return await here(scope, body, **params)
        query = query_pairs(scope)
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
