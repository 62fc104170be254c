"""The node's shared room timer (tickroom.server.rooms.tick_clock) under trio's MockClock."""

from __future__ import annotations

import trio
import trio.testing

from tickroom.server.rooms.tick_clock import TickClock


async def test_sleepers_wake_at_their_deadlines_never_before(autojump_clock):
    clock = TickClock()
    woke: list[tuple[int, float, float]] = []

    async def sleeper(i: int, deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append((i, deadline, trio.current_time()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(clock.run)
        async with trio.open_nursery() as sleepers:
            for i, deadline in enumerate([0.3, 0.1, 0.2, 0.1, 0.3]):
                sleepers.start_soon(sleeper, i, deadline)
        nursery.cancel_scope.cancel()
    assert sorted(i for i, _, _ in woke) == [0, 1, 2, 3, 4]
    for _, deadline, at in woke:
        assert deadline <= at < deadline + 1e-6  # on time: MockClock jumps straight there
    assert [d for _, d, _ in woke] == sorted(d for _, d, _ in woke)  # in deadline order
    assert clock.wakeups == 5


async def test_an_earlier_deadline_rearms_a_clock_waiting_for_a_later_one(autojump_clock):
    clock = TickClock()
    times: dict[str, float] = {}

    async def sleeper(name: str, deadline: float) -> None:
        await clock.sleep_until(deadline)
        times[name] = trio.current_time()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(clock.run)
        nursery.start_soon(sleeper, "late", 10.0)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(sleeper, "early", 1.0)
        await trio.sleep(11.0)
        nursery.cancel_scope.cancel()
    assert times == {"early": 1.0, "late": 10.0}


async def test_a_cancelled_sleep_is_forgotten_and_a_new_one_is_not_woken_by_the_old_entry(autojump_clock):
    clock = TickClock()
    woke_at: list[float] = []

    async def sleeper() -> None:
        with trio.move_on_after(0.5):
            await clock.sleep_until(1.0)  # cancelled at 0.5
        await clock.sleep_until(2.0)  # its old 1.0 entry must not wake this one
        woke_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(clock.run)
        nursery.start_soon(sleeper)
        await trio.sleep(3.0)
        nursery.cancel_scope.cancel()
    assert woke_at == [2.0]
    assert clock.wakeups == 1


async def test_a_deadline_already_past_returns_at_once(autojump_clock):
    clock = TickClock()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(clock.run)
        await trio.sleep(1.0)
        await clock.sleep_until(0.5)
        assert trio.current_time() == 1.0
        nursery.cancel_scope.cancel()
    assert clock.wakeups == 0


async def test_the_tick_lag_is_the_mean_lateness_of_the_wake_ups(mock_clock):
    clock = TickClock()

    async def sleeper(deadline: float) -> None:
        await clock.sleep_until(deadline)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(clock.run)
        async with trio.open_nursery() as sleepers:
            sleepers.start_soon(sleeper, 1.0)
            sleepers.start_soon(sleeper, 2.0)
            await trio.testing.wait_all_tasks_blocked()
            mock_clock.jump(1.25)  # the process was held up: the first wake-up is 0.25 s late
            await trio.testing.wait_all_tasks_blocked()
            mock_clock.jump(0.75)  # the second one on time
        assert clock.take_lag() == 0.125
        assert clock.take_lag() == 0.0  # started over
        nursery.cancel_scope.cancel()
