"""Scenario schedules: who joins and leaves when, from the seed alone."""

import pytest

from tickroom.loadtest.scenarios import schedule


def run(scenario: str, seed: int = 1, **kw):
    args = {"rooms": 3, "bots_per_room": 4, "duration": 30.0, "ramp_up": 6.0, "seed": seed} | kw
    return schedule(scenario, **args)


@pytest.mark.parametrize("scenario", ["steady", "churn", "burst"])
def test_the_same_seed_gives_the_same_schedule_and_another_seed_another(scenario):
    assert run(scenario) == run(scenario)
    assert [s.seed for s in run(scenario)] != [s.seed for s in run(scenario, seed=2)]


def test_steady_spreads_joins_over_the_ramp_up_and_everyone_stays():
    specs = run("steady")
    assert len(specs) == 12
    assert [s.join_at for s in specs] == sorted(s.join_at for s in specs)
    assert specs[0].join_at == 0 and specs[-1].join_at < 6.0
    assert all(s.leave_at == 30.0 for s in specs)
    assert sorted(sum(1 for s in specs if s.room == r) for r in range(3)) == [4, 4, 4]


def test_burst_joins_everyone_at_once():
    assert {s.join_at for s in run("burst")} == {0.0}


def test_churn_keeps_seats_full_with_a_chain_of_bots():
    specs = run("churn")
    assert len(specs) > 12
    assert len({s.name for s in specs}) == len(specs)
    # At any moment at most bots_per_room bots of a room are scheduled.
    for t in (0.5, 7.0, 15.0, 29.0):
        for room in range(3):
            assert sum(1 for s in specs if s.room == room and s.join_at <= t < s.leave_at) <= 4
    assert all(0 <= s.join_at < s.leave_at <= 30.0 for s in specs)
    assert any(s.leave_at < 30.0 for s in specs)  # some leave before the end


def test_churn_chains_are_bounded_even_for_long_runs():
    specs = run("churn", rooms=1, bots_per_room=1, duration=1e9)
    assert 1 <= len(specs) <= 1000


def test_unknown_scenario_is_refused():
    with pytest.raises(ValueError, match="unknown scenario"):
        run("stampede")
