"""A room's recent snapshots and the encoding of deltas against them.

The ring holds the last ``size`` worlds with the game events of their tick.
For the newest tick, the shared part of the snapshot message is encoded once
per distinct baseline and reused for every client on that baseline (most
clients of a healthy room ack the previous tick, so a room usually encodes one
or two deltas per tick whatever its size).

Events travel with deltas: a delta from B to T carries the events of ticks
B+1..T. A client only acks ticks it applied, so a client never misses an event
as long as its baseline stays in the ring, even when the latest-wins outbox
replaced some of its snapshots. A full snapshot carries the events after
the tick the client last acked (``since``): the events are kept longer than
the worlds (``event_ticks``, which the room sizes to the ack timeout plus
the rejoin grace), so a client that fell back to a full snapshot, or
rejoined, still gets every event it has not seen; a client that never acked
(a newcomer) gets its tick's only.

Per-player views (tickroom.server.rooms.views): a tick recorded with its
views sends each player the world of its view, as a delta against the view
that same player had at its baseline tick. The encode is shared by every
player with the same (view now, baseline tick, view at the baseline): a
player whose view is unchanged and who acked the last tick shares it with
everyone else in that situation. An entity entering a player's view is new
against its baseline, so it arrives whole; one leaving is in "rm". A room
whose ring holds no views takes the shared path above, untouched.

The first player asking for a delta against a baseline that has views
triggers one batch for that baseline: the (view now, view then) pair of
every player the two ticks' views know is encoded in one vectorised pass
(tickroom.protocol.delta_batch), since in a healthy room nearly every
player acked the same tick. A pair the batch did not foresee (a player
neither tick's views know) and a full snapshot take encode_delta alone.

Protocol versions: a delta is encoded once, and packed once per protocol
version a client on that baseline speaks (version 1's map of keys,
version 2's positional envelope, tickroom.protocol.envelope).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from tickroom.protocol import envelope
from tickroom.protocol.codec import pack_snapshot_shared
from tickroom.protocol.delta import WorldState, encode_delta
from tickroom.protocol.delta_batch import encode_deltas
from tickroom.protocol.messages import NO_TICK, PROTOCOL_VERSION
from tickroom.protocol.schema import Schema
from tickroom.server.rooms.views import TickViews


class SnapshotHistory:
    """Owned by one room task; not shared."""

    def __init__(self, schema: Schema, size: int, event_ticks: int = 0) -> None:
        if size < 2:
            raise ValueError("history needs at least 2 ticks")
        self.schema = schema
        self.size = size
        self.event_ticks = max(size, event_ticks)
        self._worlds: dict[int, WorldState] = {}
        self._events: dict[int, list[list[Any]]] = {}
        self._order: deque[int] = deque()
        self._event_order: deque[int] = deque()
        self._fallback: dict[tuple[int, int], bytes] = {}  # (tick acked before, version) -> full snapshot
        self._full_fields: dict | None = None  # the newest tick's full snapshot fields, once encoded
        self._latest: WorldState | None = None
        self._shared: dict[tuple[int, int], bytes] = {}  # (base, version) -> payload
        self._shared_fields: dict[int, tuple[dict, list]] = {}  # base -> the delta's fields and events
        self._views: dict[int, TickViews] = {}  # ticks recorded with per-player views
        # (view, base, base's view) -> the delta's fields and events; with the version -> payload
        self._per_view_fields: dict[tuple[int, int, int], tuple[dict, list]] = {}
        self._per_view: dict[tuple[tuple[int, int, int], int], bytes] = {}
        self._batched: set[int] = set()  # baselines whose views were batch-encoded at the newest tick
        self.deltas_encoded = 0

    @property
    def latest(self) -> WorldState | None:
        return self._latest

    def record(self, world: WorldState, events: list[list[Any]], views: TickViews | None = None) -> None:
        """Add the newest tick (ticks only grow) with, if the game said what
        each player sees, its per-player ``views``; forget the oldest."""
        if self._latest is not None and world.tick <= self._latest.tick:
            raise ValueError(f"tick {world.tick} recorded after {self._latest.tick}")
        self._worlds[world.tick] = world
        self._events[world.tick] = events
        if views is not None:
            self._views[world.tick] = views
        self._order.append(world.tick)
        self._event_order.append(world.tick)
        while len(self._order) > self.size:
            old = self._order.popleft()
            del self._worlds[old]
            self._views.pop(old, None)
        while len(self._event_order) > self.event_ticks:
            del self._events[self._event_order.popleft()]
        self._latest = world
        self._shared.clear()
        self._fallback.clear()
        self._full_fields = None
        self._shared_fields.clear()
        self._per_view.clear()
        self._per_view_fields.clear()
        self._batched.clear()

    @property
    def per_player(self) -> bool:
        """Whether some tick in the ring has per-player views, so that
        players must be sent their own (``payload_for``)."""
        return bool(self._views)

    @property
    def distinct_views(self) -> int:
        """Distinct views at the newest tick; 0 without per-player views."""
        latest = self._latest
        views = self._views.get(latest.tick) if latest is not None else None
        return views.distinct if views is not None else 0

    def world_for(self, player_id: int, tick: int) -> WorldState:
        """The world ``player_id`` was (or is) sent at ``tick``: its view when
        that tick has views, else the whole world. Raises KeyError for a tick
        not in the ring."""
        views = self._views.get(tick)
        if views is None:
            return self._worlds[tick]
        return views.worlds[views.group(player_id)]

    def payload_for(self, player_id: int, base: int, since: int = NO_TICK, version: int = PROTOCOL_VERSION) -> bytes:
        """The latest tick's shared snapshot bytes (``version``'s) for
        ``player_id`` against ``base`` (from baseline_for), encoded once per
        (view now, base, view at base) and shared by every player in the
        same case. ``since``: the tick the player last acked, whose later
        events a full snapshot carries."""
        current = self._latest
        if current is None:
            raise LookupError("no snapshot recorded yet")
        views = self._views.get(current.tick)
        now = views.group(player_id) if views is not None else -1
        then = since  # a full snapshot's payload depends on the events it carries
        if base != NO_TICK:
            base_views = self._views.get(base)
            then = base_views.group(player_id) if base_views is not None else -1
        key = (now, base, then)
        payload = self._per_view.get((key, version))
        if payload is not None:
            return payload
        encoded = self._per_view_fields.get(key)
        if encoded is None and views is not None and base not in self._batched:
            base_views = self._views.get(base)
            if base_views is not None:
                self._encode_batch(views, base, base_views)
                encoded = self._per_view_fields.get(key)
        if encoded is None:
            world = views.worlds[now] if views is not None else current
            baseline = self.world_for(player_id, base) if base != NO_TICK else None
            encoded = (encode_delta(world, baseline, self.schema), self._events_after(base, since))
            self._per_view_fields[key] = encoded
            self.deltas_encoded += 1
        payload = _pack(version, current.tick, base, *encoded)
        self._per_view[(key, version)] = payload
        return payload

    def _encode_batch(self, views: TickViews, base: int, base_views: TickViews) -> None:
        """Encode, in one pass, the payloads of every (view now, view at
        ``base``) pair the players of either tick's views have."""
        self._batched.add(base)
        players = views.group_of.keys() | base_views.group_of.keys()
        pairs = sorted(
            {(views.group(p), base_views.group(p)) for p in players}
            - {(now, then) for (now, b, then) in self._per_view_fields if b == base}
        )
        if not pairs:
            return
        now_rows = [now for now, _ in pairs]
        then_rows = [then for _, then in pairs]
        hidden = views.hidden_rows(now_rows, base_views, then_rows)
        batch = encode_deltas(
            views.world, base_views.world, self.schema, views.masks[now_rows], base_views.masks[then_rows], hidden
        )
        events = self._events_after(base)
        for (now, then), fields in zip(pairs, batch, strict=True):
            self._per_view_fields[(now, base, then)] = (fields, events)
        self.deltas_encoded += len(pairs)

    def holds(self, tick: int) -> bool:
        """Whether the world of ``tick`` is still in the ring."""
        return tick in self._worlds

    def baseline_for(self, acked: int) -> int:
        """The baseline to encode against for a client that acked ``acked``:
        that tick if we still hold it, else NO_TICK (a full snapshot)."""
        if acked in self._worlds and self._latest is not None and acked < self._latest.tick:
            return acked
        return NO_TICK

    def shared_payload(self, base: int, since: int = NO_TICK, version: int = PROTOCOL_VERSION) -> bytes:
        """The latest tick's shared snapshot bytes (``version``'s, for
        ``finish_snapshot``) against ``base``: encoded once, packed once per
        version (a full snapshot once per ``since``, the tick acked before,
        for its events)."""
        if base == NO_TICK and since != NO_TICK:
            return self._fallback_payload(since, version)
        payload = self._shared.get((base, version))
        if payload is None:
            current = self._latest
            if current is None:
                raise LookupError("no snapshot recorded yet")
            encoded = self._shared_fields.get(base)
            if encoded is None:
                baseline = self._worlds[base] if base != NO_TICK else None
                encoded = (encode_delta(current, baseline, self.schema), self._events_after(base))
                self._shared_fields[base] = encoded
                self.deltas_encoded += 1
            payload = _pack(version, current.tick, base, *encoded)
            self._shared[(base, version)] = payload
        return payload

    def deltas_wanted(self, acks: Iterable[int]) -> list[tuple[int, WorldState, WorldState]]:
        """The shared deltas the newest tick will need for clients that
        acked ``acks`` and that are not encoded yet, as (base, current,
        baseline): for the node's stepper, which encodes the deltas of all
        its rooms in one pass (tickroom.protocol.delta_rooms) and hands them
        back with ``prime``. None with per-player views (their own batch)."""
        current = self._latest
        if current is None or self.per_player:
            return []
        wanted = {self.baseline_for(acked) for acked in acks}
        wanted.discard(NO_TICK)
        return [(base, current, self._worlds[base]) for base in sorted(wanted) if base not in self._shared_fields]

    def prime(self, base: int, fields: dict) -> None:
        """The newest tick's delta against ``base``, encoded elsewhere
        (exactly encode_delta's fields): shared_payload uses it."""
        self._shared_fields[base] = (fields, self._events_after(base))
        self.deltas_encoded += 1

    def _fallback_payload(self, since: int, version: int) -> bytes:
        """A full snapshot for a client that acked ``since`` (not in the ring)."""
        payload = self._fallback.get((since, version))
        if payload is None:
            current = self._latest
            if current is None:
                raise LookupError("no snapshot recorded yet")
            if self._full_fields is None:  # the world's part is the same whatever the events
                self._full_fields = encode_delta(current, None, self.schema)
                self.deltas_encoded += 1
            events = self._events_after(NO_TICK, since)
            payload = _pack(version, current.tick, NO_TICK, self._full_fields, events)
            self._fallback[(since, version)] = payload
        return payload

    def remembers(self, tick: int) -> bool:
        """Whether the events after ``tick`` are all still held (a client
        that acked it can be sent every event since)."""
        return bool(self._event_order) and self._event_order[0] <= tick + 1 and tick != NO_TICK

    def _events_after(self, base: int, since: int = NO_TICK) -> list[list[Any]]:
        tick = self._latest.tick  # type: ignore[union-attr]
        if base == NO_TICK and since != NO_TICK:
            base = since  # a full snapshot for a client that had ``since``: the events after it
        first = tick if base == NO_TICK else base + 1
        out: list[list[Any]] = []
        for t in range(first, tick + 1):
            out.extend(self._events.get(t, ()))
        return out


def _pack(version: int, tick: int, base: int, fields: dict, events: list) -> bytes:
    """The shared part of a snapshot in protocol ``version``."""
    if version >= 2:
        return envelope.pack_shared(tick, base, fields, events)
    return pack_snapshot_shared(tick, base, fields, events)
