"""Fresh joins over the governor's ramp step (tickroom.server.ops.overload,
tickroom.server.ops.held_joins): held for the next sample, then admitted or
refused on its figures, oldest first; bounded in number and in time; a
cancelled one leaves no count.

Each join is its own task, as each connection is; they wait on trio's clock,
here a MockClock that moves only when a test says (``mock_clock``), and the
governor's figures are the test's (tests/server/test_load_governor.py).
"""

from __future__ import annotations

import trio
import trio.testing

from tickroom.protocol.errors import Code
from tickroom.server.ops import overload
from tickroom.server.ops.held_joins import MAX_HOLD_S
from tickroom.server.ops.overload import CapacityConfig, LoadGovernor

from .test_load_governor import governor, settle


class Burst:
    """Joins between two samples, each its own task (a connection), in the
    order given (each runs until answered or held before the next starts),
    with what the governor answered each: "in", or the refusal's reason."""

    def __init__(self, gov: LoadGovernor) -> None:
        self.gov = gov
        self.answers: dict[object, str] = {}

    async def join(self, link: object) -> None:
        refusal = await self.gov.admit_join(link)
        if refusal is None:
            self.answers[link] = "in"
        else:
            assert refusal[0] == Code.SERVER_OVERLOADED
            self.answers[link] = refusal[1].split("(")[1].split(")")[0]  # the reason it names

    async def start(self, nursery: trio.Nursery, links: list[object]) -> None:
        for link in links:
            nursery.start_soon(self.join, link)
            await trio.testing.wait_all_tasks_blocked()

    def count(self, answer: str) -> int:
        return sum(1 for a in self.answers.values() if a == answer)


async def test_a_burst_on_an_empty_node_is_seated_step_by_step_the_rest_held_or_refused_at_once(mock_clock):
    gov, figures, clocks = governor()
    step = overload.RAMP_MIN_STEP
    links = [object() for _ in range(1000)]
    burst = Burst(gov)
    async with trio.open_nursery() as nursery:
        await burst.start(nursery, links)
        # A step admitted, a step held (no answer yet), the rest refused at once.
        assert burst.count("in") == step and gov.state().held == step
        assert burst.count("ramp") == len(links) - 2 * step == gov.refused["ramp"]
        assert gov.accepting  # not over capacity: only too fast
        assert [burst.answers.get(link) for link in links[:step]] == ["in"] * step  # first come, first in
        figures.players = step  # all seated and answered
        for link in links[:step]:
            gov.join_done(link)
        settle(gov, clocks, busy=0.1, seconds=overload.SAMPLE_S)
    # The next sample let the held step in, in order; none waited on its clock.
    assert [burst.answers[link] for link in links[: 2 * step]] == ["in"] * 2 * step
    assert gov.state().held == 0 and gov.held_total == step and gov.admitted_total == 2 * step
    assert trio.current_time() == 0  # decided by the sample, not by MAX_HOLD_S


async def test_a_held_join_is_refused_at_the_sample_when_the_new_figures_do_not_allow_it(mock_clock):
    gov, figures, clocks = governor(CapacityConfig(cpu_target=0.8))
    settle(gov, clocks, busy=0.7)  # under the target, not by much
    burst = Burst(gov)
    step = overload.RAMP_MIN_STEP
    links = [object() for _ in range(step + 10)]
    async with trio.open_nursery() as nursery:
        await burst.start(nursery, links)
        assert gov.state().held == 10
        # What the first step costs shows: a core's worth. The node is over
        # capacity for its CPU, and the held joins get that reason.
        figures.players = step
        figures.seated = set(links[:step])
        settle(gov, clocks, busy=1.0, seconds=overload.SAMPLE_S)
    assert not gov.accepting and gov.over_reason == "cpu"
    assert [burst.answers[link] for link in links[step:]] == ["cpu"] * 10
    assert gov.refused == {"cpu": 10} and gov.admitted_total == step


async def test_held_joins_are_admitted_up_to_the_capacity_at_the_sample_the_rest_refused_for_it(mock_clock):
    step = overload.RAMP_MIN_STEP
    gov, figures, clocks = governor(CapacityConfig(max_players=step + 5))
    burst = Burst(gov)
    links = [object() for _ in range(step + 10)]
    async with trio.open_nursery() as nursery:
        await burst.start(nursery, links)
        assert gov.state().held == 10 and gov.accepting
        figures.players = step
        figures.seated = set(links[:step])
        settle(gov, clocks, busy=0.1, seconds=overload.SAMPLE_S)
    assert [burst.answers[link] for link in links[step:]] == ["in"] * 5 + ["player_cap"] * 5
    assert gov.over_reason == "player_cap" and gov.admitted_total == step + 5


async def test_at_the_sample_the_held_joins_fill_the_new_step_and_the_rest_are_refused(mock_clock):
    gov, figures, clocks = governor()
    step = overload.RAMP_MIN_STEP
    links = [object() for _ in range(2 * step)]
    burst = Burst(gov)
    async with trio.open_nursery() as nursery:
        await burst.start(nursery, links)
        assert gov.state().held == step
        # Only 100 of the first step seated by the sample: the other 156 are
        # still joining and count against the new step.
        figures.players = 100
        figures.seated = set(links[:100])
        settle(gov, clocks, busy=0.1, seconds=overload.SAMPLE_S)
    held_answers = [burst.answers[link] for link in links[step:]]
    assert held_answers == ["in"] * 100 + ["ramp"] * (step - 100)  # oldest first


async def test_a_held_join_waits_at_most_max_hold_s_then_is_refused(mock_clock):
    gov, figures, clocks = governor()
    burst = Burst(gov)
    links = [object() for _ in range(overload.RAMP_MIN_STEP + 1)]
    async with trio.open_nursery() as nursery:
        await burst.start(nursery, links)
        assert gov.state().held == 1 and links[-1] not in burst.answers
        mock_clock.jump(MAX_HOLD_S * 0.99)
        await trio.testing.wait_all_tasks_blocked()
        assert links[-1] not in burst.answers  # still waiting for a sample
        mock_clock.jump(MAX_HOLD_S * 0.02)  # no sample came (the event loop is late): answered anyway
    assert burst.answers[links[-1]] == "ramp" and gov.state().held == 0
    assert MAX_HOLD_S < 1.0  # a refusal after a hold is still answered within the second


async def test_a_cancelled_held_join_leaves_no_trace(mock_clock):
    gov, figures, clocks = governor()
    step = overload.RAMP_MIN_STEP
    burst = Burst(gov)
    async with trio.open_nursery() as nursery:
        await burst.start(nursery, [object() for _ in range(step)])
        held_scope = trio.CancelScope()  # one connection, closed while held
        nursery.start_soon(_cancelled_join, gov, held_scope)
        await trio.testing.wait_all_tasks_blocked()
        assert gov.state().held == 1
        held_scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert gov.state().held == 0
        assert sum(gov.refused.values()) == 0 and gov.admitted_total == step and gov.held_total == 1
        # The next sample has nothing of it: the first step seated, a full
        # step of fresh joins is admitted, and one more is held.
        figures.players = step
        figures.seated = set(burst.answers)
        settle(gov, clocks, busy=0.1, seconds=overload.SAMPLE_S)
        more = [object() for _ in range(step + 1)]
        await burst.start(nursery, more)
        assert [burst.answers.get(link) for link in more] == ["in"] * step + [None]
        settle(gov, clocks, busy=0.1, seconds=overload.SAMPLE_S)


async def _cancelled_join(gov: LoadGovernor, scope: trio.CancelScope) -> None:
    with scope:
        await gov.admit_join(object())
        raise AssertionError("the held join was answered, not cancelled")
