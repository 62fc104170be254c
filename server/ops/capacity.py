"""The load governor's limits and what it reads and shows of the node
(tickroom.server.ops.overload)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from tickroom.server.rooms.registry import RoomRegistry

UNLIMITED = 2**62  # the capacity with neither a CPU target nor a cap


@dataclass(frozen=True)
class CapacityConfig:
    """The limits (flags of ``tickroom serve``)."""

    max_players: int = 0  # operator cap on the players of the node; 0: measured capacity only
    cpu_target: float = 0.85  # CPU busy share (of the allowance) at which the node is full; 0: not measured
    tick_lag_s: float = 0.025  # smoothed tick lag at which the node is full (half a 20 Hz tick); 0: not measured

    def __post_init__(self) -> None:
        if self.max_players < 0:
            raise ValueError("--max-node-players must be >= 0")
        if self.cpu_target != 0 and not 0.05 <= self.cpu_target <= 1.0:
            raise ValueError("--capacity-cpu must be 0 (off) or between 0.05 and 1.0 (a share of the CPU allowance)")
        if self.tick_lag_s < 0:
            raise ValueError("--capacity-tick-lag must be >= 0 (0: off)")


class NodeFigures(Protocol):
    """What the governor reads of the node (tickroom.server.rooms.registry.RoomRegistry)."""

    def players_held(self) -> int:
        """Players seated in the node's rooms (connected or within their rejoin grace)."""
        ...

    def take_tick_lag(self) -> float:
        """Seconds: the mean tick lag since the previous call."""
        ...

    def unseated(self, links: Collection[object]) -> int:
        """How many of ``links`` (connections whose join was admitted) no room holds yet."""
        ...


class RegistryFigures:
    """NodeFigures of a room registry: its rooms' players, its tick clock's lag."""

    def __init__(self, registry: RoomRegistry) -> None:
        self.registry = registry

    def players_held(self) -> int:
        return sum(len(room.players) for room in self.registry.rooms())

    def take_tick_lag(self) -> float:
        return self.registry.clock.take_lag()

    def unseated(self, links: Collection[object]) -> int:
        if not links:
            return 0
        seated = sum(1 for room in self.registry.rooms() for player in room.players if player.link in links)
        return len(links) - seated


@dataclass(frozen=True)
class LoadState:
    """The governor's view at its last sample (status API, metrics, load line)."""

    accepting: bool
    reason: str  # why over capacity ("" while accepting)
    cpu_busy: float  # smoothed CPU used, in cores
    cpu_wait: float  # smoothed run-queue wait, seconds per wall second
    cpu_allowance: float  # cores the node may use: one, or its cgroup quota if lower
    tick_lag_s: float  # smoothed tick lag
    players: int  # players held at the sample
    capacity: int  # players the node holds at its CPU target (and its cap)
    held: int  # fresh joins held for the next sample

    def as_json(self) -> dict[str, object]:
        return {
            "accepting": self.accepting,
            "reason": self.reason or None,
            "cpu_busy": round(self.cpu_busy, 3),
            "cpu_wait": round(self.cpu_wait, 3),
            "cpu_allowance": round(self.cpu_allowance, 3),
            "tick_lag_ms": round(self.tick_lag_s * 1e3, 2),
            "players": self.players,
            "capacity": self.capacity if self.capacity < UNLIMITED else None,
            "held": self.held,
        }
