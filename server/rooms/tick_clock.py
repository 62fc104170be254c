"""One timer for all the rooms of a node.

Every room sleeps until its next tick. With ``trio.sleep_until`` each of
those sleeps is a cancel scope with its own deadline, entered and left once
per room per tick: ~49 us of CPU per wake-up on the reference machine, which
at 100 rooms x 20 Hz is a tenth of a core before any room does anything.
Rooms of a node tick on one grid (tickroom.server.rooms.room), so their deadlines coincide:
here a single task sleeps until the earliest deadline anyone waits for and
reschedules every room that is due, ~12 us per room wake-up (measured with
100 tasks at 100 Hz; docs/benchmarks.md).

Rooms stay trio tasks in the registry's nursery: a room parks itself here
(``sleep_until``) and is cancelled like any sleeping task. Under MockClock
the clock's own wait is a plain deadline, so tests run instantly as before.
"""

from __future__ import annotations

import heapq
import itertools
import math

import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled


class TickClock:
    """``await clock.sleep_until(deadline)`` for many tasks, one timer.

    ``run()`` must be running (in a nursery that outlives the sleepers) for
    anyone to wake up.
    """

    def __init__(self) -> None:
        # (deadline, order, task). _sleeping maps each sleeping task to the
        # order of its live entry: an entry that is not (its sleep was
        # cancelled, maybe followed by another) is skipped when it comes up.
        self._heap: list[tuple[float, int, Task]] = []
        self._sleeping: dict[Task, int] = {}
        self._order = itertools.count()
        self._timer = trio.CancelScope(deadline=math.inf)  # the run() task's wait, re-armed
        self.wakeups = 0  # tasks woken (for tests and metrics)
        # How late the timer woke, summed over its wake-ups since ``take_lag()``:
        # the node's tick lag (tickroom.server.ops.overload reads it).
        self._lag_sum = 0.0
        self._lag_wakes = 0

    async def sleep_until(self, deadline: float) -> None:
        """Like trio.sleep_until: returns at or after ``deadline`` on trio's
        clock; a checkpoint; cancellable."""
        if deadline <= trio.current_time():
            await trio.lowlevel.checkpoint()
            return
        task = current_task()
        order = next(self._order)
        self._sleeping[task] = order
        heapq.heappush(self._heap, (deadline, order, task))
        if deadline < self._timer.deadline:
            self._timer.deadline = deadline

        def abort(_raise_cancel) -> Abort:
            self._sleeping.pop(task, None)  # its heap entry is skipped later
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def take_lag(self) -> float:
        """Seconds: the mean lateness of the wake-ups since the last call
        (0.0 without any), and start over. The mean, not the maximum: one
        late wake-up (a neighbour on the machine, a collection) is caught
        up by the rooms' next ticks; a node that is late on every tick is not."""
        lag = self._lag_sum / self._lag_wakes if self._lag_wakes else 0.0
        self._lag_sum, self._lag_wakes = 0.0, 0
        return lag

    async def run(self) -> None:
        """Wake the sleepers as their deadlines pass, until cancelled."""
        heap, sleeping = self._heap, self._sleeping
        while True:
            with self._timer:
                await trio.sleep_forever()
            now = trio.current_time()
            if heap:
                self._lag_sum += max(0.0, now - heap[0][0])
                self._lag_wakes += 1
            while heap and heap[0][0] <= now:
                _, order, task = heapq.heappop(heap)
                if sleeping.get(task) == order:
                    del sleeping[task]
                    reschedule(task)
                    self.wakeups += 1
            while heap and sleeping.get(heap[0][2]) != heap[0][1]:  # cancelled sleeps' leftovers
                heapq.heappop(heap)
            self._timer = trio.CancelScope(deadline=heap[0][0] if heap else math.inf)
