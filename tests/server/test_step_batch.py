"""Rooms of a game stepped together by the node's stepper
(tickroom.server.rooms.step_batch), under trio's MockClock, against the same
rooms each stepping its own game (``step_together=False``): the same worlds
bit for bit, the same snapshots, and a fault stays in its room."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import trio
import trio.testing
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import FakeLink
from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code
from tickroom.protocol.input_rows import RowEncoder, row_layout
from tickroom.protocol.validate import InputFields
from tickroom.server.ops.metrics import ServerMetrics
from tickroom.server.rooms.game_catalog import GameCatalog
from tickroom.server.rooms.registry import RegistryConfig, RoomRegistry
from tickroom.server.rooms.room import Room, RoomConfig
from tickroom.server.rooms.step_batch import StepCounters
from tickroom.server.transport.listener import ConnectionTable
from tickroom.simulation.game import GameConfig
from tickroom.simulation.games.arena import Arena

ROWS = RowEncoder(row_layout(InputFields(Arena.input_fields)))
RATE = 20
DT = 1 / RATE
BAD_SEED = 666  # FaultyArena's world with a bug
BUG_TICK = 12


class ScriptedLink(FakeLink):
    """A player whose every tick's input is drawn from its own seeded
    generator, and who leaves at ``leave_at``: the same in every run."""

    def __init__(self, seed: int, leave_at: int | None) -> None:
        super().__init__()
        self.rng = random.Random(seed)
        self.seq = 0
        self.leave_at = leave_at

    def offer(self, payload: bytes) -> None:
        # Ack every snapshot, the first included: the join's answer reaches
        # the test task at a different moment in the two runs (the stepper
        # parks the room in between), and a well-behaved client acks what
        # it applies whenever its code resumes.
        snap = self.session.receive(payload)
        assert isinstance(snap, m.Snapshot), snap
        self.snapshots.append(snap)
        if not self.closed:
            self.received.append(m.Ack(tick=snap.tick))

    def take_inputs(self) -> list[m.Input | m.Ack | Any]:
        if self.accepted is not None and self.kicked is None and not self.closed:
            tick = self.accepted.room_tick()
            if self.leave_at is not None and tick >= self.leave_at:
                self.push(m.Leave())
            else:
                self.seq += 1
                data = {
                    "mx": self.rng.uniform(-1, 1),
                    "my": self.rng.uniform(-1, 1),
                    "aim": self.rng.uniform(-3.14, 3.14),
                    "fire": self.rng.random() < 0.4,
                }
                if self.rng.random() < 0.05:
                    data["mx"] = 5.0  # out of range: refused with an error to this player alone
                # Version 2 rows, as a client sends them (the room decodes them, alone or node-wide).
                self.push(ROWS.encode(self.seq, tick, m.NO_TICK, data))  # type: ignore[arg-type]
        return super().take_inputs()


class FaultyArena(Arena):
    """The arena with a bug in the world of seed BAD_SEED, at tick BUG_TICK.
    Its batched step keeps the contract: it raises before changing any world."""

    name = "faulty"

    def __init__(self, seed: int, config: GameConfig) -> None:
        super().__init__(seed, config)
        self.buggy = seed == BAD_SEED

    def step(self) -> list[list[Any]]:
        if self.buggy and self.tick + 1 == BUG_TICK:
            raise RuntimeError("simulated bug")
        return super().step()

    @classmethod
    def step_together(cls, games: Sequence[FaultyArena]) -> list[list[list[Any]]]:  # type: ignore[override]
        if any(g.buggy and g.tick + 1 == BUG_TICK for g in games):
            raise RuntimeError("simulated bug, found before any world changed")
        return Arena.step_together(games)


@dataclass(frozen=True)
class RoomPlan:
    seed: int
    players: int
    leave_at: tuple[int | None, ...]  # per player
    size: float = 100.0


@dataclass
class Outcome:
    states: dict[str, dict[str, Any]]
    # Per room, per player, each snapshot: tick, events, base, seq and the delta's bytes.
    seen: dict[str, list[list[tuple[int, Any, int, int, bytes]]]]
    kicked: dict[str, list[Code | None]]
    errors: dict[str, list[list[Any]]]  # per room, per player: the errors its refused inputs got
    counters: StepCounters
    crashes: int
    metrics: dict[str, float]  # the stepper's families on /metrics


async def _play(
    plans: Sequence[RoomPlan], *, together: bool, ticks: int, game: str = "arena", adopt_at: int | None = None
) -> Outcome:
    registry = RoomRegistry(
        RegistryConfig(room=RoomConfig(tick_rate=RATE, max_players=8), step_together=together),
        games=GameCatalog({"arena": Arena, "faulty": FaultyArena}, default="arena"),
    )
    links: dict[str, list[ScriptedLink]] = {}
    rooms: dict[str, Room] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(registry.run)
        for r, plan in enumerate(plans):
            rooms[f"r{r}"] = registry.create(f"r{r}", game, seed=plan.seed, options={"size": plan.size})
        for r, plan in enumerate(plans):
            links[f"r{r}"] = []
            for p in range(plan.players):
                link = ScriptedLink(plan.seed * 100 + p, plan.leave_at[p])
                msg = m.Join(version=m.PROTOCOL_VERSION, name=f"p{p}", room=f"r{r}")
                link.accepted = await registry.join(msg, link)
                links[f"r{r}"].append(link)
        if adopt_at is not None:
            # A room restored from r0's checkpoint joins the node mid-run, in
            # the same batch as the others.
            await trio.sleep((adopt_at + 0.5) * DT)  # between two ticks: no race with the rooms
            source = rooms["r0"]
            restored = type(source.game).restore(source.game.state(), source.game.config)
            rooms["copy"] = Room("copy", restored, source.config)
            registry.adopt(rooms["copy"])
            await trio.sleep((ticks - adopt_at) * DT)
        else:
            await trio.sleep((ticks + 0.5) * DT)  # between two ticks: no race with the rooms
        states = {rid: room.game.state() for rid, room in rooms.items()}
        body = ServerMetrics(registry, ConnectionTable()).render().decode()
        nursery.cancel_scope.cancel()
    metrics = {
        sample.name: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name.startswith(("tickroom_room_steps", "tickroom_step_batch"))
    }
    return Outcome(
        states=states,
        seen={
            rid: [
                [(s.tick, s.events, s.base, s.seq, msgpack.packb(dict(s.fields))) for s in link.snapshots]
                for link in ls
            ]
            for rid, ls in links.items()
        },  # fmt: skip
        kicked={rid: [link.kicked[0] if link.kicked else None for link in ls] for rid, ls in links.items()},
        errors={
            rid: [[(e.code, e.message) for e in link.messages if isinstance(e, m.Error)] for link in ls]
            for rid, ls in links.items()
        },  # fmt: skip
        counters=registry.stepper.counters,
        crashes=registry.crashes,
        metrics=metrics,
    )


def play(plans: Sequence[RoomPlan], **kwargs: Any) -> Outcome:
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(lambda: _play(plans, **kwargs), clock=clock)


def assert_same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


room_plans = st.lists(
    st.builds(
        RoomPlan,
        seed=st.integers(1, 10_000),
        players=st.integers(1, 5),
        leave_at=st.lists(st.none() | st.integers(2, 60), min_size=5, max_size=5).map(tuple),
        size=st.sampled_from([20.0, 40.0, 100.0]),
    ),
    min_size=2,
    max_size=5,
)


# No shrinking: an example runs two nodes for 80 ticks; a failure prints its rooms.
@settings(max_examples=8, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(plans=room_plans)
def test_rooms_stepped_together_give_the_worlds_they_give_alone(plans: list[RoomPlan]) -> None:
    ticks = 80
    alone = play(plans, together=False, ticks=ticks)
    together = play(plans, together=True, ticks=ticks)
    assert together.counters.rooms_together > 0 and together.counters.largest_batch == len(plans)
    assert alone.counters.rooms_together == 0
    for rid in alone.states:
        assert_same_state(together.states[rid], alone.states[rid])
    assert together.seen == alone.seen
    assert together.kicked == alone.kicked
    assert together.errors == alone.errors


def test_the_games_of_a_busy_node_are_stepped_together_and_fight() -> None:
    # Small arenas and trigger-happy players: shots, hits and kills happen,
    # so the batched step's whole path is compared, not only movement.
    plans = [RoomPlan(seed=s, players=6, leave_at=(None,) * 6, size=20.0) for s in (1, 2, 3, 4)]
    alone = play(plans, together=False, ticks=200)
    together = play(plans, together=True, ticks=200)
    events = [e[1] for per_room in together.seen.values() for s in per_room[0] for e in s[1]]
    assert {"hit", "kill", "respawn"} <= set(events)
    for rid in alone.states:
        assert_same_state(together.states[rid], alone.states[rid])
    assert together.seen == alone.seen
    assert together.errors == alone.errors
    assert sum(len(per_player) for per_room in together.errors.values() for per_player in per_room) > 10
    assert together.counters.rooms_together >= 4 * 190
    assert together.counters.deltas_together >= 4 * 190  # the snapshots above came from the batched encode


def test_a_room_whose_game_fails_in_a_batch_crashes_alone() -> None:
    plans = [RoomPlan(seed=s, players=3, leave_at=(None,) * 3) for s in (BAD_SEED, 7, 8)]
    alone = play(plans, together=False, ticks=40, game="faulty")
    together = play(plans, together=True, ticks=40, game="faulty")
    assert together.counters.batch_failures == 1
    assert together.metrics["tickroom_step_batch_failures_total"] == 1
    assert together.metrics["tickroom_room_steps_together_total"] == together.counters.rooms_together > 0
    assert alone.metrics["tickroom_room_steps_together_total"] == 0
    assert alone.metrics["tickroom_room_steps_alone_total"] == 0  # the rooms stepped their own games
    assert together.crashes == alone.crashes == 1
    assert together.kicked["r0"] == [Code.ROOM_CRASHED] * 3
    assert [s[0] for s in together.seen["r0"][0]] == list(range(1, BUG_TICK))
    # The others played on, untouched: the worlds and snapshots of the run
    # where each room stepped alone.
    for rid in ("r1", "r2"):
        assert together.kicked[rid] == [None] * 3
        assert together.states[rid]["tick"] >= 39
        assert_same_state(together.states[rid], alone.states[rid])
        assert together.seen[rid] == alone.seen[rid]


def test_a_room_restored_from_a_checkpoint_in_a_batch_plays_on_and_leaves_the_others_untouched() -> None:
    plans = [RoomPlan(seed=s, players=3, leave_at=(None, 30, None)) for s in (11, 12)]
    alone = play(plans, together=False, ticks=60, adopt_at=25)
    together = play(plans, together=True, ticks=60, adopt_at=25)
    assert together.counters.largest_batch == 3  # r0, r1 and the copy
    for rid in ("r0", "r1", "copy"):
        assert_same_state(together.states[rid], alone.states[rid])
    assert together.seen == alone.seen
    # The copy, without players, stepped on from its checkpoint as a game alone would.
    copy = together.states["copy"]
    assert copy["tick"] > 25


def test_when_the_batched_encode_fails_each_room_encodes_its_own(monkeypatch) -> None:
    plans = [RoomPlan(seed=s, players=3, leave_at=(None,) * 3) for s in (21, 22, 23)]
    alone = play(plans, together=False, ticks=30)

    def broken(pairs, schema):
        raise RuntimeError("simulated encoder bug")

    monkeypatch.setattr("tickroom.server.rooms.step_batch.encode_room_deltas", broken)
    together = play(plans, together=True, ticks=30)
    assert together.counters.encode_failures >= 29 and together.counters.deltas_together == 0
    assert together.crashes == 0
    assert together.seen == alone.seen


def test_a_fault_in_the_stepper_itself_fails_its_rooms_not_the_node(monkeypatch) -> None:
    plans = [RoomPlan(seed=s, players=2, leave_at=(None,) * 2) for s in (31, 32)]
    calls = 0

    def broken(self, group):
        nonlocal calls
        calls += 1
        if calls == 10:
            raise RuntimeError("simulated stepper bug")

    monkeypatch.setattr("tickroom.server.rooms.step_batch.StepBatcher._encode_deltas", broken)
    together = play(plans, together=True, ticks=30)
    # Both rooms of that pass crashed (4103) and their players were told;
    # the node, its stepper and its registry went on (the run completed).
    assert together.crashes == 2
    assert together.kicked == {"r0": [Code.ROOM_CRASHED] * 2, "r1": [Code.ROOM_CRASHED] * 2}
