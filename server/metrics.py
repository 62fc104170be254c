"""Prometheus metrics, computed when scraped.

Nothing here runs on the tick path: rooms and connections keep plain integer
counters (``Room.statistics()``, ``Room.tick_durations``, the connection's
byte and message counts) and this collector reads them at scrape time. Each
GameServer has its own ``CollectorRegistry``, so tests run several servers
in one process.

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
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Iterator

import numpy as np
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from protocol.errors import Code

if TYPE_CHECKING:
    from .app import GameServer
    from .connection import Connection
    from .room import Room

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

    def buckets(self) -> list[tuple[str, float]]:
        bounds = [repr(float(b)) for b in TICK_BUCKETS_S] + ["+Inf"]
        return list(zip(bounds, np.cumsum(self.counts).astype(float).tolist()))


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
}
_INPUT_REJECTIONS = {"stale": "inputs_stale", "over_limit": "inputs_over_limit"}
_CONNECTION_COUNTERS = ("bytes_received", "bytes_sent", "messages_received", "messages_sent", "inputs_dropped")


class ServerMetrics:
    """The metrics of one GameServer; ``render()`` is the /metrics body."""

    def __init__(self, server: GameServer) -> None:
        self.server = server
        self.registry = CollectorRegistry(auto_describe=False)
        self.allocations = Counter(
            "tickroom_allocations", "Room allocation requests by result", ["result"], registry=self.registry
        )
        for result in ("created", "reused", "no_capacity", "refused"):
            self.allocations.labels(result)  # every series from the start, at 0
        self.tickets_issued = Counter("tickroom_tickets_issued", "Join tickets signed by the control API", registry=self.registry)
        self._seen: dict[Room, _RoomSeen] = {}
        self._tick_histogram = _Histogram()
        self._retired_rooms: Tally[str] = Tally()
        self._retired_connections: Tally[str] = Tally()
        self._retired_refusals: Tally[int] = Tally()
        self.registry.register(self)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def retire_connection(self, conn: Connection) -> None:
        """Fold an ended connection's counts into the totals."""
        self._retired_connections.update(_connection_counts(conn))
        self._retired_refusals.update(conn.refusals)

    # -- the collector ---------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        registry = self.server.registry
        while registry.ended:
            room = registry.ended.popleft()
            self._fold_durations(room)
            seen = self._seen.pop(room, None)
            if seen is not None:
                self._tick_histogram.add(seen.histogram)
            self._retired_rooms.update(_room_counts(room))
        rooms = registry.rooms()
        for room in rooms:
            self._fold_durations(room)
        for room in [r for r in self._seen if r not in set(rooms)]:
            # Ended while the ended-rooms queue was full: keep its ticks.
            self._tick_histogram.add(self._seen.pop(room).histogram)
        stats = [room.statistics() for room in rooms]
        connections = list(self.server.connections)

        yield _gauge("tickroom_rooms", "Rooms on this node", len(rooms))
        yield _gauge("tickroom_room_capacity", "Rooms this node may run", registry.config.max_rooms)
        yield _gauge("tickroom_players", "Players seated in rooms (connected or within the rejoin grace)", sum(s.players for s in stats))
        yield _gauge("tickroom_players_connected", "Players with a live connection", sum(s.connected for s in stats))
        yield _gauge("tickroom_connections", "Open client connections", len(connections))
        yield _gauge("tickroom_draining", "1 while the node takes no new rooms", int(registry.draining))
        yield _counter("tickroom_room_crashes", "Rooms ended by an exception", registry.crashes)

        live_rooms: Tally[str] = Tally()
        for room in rooms:
            live_rooms.update(_room_counts(room))
        totals = self._retired_rooms + live_rooms
        for suffix, (name, help_text) in _ROOM_COUNTERS.items():
            yield _counter(f"tickroom_{suffix}", help_text, totals[name])
        yield _counter("tickroom_inputs_accepted", "Inputs applied to a simulation", totals["inputs_applied"])

        live_conns: Tally[str] = Tally()
        refusals = Tally(self._retired_refusals)
        for conn in connections:
            live_conns.update(_connection_counts(conn))
            refusals.update(conn.refusals)
        conn_totals = self._retired_connections + live_conns
        rejected = CounterMetricFamily("tickroom_inputs_rejected", "Inputs not applied, by reason", labels=["reason"])
        for reason, name in _INPUT_REJECTIONS.items():
            rejected.add_metric([reason], totals[name])
        rejected.add_metric(["room_busy"], conn_totals["inputs_dropped"])
        yield rejected
        refused = CounterMetricFamily("tickroom_messages_refused", "Client messages answered with an error, by code", labels=["code"])
        for code, count in sorted(refusals.items()):
            refused.add_metric([Code(code).name], count)
        yield refused
        yield _counter("tickroom_bytes_received", "WebSocket bytes received from clients", conn_totals["bytes_received"])
        yield _counter("tickroom_bytes_sent", "WebSocket bytes sent to clients", conn_totals["bytes_sent"])
        yield _counter("tickroom_messages_received", "Client messages received", conn_totals["messages_received"])
        yield _counter("tickroom_messages_sent", "Messages sent to clients", conn_totals["messages_sent"])

        admission = registry.admission
        yield _counter("tickroom_tickets_accepted", "Join tickets that admitted a player", admission.accepted)
        tickets_refused = CounterMetricFamily("tickroom_tickets_refused", "Join tickets refused, by reason", labels=["reason"])
        for reason, count in sorted(admission.refused.items()):
            tickets_refused.add_metric([reason], count)
        yield tickets_refused

        overall = _Histogram()
        overall.add(self._tick_histogram)
        per_room = HistogramMetricFamily(
            "tickroom_room_tick_duration_seconds", "Time one room tick took, per live room", labels=["room"]
        )
        for room in rooms:
            histogram = self._seen[room].histogram
            overall.add(histogram)
            per_room.add_metric([room.room_id], histogram.buckets(), histogram.sum)
        total = HistogramMetricFamily("tickroom_tick_duration_seconds", "Time one room tick took, all rooms")
        total.add_metric([], overall.buckets(), overall.sum)
        yield total
        yield per_room

    def _fold_durations(self, room: Room) -> None:
        seen = self._seen.setdefault(room, _RoomSeen())
        new = room.ticks_timed - seen.ticks_timed
        if new > 0:
            durations = room.tick_durations
            take = min(new, len(durations))  # more than the ring holds: the oldest are lost
            # Only the new ones, newest first: the scrape costs what was ticked since the last.
            seen.histogram.observe(np.fromiter(islice(reversed(durations), take), dtype=np.float64, count=take))
            seen.ticks_timed = room.ticks_timed


def _room_counts(room: Room) -> dict[str, int]:
    s = room.statistics()
    return {
        "ticks": room.ticks_timed,
        "overruns": s.overruns,
        "resyncs": s.resyncs,
        "ticks_skipped": s.ticks_skipped,
        "deltas_encoded": s.deltas_encoded,
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
        "inputs_dropped": conn.inputs_dropped,
    }


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_text, value=value)


__all__ = ["CONTENT_TYPE", "ServerMetrics", "TICK_BUCKETS_S"]
