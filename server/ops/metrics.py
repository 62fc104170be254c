"""Prometheus metrics, computed when scraped.

Nothing here runs on the tick path: rooms and connections keep plain integer
counters (``Room.statistics()``, ``Room.tick_durations``, the connection's
byte and message counts) and this collector reads them at scrape time. It
reads the room registry and the live connections through the narrow
``RoomSource`` and ``LiveConnections`` protocols below. Each node has its
own ``CollectorRegistry``, so tests run several servers in one process.

Counters must never go down, but rooms and connections come and go: the
final counts of ended ones are folded into running totals (rooms through
``RoomRegistry.ended``, connections through ``retire_connection``). Tick
durations reach the histograms the same way: each scrape folds in the
durations recorded since the previous one (``Room.ticks_timed`` says how
many of the room's ring buffer are new; at 20 Hz its 2048 entries cover a
scrape interval of 100 s).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Protocol

import numpy as np
import trio
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from tickroom.protocol.errors import Code
from tickroom.server.ops.checkpoint_lag import CheckpointedRooms, checkpoint_lag_family, checkpoint_lag_seconds
from tickroom.server.ops.failover_metrics import FailoverSource, failover_families
from tickroom.server.ops.overload import LoadGovernor, overload_families
from tickroom.server.rooms.admission import Admission
from tickroom.server.rooms.registry import RegistryConfig
from tickroom.server.rooms.room import Room
from tickroom.server.rooms.step_batch import StepBatcher, StepCounters
from tickroom.server.transport.connection import Connection

# Tick duration buckets, seconds: a 20 Hz tick has 50 ms; the budget per
# room tick is well under a millisecond.
TICK_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Histogram:
    """Cumulative bucket counts, fed in batches."""

    def __init__(self) -> None:
        self.counts = np.zeros(len(TICK_BUCKETS_S) + 1, dtype=np.int64)  # last: +Inf
        self.sum = 0.0

    def observe(self, values: np.ndarray) -> None:
        if len(values):
            # side="left": a value equal to a bound belongs in that bucket (le).
            index = np.searchsorted(TICK_BUCKETS_S, values, side="left")
            self.counts += np.bincount(index, minlength=len(self.counts))
            self.sum += float(values.sum())

    def add(self, other: _Histogram) -> None:
        self.counts += other.counts
        self.sum += other.sum


_BOUNDS = [repr(float(b)) for b in TICK_BUCKETS_S] + ["+Inf"]


def _buckets(counts: np.ndarray, _sum: float = 0.0) -> list[tuple[str, float]]:
    """Prometheus' cumulative (le, count) pairs."""
    return list(zip(_BOUNDS, np.cumsum(counts).astype(float).tolist(), strict=True))


@dataclass
class _RoomSeen:
    ticks_timed: int = 0
    histogram: _Histogram = field(default_factory=_Histogram)


_ROOM_COUNTERS = {
    # metric suffix -> (RoomStatistics field, help)
    "ticks": ("ticks", "Room ticks run"),
    "tick_overruns": ("overruns", "Ticks that finished after the next tick's deadline"),
    "tick_resyncs": ("resyncs", "Times a room gave up catching up and resynchronised"),
    "ticks_skipped": ("ticks_skipped", "Ticks dropped by resyncs"),
    "deltas_encoded": ("deltas_encoded", "Snapshot deltas encoded"),
    "game_messages_received": ("game_messages_received", "Game messages from players handed to their game"),
    "game_messages_sent": (
        "game_messages_sent",
        "Game messages sent (or logged for a player away) by games, one per target player",
    ),
    "game_messages_dropped": (
        "game_messages_dropped",
        "Game messages dropped: over a player's queue, out of the replay log of a player away, or unencodable",
    ),
}
_INPUT_REJECTIONS = {"stale": "inputs_stale", "over_limit": "inputs_over_limit"}
# Connection refusals shown from the start, at 0, so that a rate over them
# (the refusal-spike alert, the dashboard) has a series before the first one.
_ADMISSION_CODES = (Code.SERVER_FULL, Code.TOO_MANY_CONNECTIONS, Code.SERVER_OVERLOADED)


class RoomSource(Protocol):
    """What the metrics read of the room registry (tickroom.server.rooms.registry)."""

    config: RegistryConfig
    ended: deque[Room]  # rooms ended since the last scrape; the collector takes them
    crashes: int
    admission: Admission
    stepper: StepBatcher

    @property
    def taking_rooms(self) -> bool: ...

    def rooms(self) -> list[Room]: ...


class LiveConnections(Protocol):
    """The node's live connections (tickroom.server.transport.listener.ConnectionTable)."""

    refused_by_code: Tally[int]  # close code -> connections refused at admission or at their join

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Connection]: ...


class ServerMetrics:
    """The metrics of one node's ``rooms`` and ``connections``; ``render()``
    is the /metrics body."""

    def __init__(
        self,
        rooms: RoomSource,
        connections: LiveConnections,
        *,
        failover: FailoverSource | None = None,
        checkpoints: CheckpointedRooms | None = None,
        overload: LoadGovernor | None = None,
    ) -> None:
        self.rooms = rooms
        self.connections = connections
        self.failover = failover  # with --redis-url: the tickroom_failover_* families
        self.checkpoints = checkpoints  # with --redis-url: tickroom_failover_checkpoint_lag_seconds
        self.overload = overload  # the load governor: tickroom_accepting_players and its figures
        self.registry = CollectorRegistry(auto_describe=False)
        self.allocations = Counter(
            "tickroom_allocations", "Room allocation requests by result", ["result"], registry=self.registry
        )
        for result in ("created", "reused", "no_capacity", "refused"):
            self.allocations.labels(result)  # every series from the start, at 0
        self.tickets_issued = Counter(
            "tickroom_tickets_issued", "Join tickets signed by the control API", registry=self.registry
        )
        self._seen: dict[Room, _RoomSeen] = {}
        self._tick_histogram = _Histogram()
        self._retired_rooms: Tally[str] = Tally()
        self._retired_connections: Tally[str] = Tally()
        self._retired_refusals: Tally[int] = Tally()
        self.registry.register(self)

    def render(self) -> bytes:
        """The /metrics body, all on the calling thread (tests, small nodes)."""
        return generate_latest(self.registry)

    async def scrape(self) -> bytes:
        """The /metrics body. The room state is read here, on the trio
        thread, into plain numbers; building and formatting the families
        (most of the cost: ~0.3 s for 1,000 rooms) runs in a worker thread,
        so a scrape does not stall the rooms' ticks."""
        snapshot = self._gather()
        explicit = [*self.allocations.collect(), *self.tickets_issued.collect(), *self._node_families()]
        return await trio.to_thread.run_sync(_render, explicit, snapshot)

    def retire_connection(self, conn: Connection) -> None:
        """Fold an ended connection's counts into the totals."""
        self._retired_connections.update(_connection_counts(conn))
        self._retired_refusals.update(conn.refusals)

    # -- the collector ---------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's Collector protocol (used by ``render``)."""
        return iter([*_families(self._gather()), *self._node_families()])

    def _node_families(self) -> list[Metric]:
        """The failover's and the load governor's families. Trio thread only
        (the checkpoint lag reads the rooms' ticks)."""
        out = failover_families(self.failover.statistics()) if self.failover is not None else []
        out.extend(_stepper_families(self.rooms.stepper.counters))
        if self.overload is not None:
            out.extend(overload_families(self.overload))
        if self.checkpoints is not None:
            out.append(checkpoint_lag_family(checkpoint_lag_seconds(self.checkpoints)))
        return out

    def _gather(self) -> _Snapshot:
        """Read every counter once. Trio thread only: it reads the rooms."""
        registry = self.rooms
        while registry.ended:
            room = registry.ended.popleft()
            self._fold_durations(room)
            seen = self._seen.pop(room, None)
            if seen is not None:
                self._tick_histogram.add(seen.histogram)
            self._retired_rooms.update(_room_counts(room, room.statistics()))
        rooms = registry.rooms()
        live = set(rooms)
        for room in [r for r in self._seen if r not in live]:
            # Ended while the ended-rooms queue was full: keep its ticks.
            self._tick_histogram.add(self._seen.pop(room).histogram)
        snap = _Snapshot(
            rooms=len(rooms),
            capacity=registry.config.max_rooms,
            draining=int(not registry.taking_rooms),
            crashes=registry.crashes,
            connections=len(self.connections),
            room_totals=Tally(self._retired_rooms),
            conn_totals=Tally(self._retired_connections),
            refusals=Tally(self._retired_refusals),
            tickets_accepted=registry.admission.accepted,
            tickets_refused=dict(registry.admission.refused),
            connections_refused=dict(self.connections.refused_by_code),
        )
        overall = _Histogram()
        overall.add(self._tick_histogram)
        for room in rooms:
            stats = room.statistics()
            snap.players += stats.players
            snap.players_connected += stats.connected
            snap.room_totals.update(_room_counts(room, stats))
            self._fold_durations(room)
            histogram = self._seen[room].histogram
            overall.add(histogram)
            snap.per_room.append((room.room_id, histogram.counts.copy(), histogram.sum))
            snap.views.append((room.room_id, stats.distinct_views, stats.encodes_last_tick))
        snap.overall = (overall.counts, overall.sum)
        for conn in self.connections:
            snap.conn_totals.update(_connection_counts(conn))
            snap.refusals.update(conn.refusals)
        return snap

    def _fold_durations(self, room: Room) -> None:
        seen = self._seen.setdefault(room, _RoomSeen())
        new = room.ticks_timed - seen.ticks_timed
        if new > 0:
            durations = room.tick_durations
            take = min(new, len(durations))  # more than the ring holds: the oldest are lost
            # Only the new ones, newest first: the scrape costs what was ticked since the last.
            seen.histogram.observe(np.fromiter(islice(reversed(durations), take), dtype=np.float64, count=take))
            seen.ticks_timed = room.ticks_timed


@dataclass
class _Snapshot:
    """Every number a scrape shows, copied off the rooms and connections."""

    rooms: int
    capacity: int
    draining: int
    crashes: int
    connections: int
    room_totals: Tally[str]
    conn_totals: Tally[str]
    refusals: Tally[int]
    tickets_accepted: int
    tickets_refused: dict[str, int]
    connections_refused: dict[int, int]
    players: int = 0
    players_connected: int = 0
    overall: tuple[np.ndarray, float] = (np.zeros(0, dtype=np.int64), 0.0)
    per_room: list[tuple[str, np.ndarray, float]] = field(default_factory=list)
    views: list[tuple[str, int, int]] = field(default_factory=list)  # (room, distinct views, encodes) at its last tick


def _families(snap: _Snapshot) -> list[Metric]:
    """The metric families of a snapshot. Pure: any thread."""
    out: list[Metric] = [
        _gauge("tickroom_rooms", "Rooms on this node", snap.rooms),
        _gauge("tickroom_room_capacity", "Rooms this node may run", snap.capacity),
        _gauge("tickroom_players", "Players seated in rooms (connected or within the rejoin grace)", snap.players),
        _gauge("tickroom_players_connected", "Players with a live connection", snap.players_connected),
        _gauge("tickroom_connections", "Open client connections", snap.connections),
        _gauge("tickroom_draining", "1 while the node takes no new rooms", snap.draining),
        _counter("tickroom_room_crashes", "Rooms ended by an exception", snap.crashes),
        *_view_families(snap.views),
    ]
    totals, conn_totals = snap.room_totals, snap.conn_totals
    for suffix, (name, help_text) in _ROOM_COUNTERS.items():
        out.append(_counter(f"tickroom_{suffix}", help_text, totals[name]))
    out.append(_counter("tickroom_inputs_accepted", "Inputs applied to a simulation", totals["inputs_applied"]))
    rejected = CounterMetricFamily("tickroom_inputs_rejected", "Inputs not applied, by reason", labels=["reason"])
    for reason, name in _INPUT_REJECTIONS.items():
        rejected.add_metric([reason], totals[name])
    out.append(rejected)
    refused = CounterMetricFamily(
        "tickroom_messages_refused", "Client messages answered with an error, by code", labels=["code"]
    )
    for code, count in sorted(snap.refusals.items()):
        refused.add_metric([Code(code).name], count)
    out.append(refused)
    out.append(_connections_refused(snap.connections_refused))
    out.append(
        _counter("tickroom_bytes_received", "WebSocket bytes received from clients", conn_totals["bytes_received"])
    )
    out.append(_counter("tickroom_bytes_sent", "WebSocket bytes sent to clients", conn_totals["bytes_sent"]))
    out.append(_counter("tickroom_messages_received", "Client messages received", conn_totals["messages_received"]))
    out.append(_counter("tickroom_messages_sent", "Messages sent to clients", conn_totals["messages_sent"]))
    out.append(_counter("tickroom_tickets_accepted", "Join tickets that admitted a player", snap.tickets_accepted))
    tickets_refused = CounterMetricFamily(
        "tickroom_tickets_refused", "Join tickets refused, by reason", labels=["reason"]
    )
    for reason, count in sorted(snap.tickets_refused.items()):
        tickets_refused.add_metric([reason], count)
    out.append(tickets_refused)
    total = HistogramMetricFamily("tickroom_tick_duration_seconds", "Time one room tick took, all rooms")
    total.add_metric([], _buckets(*snap.overall), snap.overall[1])
    out.append(total)
    per_room = HistogramMetricFamily(
        "tickroom_room_tick_duration_seconds", "Time one room tick took, per live room", labels=["room"]
    )
    for room_id, counts, total_s in snap.per_room:
        per_room.add_metric([room_id], _buckets(counts, total_s), total_s)
    out.append(per_room)
    return out


def _connections_refused(by_code: dict[int, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(
        "tickroom_connections_refused",
        "Connections refused at admission (server full, per-address cap) or at their join, by close code",
        labels=["code"],
    )
    counts = {int(code): 0 for code in _ADMISSION_CODES} | by_code
    for code, count in sorted(counts.items()):
        family.add_metric([Code(code).name], count)
    return family


class _Families:
    """What generate_latest needs of a registry: ``collect()``."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _render(explicit: list[Metric], snap: _Snapshot) -> bytes:
    return generate_latest(_Families([*explicit, *_families(snap)]))


def _room_counts(room: Room, s) -> dict[str, int]:
    return {
        "ticks": room.ticks_timed,
        "overruns": s.overruns,
        "resyncs": s.resyncs,
        "ticks_skipped": s.ticks_skipped,
        "deltas_encoded": s.deltas_encoded,
        "game_messages_received": s.game_messages_received,
        "game_messages_sent": s.game_messages_sent,
        "game_messages_dropped": s.game_messages_dropped,
        "inputs_applied": s.inputs_applied,
        "inputs_stale": s.inputs_stale,
        "inputs_over_limit": s.inputs_over_limit,
    }


def _connection_counts(conn: Connection) -> dict[str, int]:
    out = conn.ws.outbox.statistics()
    return {
        "bytes_received": conn.ws.bytes_received,
        "bytes_sent": out.bytes_sent,
        "messages_received": conn.messages_received,
        "messages_sent": out.frames_sent,
    }


def _view_families(views: list[tuple[str, int, int]]) -> list[Metric]:
    """Per-player views (docs/games.md): distinct views and snapshot
    encodes at each live room's last tick, per room and summed."""
    distinct = GaugeMetricFamily(
        "tickroom_room_distinct_views", "Distinct per-player views at the room's last tick (0: one shared view)",
        labels=["room"],
    )  # fmt: skip
    encodes = GaugeMetricFamily(
        "tickroom_room_encodes_per_tick", "Snapshot payloads the room's last tick encoded", labels=["room"]
    )
    for room_id, views_now, encoded in views:
        distinct.add_metric([room_id], views_now)
        encodes.add_metric([room_id], encoded)
    return [
        _gauge("tickroom_distinct_views", "Distinct per-player views at the live rooms' last ticks, summed",
               sum(v for _, v, _ in views)),
        _gauge("tickroom_encodes_per_tick", "Snapshot payloads encoded by the live rooms' last ticks, summed",
               sum(e for _, _, e in views)),
        distinct,
        encodes,
    ]  # fmt: skip


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _stepper_families(counters: StepCounters) -> list[Metric]:
    """The node's stepper (tickroom.server.rooms.step_batch)."""
    return [
        _counter(
            "tickroom_room_steps_together", "Room steps done by a batched call of their game", counters.rooms_together
        ),
        _counter("tickroom_room_steps_alone", "Room steps done room by room", counters.rooms_alone),
        _counter(
            "tickroom_deltas_encoded_together",
            "Room deltas encoded in the stepper's one pass over all its rooms",
            counters.deltas_together,
        ),
        _counter(
            "tickroom_step_batch_failures",
            "Batched calls that raised: a game's (its rooms were then stepped one by one) or the delta encoder's",
            counters.batch_failures + counters.encode_failures,
        ),
    ]


def _counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_text, value=value)


__all__ = ["CONTENT_TYPE", "ServerMetrics", "TICK_BUCKETS_S"]
