"""Arena lag compensation, game level: a shot judged against the world the
shooter acted on, from the room's history (server.rooms.world_history),
within the rewind bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.simulation.helpers import batch, edit_players, new_game
from tickroom.server.rooms.world_history import WorldHistory, history_for
from tickroom.simulation.game import NO_PAST, InputBatch
from tickroom.simulation.games.arena import Arena
from tickroom.simulation.games.arena_rewind import find_hits_rewound, shot_lag


def inputs(rows: list[tuple[int, float, float, float, bool, int]]) -> InputBatch:
    """(player, mx, my, aim, fire, client tick) rows."""
    return batch([row[:5] for row in rows], ticks=[row[5] for row in rows])


def crossing(rewind: float, collision: str = "auto") -> tuple[Arena, WorldHistory, int, int]:
    """A still shooter at (50, 50) and a target running +x along y = 52 at
    full speed, 0.6 units a tick, passing right over the shooter at tick 10;
    the game lent a history as a room would."""
    game, (shooter, target) = new_game(2, rewind=rewind, collision=collision)
    game = edit_players(game, pos=[[50.0, 50.0], [50.0 - 10 * 0.6, 52.0]])
    history = history_for(game)
    assert history is not None and game.past is history
    game.apply_inputs(inputs([(shooter, 0.0, 0.0, 0.0, False, 0), (target, 1.0, 0.0, 0.0, False, 0)]))
    for _ in range(10):
        game.step()
        history.record(game.tick)
    return game, history, shooter, target


def fire_acting_on(game: Arena, history: WorldHistory, shooter: int, seen: int, steps: int = 6) -> list[list]:
    """The shooter fires straight up (+y) at the target as it was at tick
    ``seen``; the events of the next ``steps`` steps."""
    game.apply_inputs(inputs([(shooter, 0.0, 0.0, math.pi / 2, True, seen)]))
    events = []
    for _ in range(steps):
        events += game.step()
        history.record(game.tick)
        game.apply_inputs(inputs([(shooter, 0.0, 0.0, math.pi / 2, False, game.tick)]))
    return events


@pytest.mark.parametrize("collision", ["all_pairs", "sweep"])
@pytest.mark.parametrize("late", [1, 4, 8])
def test_a_shot_at_the_target_as_seen_hits_within_the_bound(late, collision):
    # The target is over the shooter at tick 10; the input acting on tick 10
    # arrives `late` ticks later (step 10 + late), when the target is long
    # gone (0.6 units a tick): judged at tick 10, it hits.
    game, history, shooter, target = crossing(rewind=0.4, collision=collision)  # 8 ticks
    for _ in range(late - 1):
        game.step()
        history.record(game.tick)
    events = fire_acting_on(game, history, shooter, seen=10, steps=2)
    assert ["hit", shooter, target, 25] in events
    assert game.state()["p_hp"].tolist() == [100, 75]


def test_the_same_shot_beyond_the_bound_misses():
    # 8 ticks is the bound; acting on a world 11 ticks old, the shot is
    # judged 8 ticks back, when the target was 3 * 0.6 = 1.8 units further on.
    game, history, shooter, target = crossing(rewind=0.4)
    for _ in range(10):
        game.step()
        history.record(game.tick)
    assert game.tick == 20
    events = fire_acting_on(game, history, shooter, seen=10, steps=8)
    assert events == []
    assert game.state()["p_hp"].tolist() == [100, 100]


def test_without_compensation_the_late_shot_misses():
    game, history, shooter, _ = crossing(rewind=0.4)
    game.past = NO_PAST  # a game run without a room rewinds nothing
    for _ in range(3):
        game.step()
    events = fire_acting_on(game, history, shooter, seen=10, steps=6)
    assert events == []
    off, _ = new_game(1, rewind=0.0)
    assert off.history_ticks == 0 and history_for(off) is None  # no ring asked for


def test_after_a_restore_the_ring_is_empty_and_the_shot_is_judged_now():
    game, history, shooter, target = crossing(rewind=0.4)
    game.step()
    history.record(game.tick)
    game = edit_players(game, hp=[100, 25])  # state() -> restore(), as a failover does
    history = history_for(game)
    assert history is not None
    for _ in range(2):  # the ring starts empty after a restore: nothing to rewind to
        game.step()
        history.record(game.tick)
    events = fire_acting_on(game, history, shooter, seen=10, steps=6)
    assert events == []  # tick 10 is not held: judged now, where the target is not


def moved(rng: np.random.Generator, n: int, at_most: float) -> np.ndarray:
    """n random displacements no longer than ``at_most``, some right at it."""
    angle = rng.uniform(-np.pi, np.pi, n)
    length = at_most * np.where(rng.random(n) < 0.3, 1.0, rng.random(n))
    return np.stack((np.cos(angle), np.sin(angle)), axis=1) * length[:, None]


class DictPast:
    def __init__(self, worlds: dict[int, dict[str, np.ndarray]]) -> None:
        self.worlds = worlds

    def at(self, tick: int) -> dict[str, np.ndarray] | None:
        return self.worlds.get(tick)


@pytest.mark.parametrize("drift", [99.0, 0.6])
@pytest.mark.parametrize("seed", range(40))
def test_the_stacked_all_pairs_pass_and_the_per_lag_sweep_agree(seed, drift):
    """Random rooms, random pasts (players moved, died, joined since, or a
    tick not held), random lags: both paths give the same hits. With a
    drift of 0.6 units a tick the players moved at most that much a tick
    (the all-pairs pass then skips the projectiles out of reach)."""
    rng = np.random.default_rng(seed)
    n_p, n_q, t = int(rng.integers(1, 12)), int(rng.integers(1, 80)), 100
    p_id = np.sort(rng.choice(np.arange(1, 200), n_p, replace=False)).astype(np.int64)
    p_pos = rng.uniform(0, 20, (n_p, 2))
    p_alive = rng.random(n_p) < 0.8 if rng.random() < 0.5 else None
    worlds = {}
    for lag in range(1, 9):
        if rng.random() < 0.15:
            continue  # not held
        keep = rng.random(n_p) < 0.9  # the others had not joined yet
        worlds[t - lag] = {
            "id": p_id[keep],
            "pos": (p_pos + moved(rng, n_p, lag * drift if drift < 10 else 3.0))[keep],
            "hp": rng.choice([0, 50, 100], n_p)[keep],
        }
    past = DictPast(worlds)
    q_pos = np.zeros((n_q, 7))
    q_pos[:, :2] = rng.uniform(0, 20, (n_q, 2))
    q_owner = rng.choice(p_id, n_q)
    q_lag = rng.integers(0, 9, n_q) * (rng.random(n_q) < 0.8)
    q_live = rng.random(n_q) < 0.9
    args = (past, t, q_pos[:, :2], q_owner, q_lag, q_live, p_pos, p_id, p_alive, 1.2)
    a = find_hits_rewound(*args, "all_pairs", drift=drift)
    b = find_hits_rewound(*args, "sweep", drift=drift)
    assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()


def test_shot_lag_is_clamped_and_zero_when_not_said():
    acted_on = np.array([0, 5, 95, 100, 101, -3], dtype=np.int64)
    assert shot_lag(acted_on, 100, 8).tolist() == [0, 8, 5, 0, 0, 0]


def test_the_ring_holds_the_newest_ticks_only():
    n = [0]

    def remember() -> dict[str, np.ndarray]:
        n[0] += 1
        return {"n": np.array([n[0]])}

    ring = WorldHistory(3, remember)
    for tick in range(1, 6):
        ring.record(tick)
    assert [ring.at(t) is None for t in range(0, 7)] == [True, True, True, False, False, False, True]
    assert ring.at(5)["n"].tolist() == [5]
    with pytest.raises(ValueError):
        WorldHistory(0, remember)
