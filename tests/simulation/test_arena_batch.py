"""Arena rooms stepped together (Arena.step_together, arena_batch) against
each room's own step(): bit-identical worlds, the same events, all or nothing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.simulation.helpers import batch, edit_players, random_batch, states_equal
from tickroom.server.rooms.world_history import history_for
from tickroom.simulation.game import GameConfig, GameFull, InputBatch
from tickroom.simulation.games import arena_batch, arena_physics
from tickroom.simulation.games.arena import BATCH_RULES, Arena


@dataclass(frozen=True)
class RoomSpec:
    seed: int
    size: float
    tick_rate: int
    max_projectiles: int
    players: int
    offset: int  # ticks stepped alone before the comparison, so rooms are at different ticks
    options: tuple[tuple[str, object], ...] = ()


def build(spec: RoomSpec) -> Arena:
    options = {"size": spec.size, "max_projectiles": spec.max_projectiles, **dict(spec.options)}
    game = Arena(seed=spec.seed, config=GameConfig(tick_rate=spec.tick_rate, max_players=40, options=options))
    rng = np.random.default_rng(spec.seed)
    ids = [game.join(f"p{k}") for k in range(spec.players)]
    for _ in range(spec.offset):
        if ids:
            game.apply_inputs(random_batch(rng, ids))
        game.step()
    return game


def player_ids(game: Arena) -> list[int]:
    return [int(x) for x in game.state()["p_id"]]


class Twins:
    """The same rooms twice: ``together`` stepped by step_together,
    ``alone`` by each room's step(), fed the same joins, leaves and inputs."""

    def __init__(self, specs: list[RoomSpec]) -> None:
        self.together = [build(s) for s in specs]
        self.alone = [build(s) for s in specs]
        # Lag compensation: each copy gets its own ring, as a room would.
        rings = [(g, history_for(g)) for g in self.together + self.alone]
        self.rings = [(g, ring) for g, ring in rings if ring is not None]
        self.events: Counter[str] = Counter()  # events of the rooms the batch stepped itself
        self.all_events: Counter[str] = Counter()
        self.batched = 0  # room-steps the batch took itself
        self.full_pools = 0  # batched room-steps that ended with the pool full

    def feed(self, rng: np.random.Generator, churn: float = 0.0) -> None:
        """One tick's joins, leaves (with probability ``churn`` per room) and
        inputs, applied together in one copy and room by room in the other."""
        batches = []
        for a, b in zip(self.together, self.alone, strict=True):
            ids = player_ids(a)
            roll = rng.random()
            if roll < churn / 2 and ids:
                gone = int(rng.choice(ids))
                a.leave(gone)
                b.leave(gone)
            elif roll < churn:
                try:
                    assert a.join("new") == b.join("new")
                except GameFull:
                    pass
            batches.append(inputs(rng, player_ids(a)))
        Arena.apply_inputs_together(self.together, batches)
        for b, inp in zip(self.alone, batches, strict=True):
            b.apply_inputs(inp)
        self.check()

    def step(self) -> None:
        takes = [arena_batch.batchable(g, BATCH_RULES) for g in self.together]
        got = Arena.step_together(self.together)
        want = [g.step() for g in self.alone]
        for g, ring in self.rings:
            ring.record(g.tick)  # as the room does after each step
        assert got == want
        self.all_events.update(e[0] for events in got for e in events)
        for g, takes_it, events in zip(self.together, takes, got, strict=True):
            if takes_it:
                self.batched += 1
                self.events.update(e[0] for e in events)
                self.full_pools += g._q.capacity > 0 and g._q.n == g._q.capacity
        self.check()

    def check(self) -> None:
        for a, b in zip(self.together, self.alone, strict=True):
            assert a.tick == b.tick
            assert states_equal(a.state(), b.state())
            assert arena_batch.batchable(a, BATCH_RULES) == arena_batch.batchable(b, BATCH_RULES)


def inputs(rng: np.random.Generator, ids: list[int]) -> InputBatch:
    """A tick's batch as a room may hand it over: random rows of some of the
    players (helpers.random_batch), now and then with the ticks clients
    acted on, with rows of ids no player has (one who just left, garbage),
    with values out of range (a validation slip: clamped), or with no rows."""
    roll = rng.random()
    if roll < 0.05 or not ids:
        return InputBatch.empty(Arena.input_fields)
    strays = [0, max(ids) + 1, -3, 2**32 + ids[0]] if roll < 0.2 else []
    rows = random_batch(rng, ids + strays)
    if 0.2 <= roll < 0.3 and len(rows):
        wild = {k: v * 4.0 for k, v in rows.fields.items() if k != "fire"}
        wild["mx"][0] = np.nan
        rows = InputBatch(rows.players, {**rows.fields, **wild})
    if roll < 0.5:
        ticks = rng.integers(0, 200, len(rows))
        return InputBatch(rows.players, rows.fields, seqs=np.arange(len(rows), dtype=np.int64), ticks=ticks)
    return rows


room_specs = st.builds(
    RoomSpec,
    seed=st.integers(0, 2**31),
    size=st.sampled_from([8.0, 12.0, 20.0, 40.0]),
    tick_rate=st.sampled_from([10, 20, 30]),
    max_projectiles=st.sampled_from([0, 3, 1024]),
    players=st.integers(0, 12),
    offset=st.integers(0, 40),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), rooms=st.lists(room_specs, min_size=1, max_size=4))
def test_stepped_together_is_bit_identical_to_stepped_alone(seed, rooms):
    # Two rooms every run is sure to see everything in: a crowded small
    # arena (hits, kills, then respawns) and one whose tiny pool fills.
    specs = [RoomSpec(seed, 8.0, 20, 1024, 8, seed % 7), RoomSpec(seed + 1, 10.0, 30, 2, 6, 3), *rooms]
    twins = Twins(specs)
    twins.check()
    rng = np.random.default_rng(seed)
    for _ in range(160):
        twins.feed(rng, churn=0.03)
        twins.step()
    # Not vacuous: the batch itself fired, hit and killed, pools filled,
    # and the respawns (stepped alone) came around.
    assert twins.batched > 0.4 * 160 * len(specs)  # most room-steps (rooms at a respawn or crowded go alone)
    assert twins.events["hit"] > 0 and twins.events["kill"] > 0
    assert twins.full_pools > 0
    assert twins.all_events["respawn"] > 0


def test_a_list_mixing_batched_rooms_and_rooms_stepped_alone_gives_the_same_results():
    specs = [
        RoomSpec(1, 12.0, 20, 1024, 8, 5),  # batched
        RoomSpec(2, 12.0, 20, 1024, 8, 9, (("collision", "sweep"),)),  # alone: collision option
        RoomSpec(3, 12.0, 20, 1024, 8, 2, (("rewind", 0.4),)),  # alone: lag compensation with a ring
        RoomSpec(4, 100.0, 20, 1024, 40, 0),  # alone: more players than the batch takes
        RoomSpec(5, 30.0, 10, 4, 5, 30),  # batched, at another tick rate and tick
        RoomSpec(6, 12.0, 20, 1024, 0, 1),  # batched, empty
    ]
    twins = Twins(specs)
    rng = np.random.default_rng(9)
    takes: Counter[tuple[int, bool]] = Counter()
    for _ in range(120):
        twins.feed(rng)
        for r, g in enumerate(twins.together):
            takes[r, arena_batch.batchable(g, BATCH_RULES)] += 1
        twins.step()
    assert takes[1, True] == takes[2, True] == takes[3, True] == 0
    assert takes[0, True] > 80 and takes[4, True] > 80 and takes[5, True] == 120
    assert takes[0, False] > 0  # respawns due: stepped alone that tick
    assert twins.events["kill"] > 0


def test_a_crowded_room_is_stepped_alone_and_still_identical():
    game = build(RoomSpec(1, 100.0, 20, 1024, 12, 0))
    state = game.state()
    n = 600  # 612 x 12 pairs: over arena_physics.BROADPHASE_MIN_PAIRS, step() sweeps
    state.update(
        q_id=np.arange(100, 100 + n, dtype=np.uint32),
        q_pos=np.full((n, 2), 50.0),
        q_origin=np.full((n, 2), 50.0),
        q_vel=np.zeros((n, 2)),
        q_aim=np.zeros(n),
        q_owner=np.full(n, 1, dtype=np.uint32),
        q_expire_at=np.full(n, 10**6, dtype=np.int64),
        q_t0=np.zeros(n, dtype=np.int64),
        q_lag=np.zeros(n, dtype=np.int64),
        next_id=100 + n,
    )
    a, b = Arena.restore(state, game.config), Arena.restore(state, game.config)
    assert (n + 12) * 12 > arena_physics.BROADPHASE_MIN_PAIRS and not arena_batch.batchable(a, BATCH_RULES)
    small = build(RoomSpec(2, 20.0, 20, 1024, 4, 0))
    small_b = build(RoomSpec(2, 20.0, 20, 1024, 4, 0))
    assert Arena.step_together([a, small]) == [b.step(), small_b.step()]
    assert states_equal(a.state(), b.state()) and states_equal(small.state(), small_b.state())


# -- all or nothing -----------------------------------------------------------


def shooting_rooms() -> list[Arena]:
    """Rooms where the next step fires and hits: two players face to face
    in each, both pressing fire; the last one has a respawn due (stepped
    alone, and it draws from its RNG)."""
    rooms = []
    for seed in range(3):
        game, _ = two_players(seed)
        rooms.append(game)
    dead, _ = two_players(7)
    dead = edit_players(dead, hp=[0, 100], respawn_at=[dead.tick + 1, np.iinfo(np.int64).max])
    rooms.append(dead)
    return rooms


def two_players(seed: int) -> tuple[Arena, tuple[int, int]]:
    game = Arena(seed=seed, config=GameConfig())
    x, y = game.join("x"), game.join("y")
    game = edit_players(game, pos=[[10.0, 10.0], [11.5, 10.0]])
    game.apply_inputs(batch([(x, 0.0, 0.0, 0.0, True), (y, 0.0, 0.0, np.pi, True)]))
    return game, (x, y)


def test_an_error_in_the_batched_computation_changes_no_game(monkeypatch):
    games = shooting_rooms()
    before = [g.state() for g in games]
    assert [arena_batch.batchable(g, BATCH_RULES) for g in games] == [True, True, True, False]

    def broken(*args, **kwargs):
        raise RuntimeError("resolve_hits broke")

    monkeypatch.setattr(arena_physics, "resolve_hits", broken)
    with pytest.raises(RuntimeError, match="resolve_hits broke"):
        Arena.step_together(games)
    for g, s in zip(games, before, strict=True):
        assert states_equal(g.state(), s)
    monkeypatch.undo()
    # ... and the same list then steps as each game alone would.
    twins = shooting_rooms()
    assert Arena.step_together(games) == [g.step() for g in twins]
    assert all(states_equal(a.state(), b.state()) for a, b in zip(games, twins, strict=True))


def test_an_error_in_a_room_stepped_alone_puts_back_every_room_stepped_alone(monkeypatch):
    games = shooting_rooms()
    sweeping, _ = two_players(11)
    sweeping._collision = "sweep"  # stepped alone, after the room with the respawn due
    games.append(sweeping)
    before = [g.state() for g in games]

    def broken(*args, **kwargs):
        raise RuntimeError("the sweep broke")

    monkeypatch.setattr(arena_physics, "find_hits_sweep", broken)
    with pytest.raises(RuntimeError, match="the sweep broke"):
        Arena.step_together(games)
    # The respawned room's position draws and its RNG are put back too.
    for g, s in zip(games, before, strict=True):
        assert states_equal(g.state(), s)


def test_a_corrupt_room_fails_the_batch_unchanged_and_then_only_itself():
    games = shooting_rooms()
    bad = games[1]
    bad._p["step"] = np.zeros((3, 2))  # three rows for two players
    before = [g.state() for g in games]
    with pytest.raises(ValueError, match="unequal lengths"):
        Arena.step_together(games)
    for g, s in zip(games, before, strict=True):
        assert states_equal(g.state(), s)
    # What the server does next: each room alone; only the corrupt one fails.
    twins = shooting_rooms()
    for k, (g, twin) in enumerate(zip(games, twins, strict=True)):
        if g is bad:
            with pytest.raises(ValueError):
                g.step()
            continue
        assert g.step() == twin.step() and states_equal(g.state(), twin.state()), k


def test_the_same_game_twice_is_refused_unchanged():
    games = shooting_rooms()
    before = [g.state() for g in games]
    with pytest.raises(ValueError, match="twice"):
        Arena.step_together([games[0], games[1], games[0]])
    assert all(states_equal(g.state(), s) for g, s in zip(games, before, strict=True))


def test_an_empty_list_steps_nothing():
    assert Arena.step_together([]) == []


def test_a_tie_hits_the_lower_row_and_the_score_stays_capped_as_alone():
    # A projectile of c exactly 1 unit from both a and b: the lower row (a)
    # is hit, killed (25 hp left), and c's score stays at the wire's cap.
    game = Arena(seed=3, config=GameConfig())
    a, _, c = game.join("a"), game.join("b"), game.join("c")
    game = edit_players(game, pos=[[10.0, 10.0], [12.0, 10.0], [50.0, 50.0]], hp=[25, 100, 100], score=[0, 0, 32767])
    state = game.state()
    state.update(
        q_id=np.array([10], dtype=np.uint32),
        q_pos=np.array([[11.0, 10.0]]),
        q_origin=np.array([[11.0, 10.0]]),
        q_vel=np.zeros((1, 2)),
        q_aim=np.zeros(1),
        q_owner=np.array([c], dtype=np.uint32),
        q_expire_at=np.array([100], dtype=np.int64),
        q_t0=np.zeros(1, dtype=np.int64),
        q_lag=np.zeros(1, dtype=np.int64),
        next_id=11,
    )
    together = [Arena.restore(state, game.config), build(RoomSpec(4, 12.0, 20, 1024, 3, 4))]
    alone = [Arena.restore(state, game.config), build(RoomSpec(4, 12.0, 20, 1024, 3, 4))]
    assert all(arena_batch.batchable(g, BATCH_RULES) for g in together)
    events = Arena.step_together(together)
    assert events == [g.step() for g in alone]
    assert events[0] == [["hit", c, a, 25], ["kill", c, a]]
    assert together[0].state()["p_score"].tolist() == [0, 0, 32767]
    assert all(states_equal(x.state(), y.state()) for x, y in zip(together, alone, strict=True))


def test_inputs_applied_together_to_a_corrupt_room_change_no_room():
    games = shooting_rooms()
    ids = [player_ids(g) for g in games]
    games[2]._p["aim"] = np.zeros(5)  # five rows for two players
    before = [g.state() for g in games]
    batches = [batch([(i[0], 1.0, 0.0, 1.0, True), (i[1], 0.0, -1.0, 2.0, False)]) for i in ids]
    with pytest.raises(ValueError, match="unequal lengths"):
        Arena.apply_inputs_together(games, batches)
    with pytest.raises(ValueError, match="batches"):
        Arena.apply_inputs_together(games, batches[:-1])
    with pytest.raises(ValueError, match="twice"):
        Arena.apply_inputs_together([games[0], games[0]], batches[:2])
    assert all(states_equal(g.state(), s) for g, s in zip(games, before, strict=True))
