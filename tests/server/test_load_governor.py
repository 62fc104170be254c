"""The load governor (tickroom.server.ops.overload): when a node refuses new
players, from its CPU, its tick lag, the players it holds and its cap; the
hysteresis; and, against a real in-process server, 4203 for a fresh join
while a seated player's rejoin still gets in.

The governor's clocks are injected: each sample is given the CPU and wall
seconds the test says, so the decisions are exact and instant.
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
    """CPU and wall seconds that the test advances."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 100.0

    def run(self, seconds: float, busy: float) -> None:
        self.wall += seconds
        self.cpu += seconds * busy


def governor(config: CapacityConfig | None = None) -> tuple[LoadGovernor, Figures, Clocks]:
    figures, clocks = Figures(), Clocks()
    gov = LoadGovernor(
        figures, config or CapacityConfig(), cpu_clock=lambda: clocks.cpu, wall_clock=lambda: clocks.wall
    )
    return gov, figures, clocks


def settle(gov: LoadGovernor, clocks: Clocks, busy: float, seconds: float = 3.0) -> None:
    """Samples at ``busy`` for ``seconds`` (the averages converge)."""
    for _ in range(round(seconds / overload.SAMPLE_S)):
        clocks.run(overload.SAMPLE_S, busy)
        gov.sample()


def test_fresh_joins_past_the_cap_are_refused_with_4203_and_counted_exactly():
    gov, figures, clocks = governor(CapacityConfig(max_players=3))
    a, b, c = object(), object(), object()
    assert [gov.admit_join(link) for link in (a, b, c)] == [None] * 3
    refusal = gov.admit_join(object())
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
    assert [gov.admit_join(object()) is None for _ in range(3)] == [True, True, False]


def test_a_join_not_yet_seated_at_a_sample_still_counts():
    gov, figures, clocks = governor(CapacityConfig(max_players=2, cpu_target=0, tick_lag_s=0))
    first = object()
    assert gov.admit_join(first) is None
    settle(gov, clocks, busy=0.1, seconds=overload.SAMPLE_S)  # no room holds it yet
    assert gov.admit_join(object()) is None
    assert gov.admit_join(object()) is not None


def test_cpu_at_the_target_refuses_and_it_takes_the_hold_and_the_margin_to_accept_again():
    gov, figures, clocks = governor(CapacityConfig(cpu_target=0.8))
    figures.players = 10
    settle(gov, clocks, busy=0.5)
    assert gov.accepting
    settle(gov, clocks, busy=0.95)
    assert not gov.accepting and gov.over_reason == "cpu"
    assert gov.admit_join(object()) is not None and gov.refused["cpu"] == 1
    # Just under the target is not enough (hysteresis): under 85% of it is.
    settle(gov, clocks, busy=0.75, seconds=5)
    assert not gov.accepting
    settle(gov, clocks, busy=0.3)
    assert gov.accepting and gov.transitions == 1
    assert gov.admit_join(object()) is None


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
    assert gov.accepting  # a node this idle is late because of the machine, not its players
    settle(gov, clocks, busy=0.6)
    assert not gov.accepting and gov.over_reason == "tick_lag"
    figures.lag = 0.0
    settle(gov, clocks, busy=0.6)
    assert gov.accepting


def test_capacity_is_measured_from_the_cost_of_the_players_held():
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
    while gov.admit_join(object()) is None:
        admitted += 1
    assert admitted == gov.capacity - 100
    assert gov.over_reason == "players"
    # The cap is the lower of the two.
    capped, figures, clocks = governor(CapacityConfig(cpu_target=0.8, max_players=150))
    figures.players = 100
    settle(capped, clocks, busy=0.4, seconds=5)
    assert capped.capacity == 150


def test_a_burst_on_an_empty_node_is_seated_step_by_step_the_rest_refused_at_once():
    gov, figures, clocks = governor()
    links = [object() for _ in range(1000)]
    admitted = 0
    while gov.admit_join(links[admitted]) is None:
        admitted += 1
    assert admitted == overload.RAMP_MIN_STEP
    assert gov.refused["ramp"] == 1 and gov.accepting  # not over capacity: only too fast
    figures.players = admitted  # all seated and answered
    for link in links[:admitted]:
        gov.join_done(link)
    settle(gov, clocks, busy=0.1, seconds=overload.SAMPLE_S)
    assert [gov.admit_join(object()) is None for _ in range(admitted + 1)] == [True] * admitted + [False]


def test_measuring_can_be_turned_off_leaving_the_cap():
    gov, figures, clocks = governor(CapacityConfig(cpu_target=0, tick_lag_s=0))
    figures.players, figures.lag = 1000, 1.0
    settle(gov, clocks, busy=1.0)
    assert gov.accepting and gov.state().as_json()["capacity"] is None
    assert all(gov.admit_join(object()) is None for _ in range(500))  # no step either: nothing to measure
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


def test_the_metrics_show_the_state_and_the_refusals_by_reason():
    gov, figures, clocks = governor(CapacityConfig(max_players=1))
    gov.admit_join(object())
    gov.admit_join(object())

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
