"""tickroom_failover_checkpoint_lag_seconds: how far the store's copy of
this node's rooms is behind, read at scrape time from the failover's room
keepers (tickroom.server.cluster.leases). Of every hosted room that has a
checkpoint written on this node, the time since its last one, in the room's
own ticks over its tick rate, so rooms at different rates compare. A node
that dies now loses at most this much of a room's play (less when the
input log since the checkpoint was written).

The same figure as `tickroom status`'s checkpoint lag (which counts ticks):
a room with no checkpoint written yet (just created, or just claimed again
after the store lost it) is left out, and a room whose writes keep failing
shows in tickroom_failover_checkpoint_failures_total from its first failure.
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client.core import GaugeMetricFamily

from tickroom.server.cluster.leases import RoomKeeper


class CheckpointedRooms(Protocol):
    """What the gauge reads of the failover: its hosted rooms' keepers
    (tickroom.server.cluster.leases.RoomLeases)."""

    keepers: dict[str, RoomKeeper]


def checkpoint_lag_seconds(rooms: CheckpointedRooms) -> float:
    """The largest lag over the hosted rooms with a checkpoint written; 0
    when there is none. Trio thread only: it reads the rooms' ticks."""
    lags = [
        (keeper.room.game.tick - keeper.written_tick) / keeper.room.config.tick_rate
        for keeper in list(rooms.keepers.values())
        if keeper.written_tick >= 0
    ]
    return max(max(lags, default=0.0), 0.0)


def checkpoint_lag_family(lag_s: float) -> GaugeMetricFamily:
    """The gauge's family for a lag read by ``checkpoint_lag_seconds``."""
    return GaugeMetricFamily(
        "tickroom_failover_checkpoint_lag_seconds",
        "Largest time, in room ticks, since a hosted room's last checkpoint write on this node",
        value=lag_s,
    )
