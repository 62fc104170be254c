"""Where a new room goes: the ``Placement`` protocol and its one-node version.

The control API asks a Placement for a room and never calls the registry's
``create`` itself, so the cluster placement (tickroom.server.cluster.placement:
choose the node with the most free capacity from the shared node registry,
create the room there) replaces ``LocalPlacement`` without touching the HTTP
layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tickroom.protocol.errors import Code
from tickroom.server.rooms.registry import RoomRegistry
from tickroom.server.rooms.room import JoinRefused

IDEMPOTENCY_KEYS_KEPT = 10_000  # newest keys remembered; older ones allocate afresh


@dataclass(frozen=True)
class AllocationRequest:
    """A matchmaker's request for a room. None fields take the node's defaults."""

    game: str | None = None
    max_players: int | None = None
    tick_rate: int | None = None
    seed: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # the game's room options


@dataclass(frozen=True)
class Allocation:
    room_id: str
    node_id: str
    ws_url: str
    game: str
    max_players: int
    tick_rate: int
    labels: Mapping[str, str]
    created_at: float  # unix seconds
    created: bool  # False: an earlier request with the same idempotency key made it
    options: Mapping[str, Any] = field(default_factory=dict)  # the room's game options, complete


class NoCapacity(Exception):
    """No node can take the room. ``reason`` is a short label
    (draining, max_rooms); ``message`` says it for humans."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class AllocationRefused(Exception):
    """The request itself is wrong (unknown game, idempotency key reused with
    another request): the caller's fault, not capacity."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Placement(Protocol):
    async def allocate(self, request: AllocationRequest, *, forwarded: bool = False) -> Allocation:
        """Create a room (or return the one made for the same idempotency
        key). Raises NoCapacity or AllocationRefused. ``forwarded``: another
        node chose this one (tickroom.server.cluster.placement); allocate here."""
        ...

    def describe(self, room_id: str) -> Allocation | None:
        """The allocation view of a room on this node, or None."""
        ...


class LocalPlacement:
    """Every room on this node."""

    def __init__(self, registry: RoomRegistry, *, node_id: str, ws_url: str) -> None:
        self.registry = registry
        self.node_id = node_id
        self.ws_url = ws_url
        # key -> (request, room id). A dict keeps insertion order: the oldest
        # key is dropped first when full.
        self._keys: dict[str, tuple[AllocationRequest, str]] = {}

    def has_room_for_key(self, key: str) -> bool:
        """Whether an earlier request with this idempotency key made a room
        here that still runs."""
        found = self._keys.get(key)
        room = self.registry.get(found[1]) if found is not None else None
        return room is not None and not room.closed

    async def allocate(self, request: AllocationRequest, *, forwarded: bool = False) -> Allocation:
        key = request.idempotency_key
        if key is not None and key in self._keys:
            earlier, room_id = self._keys[key]
            if dataclasses.replace(earlier, seed=None) != dataclasses.replace(request, seed=None) or (
                request.seed is not None and request.seed != earlier.seed
            ):
                raise AllocationRefused(
                    "idempotency_conflict", "this idempotency_key was used with a different request"
                )
            found = self.describe(room_id)
            room = self.registry.get(room_id)
            if found is not None and room is not None and not room.closed:
                return dataclasses.replace(found, created=False)
            # The room has ended (or is closing): the key is free again.
            del self._keys[key]
        base = self.registry.config.room
        room_config = dataclasses.replace(
            base,
            max_players=request.max_players or base.max_players,
            tick_rate=request.tick_rate or base.tick_rate,
        )
        try:
            room = self.registry.create(
                None,
                request.game,
                seed=request.seed,
                config=room_config,
                labels=request.labels,
                options=request.options,
            )
        except JoinRefused as exc:
            if exc.code == Code.SERVER_FULL:
                reason = "max_rooms" if self.registry.taking_rooms else "draining"
                raise NoCapacity(reason, exc.message) from None
            if exc.code == Code.UNKNOWN_GAME:
                raise AllocationRefused("unknown_game", exc.message) from None
            raise AllocationRefused("refused", exc.message) from None
        if key is not None:
            if len(self._keys) >= IDEMPOTENCY_KEYS_KEPT:
                del self._keys[next(iter(self._keys))]
            self._keys[key] = (request, room.room_id)
        allocation = self.describe(room.room_id)
        assert allocation is not None
        return allocation

    def describe(self, room_id: str) -> Allocation | None:
        """The allocation view of a room on this node (closing ones too,
        until they end), or None."""
        room = self.registry.get(room_id)
        meta = self.registry.meta(room_id)
        if room is None or meta is None:
            return None
        return Allocation(
            room_id=room.room_id,
            node_id=self.node_id,
            ws_url=self.ws_url,
            game=room.game.name,
            max_players=room.config.max_players,
            tick_rate=room.config.tick_rate,
            labels=dict(meta.labels),
            created_at=meta.created_at,
            created=True,
            options=dict(room.game.config.options),
        )
