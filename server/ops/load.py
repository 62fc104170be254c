"""The node's load line (``--stats-interval``): rooms, players, tick times,
backpressure, and the tick profile since the previous line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from tickroom.percentiles import percentiles
from tickroom.server.rooms.room import Room, TickProfile
from tickroom.server.transport.connection import Connection


class LoadRooms(Protocol):
    """What the load line reads of the room registry."""

    crashes: int

    def rooms(self) -> list[Room]: ...


class LoadConnections(Protocol):
    """What the load line reads of the connection table
    (tickroom.server.transport.listener.ConnectionTable)."""

    refused: int
    replaced_by_closed: int

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Connection]: ...


class LoadReport:
    """Builds the load lines of one node; keeps what the tick profile needs
    between two lines."""

    def __init__(self, rooms: LoadRooms, connections: LoadConnections) -> None:
        self.rooms = rooms
        self.connections = connections
        # Each live room's TickProfile -> (seconds, player_ticks) at the last
        # load line (keyed by the object: a room's profile dies with it).
        self._profiles_seen: dict[TickProfile, tuple[list[float], int]] = {}

    def summary(self, extra: str | None = None) -> str:
        """One line on the node's load: rooms, players, tick times; ``extra``
        (e.g. the failover's figures) is appended."""
        rooms = self.rooms.rooms()
        durations = [d for room in rooms for d in room.tick_durations]
        stats = [room.statistics() for room in rooms]
        p50, p99 = (p * 1e3 for p in percentiles(durations, (50, 99))) if durations else (0.0, 0.0)
        # Backpressure at a glance: latest-wins replacements (slow readers)
        # and the largest reliable backlog any one client holds.
        outboxes = [conn.ws.outbox.statistics() for conn in self.connections]
        summary = (
            f"rooms={len(rooms)} players={sum(s.connected for s in stats)} connections={len(self.connections)} "
            f"tick_ms_p50={p50:.3f} tick_ms_p99={p99:.3f} overruns={sum(s.overruns for s in stats)} "
            f"crashes={self.rooms.crashes} refused={self.connections.refused} "
            f"snapshots_replaced={self.connections.replaced_by_closed + sum(o.snapshots_replaced for o in outboxes)} "
            f"pending_bytes_max={max((o.pending_bytes for o in outboxes), default=0)}"
        )
        summary += f" {self._tick_profile(rooms)}"
        if extra:
            summary += f" {extra}"
        return summary

    def _tick_profile(self, rooms: list[Room]) -> str:
        """Microseconds per player per tick by phase (tickroom.server.rooms.room.TickProfile)
        since the previous load line, over the rooms alive now (one that
        started since counts from its start)."""
        totals = [0.0, 0.0, 0.0, 0.0]
        player_ticks = 0
        seen: dict[TickProfile, tuple[list[float], int]] = {}
        for room in rooms:
            profile = room.profile
            now = seen[profile] = (list(profile.seconds), profile.player_ticks)
            before = self._profiles_seen.get(profile, ([0.0] * 4, 0))  # a room new since: from zero
            for k in range(4):
                totals[k] += now[0][k] - before[0][k]
            player_ticks += now[1] - before[1]
        self._profiles_seen = seen
        per = [t / player_ticks * 1e6 if player_ticks else 0.0 for t in totals]
        phases = ",".join(f"{name}:{v:.1f}" for name, v in zip(TickProfile.PHASES, per, strict=True))
        return f"us_per_player_tick={phases},total:{sum(per):.1f}"
