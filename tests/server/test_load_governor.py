"""The load governor (tickroom.server.ops.overload): when a node refuses new
players, from its CPU (against its allowance), its run-queue wait, its tick
lag, the players it holds and its cap; the hysteresis; and, against a real
in-process server, 4203 for a fresh join while a seated player's rejoin
still gets in. The joins held over the ramp step: tests/server/test_held_joins.py.

The governor's clocks are injected: each sample is given the CPU, run-queue
wait and wall seconds and the allowance the test says, so the decisions are
exact and instant.
"""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from trio_websocket import open_websocket_url

from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession
from tickroom.protocol.errors import OVERLOAD_RETRY_AFTER_S, Code
from tickroom.server.ops import overload
from tickroom.server.ops.overload import CapacityConfig, LoadGovernor, overload_families

from .test_connection_limits import joined, read_until_closed, running_server, url, wait_for


class Figures:
    """NodeFigures the test sets."""

    def __init__(self) -> None:
        self.players = 0
        self.lag = 0.0
        self.seated: set[object] = set()  # links the rooms hold

    def players_held(self) -> int:
        return self.players

    def take_tick_lag(self) -> float:
        return self.lag

    def unseated(self, links) -> int:
        return len(set(links) - self.seated)


class Clocks:
    """CPU, run-queue wait and wall seconds that the test advances, and the
    CPU allowance it sets (one core unless it says)."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.waited = 0.0
        self.wall = 100.0
        self.allowance = 1.0

    def run(self, seconds: float, busy: float, wait: float = 0.0) -> None:
        self.wall += seconds
        self.cpu += seconds * busy
        self.waited += seconds * wait


def governor(config: CapacityConfig | None = None, allowance: float = 1.0) -> tuple[LoadGovernor, Figures, Clocks]:
    figures, clocks = Figures(), Clocks()
    clocks.allowance = allowance
    gov = LoadGovernor(
        figures,
        config or CapacityConfig(),
        cpu_clock=lambda: clocks.cpu,
        wall_clock=lambda: clocks.wall,
        wait_clock=lambda: clocks.waited,
        allowance=lambda: clocks.allowance,
    )
    return gov, figures, clocks


def settle(gov: LoadGovernor, clocks: Clocks, busy: float, seconds: float = 3.0, wait: float = 0.0) -> None:
    """Samples at ``busy`` (and ``wait``) for ``seconds`` (the averages converge)."""
    for _ in range(round(seconds / overload.SAMPLE_S)):
        clocks.run(overload.SAMPLE_S, busy, wait)
        gov.sample()


async def test_fresh_joins_past_the_cap_are_refused_with_4203_and_counted_exactly():
    gov, figures, clocks = governor(CapacityConfig(max_players=3))
    a, b, c = object(), object(), object()
    assert [await gov.admit_join(link) for link in (a, b, c)] == [None] * 3
    refusal = await gov.admit_join(object())
    assert refusal is not None and refusal[0] == Code.SERVER_OVERLOADED == 4203
    assert f"retry in {OVERLOAD_RETRY_AFTER_S} s" in refusal[1]
    assert not gov.accepting and gov.over_reason == "player_cap" and gov.refused["player_cap"] == 1
    # At the sample: a and b seated and answered, c seated in its room but
    # its answer not read yet (still joining): 3 of 3, c counted once.
    gov.join_done(a)
    gov.join_done(b)
    figures.seated = {a, b, c}
    figures.players = 3
    settle(gov, clocks, busy=0.1)
    assert not gov.accepting and gov.state().players == 3
    # Two players left: 1 of 3, and two seats again.
    gov.join_done(c)
    figures.players = 1
    settle(gov, clocks, busy=0.1)
    assert gov.accepting and gov.capacity == 3
    assert [await gov.admit_join(object()) is None for _ in range(3)] == [True, True, False]


async def test_a_join_not_yet_seated_at_a_sample_still_counts():
    gov, figures, clocks = governor(CapacityConfig(max_players=2, cpu_target=0, tick_lag_s=0))
    first = object()
    assert await gov.admit_join(first) is None
    settle(gov, clocks, busy=0.1, seconds=overload.SAMPLE_S)  # no room holds it yet
    assert await gov.admit_join(object()) is None
    assert await gov.admit_join(object()) is not None


async def test_cpu_at_the_target_refuses_and_it_takes_the_hold_and_the_margin_to_accept_again():
    gov, figures, clocks = governor(CapacityConfig(cpu_target=0.8))
    figures.players = 10
    settle(gov, clocks, busy=0.5)
    assert gov.accepting
    settle(gov, clocks, busy=0.95)
    assert not gov.accepting and gov.over_reason == "cpu"
    assert await gov.admit_join(object()) is not None and gov.refused["cpu"] == 1
    # Just under the target is not enough (hysteresis): under 85% of it is.
    settle(gov, clocks, busy=0.75, seconds=5)
    assert not gov.accepting
    settle(gov, clocks, busy=0.3)
    assert gov.accepting and gov.transitions == 1
    assert await gov.admit_join(object()) is None


def test_the_hold_keeps_a_short_dip_from_reopening_the_node():
    gov, figures, clocks = governor()
    settle(gov, clocks, busy=1.0, seconds=1)
    assert gov.over_reason == "cpu"
    settle(gov, clocks, busy=0.0, seconds=overload.HOLD_S / 2)
    assert not gov.accepting
    settle(gov, clocks, busy=0.0, seconds=overload.HOLD_S)
    assert gov.accepting


def test_tick_lag_refuses_new_players():
    gov, figures, clocks = governor(CapacityConfig(tick_lag_s=0.025))
    figures.lag = 0.060
    settle(gov, clocks, busy=0.3)
    assert gov.accepting  # a node that neither uses nor waits for much CPU: late for a moment
    settle(gov, clocks, busy=0.6)
    assert not gov.accepting and gov.over_reason == "tick_lag"
    figures.lag = 0.0
    settle(gov, clocks, busy=0.6)
    assert gov.accepting


def test_a_starved_node_goes_over_capacity_for_its_tick_lag():
    # The machine gives the node a fifth of a core while it wants more: it
    # uses little, waits on the run queue for the rest, and its ticks are late.
    gov, figures, clocks = governor()
    figures.players, figures.lag = 40, 0.060
    settle(gov, clocks, busy=0.2, wait=0.5)
    assert not gov.accepting and gov.over_reason == "tick_lag"
    state = gov.state().as_json()
    assert state["cpu_busy"] == pytest.approx(0.2, abs=0.01) and state["cpu_wait"] == pytest.approx(0.5, abs=0.01)
    # The same node without the wait (the kernel does not say): the use alone
    # is under the floor, and the lag does not count.
    blind, figures, clocks = governor()
    figures.players, figures.lag = 40, 0.060
    settle(blind, clocks, busy=0.2)
    assert blind.accepting


def test_a_starved_moment_does_not_refuse_players_a_lasting_one_does():
    gov, figures, clocks = governor()
    figures.players = 100
    settle(gov, clocks, busy=0.25, wait=0.5)  # demand over the floor, ticks on time
    # A join burst of local clients: half a second of late ticks, the
    # smoothed lag over its limit for fewer samples in a row than it must last.
    figures.lag = 0.060
    settle(gov, clocks, busy=0.25, wait=0.5, seconds=2 * overload.SAMPLE_S)
    assert gov.tick_lag_s >= gov.config.tick_lag_s and gov.accepting
    figures.lag = 0.0
    settle(gov, clocks, busy=0.25, wait=0.5, seconds=overload.SAMPLE_S)
    assert gov.tick_lag_s < gov.config.tick_lag_s and gov.accepting
    # Lasting: the count starts again, and at LAG_PERSIST_SAMPLES in a row the node is over.
    figures.lag = 0.060
    settle(gov, clocks, busy=0.25, wait=0.5, seconds=(overload.LAG_PERSIST_SAMPLES - 1) * overload.SAMPLE_S)
    assert gov.accepting
    settle(gov, clocks, busy=0.25, wait=0.5, seconds=overload.SAMPLE_S)
    assert gov.over_reason == "tick_lag"


def test_a_busy_neighbour_alone_does_not_refuse_players():
    # Waits on the run queue, but the ticks are on time: the node is served.
    gov, figures, clocks = governor()
    figures.players, figures.lag = 40, 0.004
    settle(gov, clocks, busy=0.2, wait=0.8)
    assert gov.accepting and gov.state().cpu_wait == pytest.approx(0.8, abs=0.01)
    # Late ticks with neither use nor wait to speak of: not the node's load either.
    idle, figures, clocks = governor()
    figures.players, figures.lag = 4, 0.060
    settle(idle, clocks, busy=0.1, wait=0.1)
    assert idle.accepting


def test_a_cgroup_quota_lowers_the_cpu_target_and_the_capacity():
    # Half a core: full at 0.85 x 0.5 of a core of use, and half the players.
    gov, figures, clocks = governor(CapacityConfig(cpu_target=0.85), allowance=0.5)
    figures.players = 100
    settle(gov, clocks, busy=0.2)  # 2 ms per player-second
    assert gov.accepting and gov.capacity == pytest.approx(0.85 * 0.5 / 0.002, abs=2)
    settle(gov, clocks, busy=0.45)
    assert not gov.accepting and gov.over_reason == "cpu"
    assert gov.state().as_json()["cpu_allowance"] == 0.5
    whole, figures, clocks = governor(CapacityConfig(cpu_target=0.85))
    figures.players = 100
    settle(whole, clocks, busy=0.45)
    assert whole.accepting  # the same use on a whole core
    # The lag's floor follows the allowance too: on half a core, a node
    # demanding 0.25 is busy enough for its late ticks to be its own.
    lagging, figures, clocks = governor(allowance=0.5)
    figures.players, figures.lag = 40, 0.060
    settle(lagging, clocks, busy=0.15, wait=0.1)
    assert lagging.over_reason == "tick_lag"


async def test_capacity_is_measured_from_the_cost_of_the_players_held():
    gov, figures, clocks = governor(CapacityConfig(cpu_target=0.8))
    # Below MIN_PLAYERS_MEASURED: the prior.
    figures.players = 10
    settle(gov, clocks, busy=0.05)
    assert gov.capacity == int(0.8 / overload.PRIOR_CPU_PER_PLAYER)
    # 100 players at 40% of a core: 4 ms per player-second, 200 at the target.
    figures.players = 100
    settle(gov, clocks, busy=0.4, seconds=5)
    assert gov.capacity == pytest.approx(200, abs=2)
    assert gov.accepting
    # A burst between two samples: admitted joins count at once.
    admitted = 0
    while await gov.admit_join(object()) is None:
        admitted += 1
    assert admitted == gov.capacity - 100
    assert gov.over_reason == "players"
    # The cap is the lower of the two.
    capped, figures, clocks = governor(CapacityConfig(cpu_target=0.8, max_players=150))
    figures.players = 100
    settle(capped, clocks, busy=0.4, seconds=5)
    assert capped.capacity == 150


async def test_measuring_can_be_turned_off_leaving_the_cap():
    gov, figures, clocks = governor(CapacityConfig(cpu_target=0, tick_lag_s=0))
    figures.players, figures.lag = 1000, 1.0
    settle(gov, clocks, busy=1.0)
    assert gov.accepting and gov.state().as_json()["capacity"] is None
    assert all([await gov.admit_join(object()) is None for _ in range(500)])  # no step either: nothing to measure
    capped, figures, clocks = governor(CapacityConfig(cpu_target=0, tick_lag_s=0, max_players=5))
    figures.players = 5
    settle(capped, clocks, busy=1.0)
    assert not capped.accepting and capped.over_reason == "player_cap"


@pytest.mark.parametrize(
    "config", [dict(max_players=-1), dict(cpu_target=0.01), dict(cpu_target=1.5), dict(tick_lag_s=-1.0)]
)
def test_bad_limits_are_refused(config):
    with pytest.raises(ValueError):
        CapacityConfig(**config)


async def test_the_metrics_show_the_state_and_the_refusals_by_reason():
    gov, figures, clocks = governor(CapacityConfig(max_players=1), allowance=0.5)
    settle(gov, clocks, busy=0.1, wait=0.3)
    await gov.admit_join(object())
    await gov.admit_join(object())

    class Families:
        def collect(self):
            return overload_families(gov)

    text = generate_latest(Families()).decode()  # type: ignore[arg-type]
    samples = {
        (s.name, s.labels.get("reason", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("tickroom_accepting_players", "")] == 0
    assert samples[("tickroom_player_capacity", "")] == 1
    assert samples[("tickroom_joins_refused_overload_total", "player_cap")] == 1
    assert samples[("tickroom_joins_refused_overload_total", "cpu")] == 0
    assert samples[("tickroom_overload_episodes_total", "")] == 1
    assert samples[("tickroom_cpu_allowance_cores", "")] == 0.5
    assert samples[("tickroom_cpu_wait_ratio", "")] == pytest.approx(0.3, abs=0.01)
    assert samples[("tickroom_joins_held_total", "")] == 0


async def test_a_node_at_its_cap_refuses_a_fresh_join_with_4203_and_lets_a_rejoin_in():
    async with running_server(max_node_players=1, rejoin_grace_s=30.0) as server:
        session = ClientSession()
        async with open_websocket_url(url(server)) as first:
            await joined(first, session, "capped", "first")
            async with open_websocket_url(url(server)) as extra:
                other = ClientSession()
                await extra.send_message(other.join(room="capped", name="extra"))
                received, code = await read_until_closed(extra, other)
            assert code == Code.SERVER_OVERLOADED == 4203
            assert [e.code for e in received if isinstance(e, m.Error)] == [4203]
            assert server.connection_table.refused_by_code[4203] == 1
            assert server.governor.refused["player_cap"] == 1
        # The first player dropped (its seat waits for the rejoin grace): its
        # rejoin is a player the node holds, never refused.
        await wait_for(lambda: not server.connections, "the first connection to end")
        async with open_websocket_url(url(server)) as back:
            await back.send_message(session.rejoin())
            while not isinstance(msg := session.receive(await back.get_message()), m.Welcome):
                assert not isinstance(msg, m.Error), msg
        assert server.connection_table.refused_by_code[4203] == 1
