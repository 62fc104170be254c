"""tickroom_failover_checkpoint_lag_seconds: the largest time since a hosted
room's last checkpoint write, read from the failover's room keepers (fakes
here: only their tick, tick rate and written tick are read)."""

from __future__ import annotations

from types import SimpleNamespace

from tickroom.server.ops.checkpoint_lag import checkpoint_lag_seconds
from tickroom.server.ops.metrics import ServerMetrics
from tickroom.server.rooms.registry import RegistryConfig, RoomRegistry
from tickroom.server.transport.listener import ConnectionTable

from .test_failover_metrics import samples


def keeper(tick: int, written: int, tick_rate: int) -> SimpleNamespace:
    room = SimpleNamespace(game=SimpleNamespace(tick=tick), config=SimpleNamespace(tick_rate=tick_rate))
    return SimpleNamespace(room=room, written_tick=written)


def leases(*keepers: SimpleNamespace) -> SimpleNamespace:
    return SimpleNamespace(keepers={f"r{i}": k for i, k in enumerate(keepers)})


def test_the_lag_is_the_largest_over_rooms_in_seconds_of_each_rooms_ticks():
    rooms = leases(
        keeper(tick=130, written=120, tick_rate=20),  # 0.5 s
        keeper(tick=600, written=420, tick_rate=60),  # 3 s: the largest, though 180 ticks < 10 x 20
        keeper(tick=5000, written=-1, tick_rate=20),  # nothing written yet: left out, as in `tickroom status`
    )
    assert checkpoint_lag_seconds(rooms) == 3.0


def test_no_room_with_a_checkpoint_is_no_lag():
    assert checkpoint_lag_seconds(leases()) == 0.0
    assert checkpoint_lag_seconds(leases(keeper(tick=40, written=-1, tick_rate=20))) == 0.0


def test_the_gauge_is_on_metrics_with_a_store_and_absent_without():
    rooms = leases(keeper(tick=50, written=10, tick_rate=20))
    found = samples(ServerMetrics(RoomRegistry(RegistryConfig()), ConnectionTable(), checkpoints=rooms).render())
    assert found[("tickroom_failover_checkpoint_lag_seconds", ())] == 2.0
    rooms.keepers["r0"].written_tick = 50  # the writer caught up
    found = samples(ServerMetrics(RoomRegistry(RegistryConfig()), ConnectionTable(), checkpoints=rooms).render())
    assert found[("tickroom_failover_checkpoint_lag_seconds", ())] == 0.0
    body = ServerMetrics(RoomRegistry(RegistryConfig()), ConnectionTable()).render().decode()
    assert "tickroom_failover_checkpoint_lag_seconds" not in body
