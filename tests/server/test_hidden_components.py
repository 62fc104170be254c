"""Hidden components: for random worlds, random entity masks and random
component masks, every client rebuilds exactly the entities it may see with
the hidden components it may not see as zeros, and no byte of a hidden value
ever appears in the frames of a client that may not see it. Also the batch
encoder against one encode per redacted view, and the refusals."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickroom.protocol import envelope
from tickroom.protocol import messages as m
from tickroom.protocol.codec import finish_snapshot
from tickroom.protocol.delta import WorldState, apply_delta, encode_delta
from tickroom.protocol.delta_batch import HiddenRows, encode_deltas
from tickroom.protocol.schema import Schema
from tickroom.server.rooms.snapshots import SnapshotHistory
from tickroom.server.rooms.views import VisibilityError, hidden_components, split_views
from tickroom.simulation.game import Visibility
from tickroom.simulation.hidden import owner_only, same_group

SCHEMA = Schema.from_description({
    "secret": {"dtype": "|u1", "shape": [8]},  # hidden: 8 random bytes, never zero
    "gold": {"dtype": "<u4", "shape": []},  # hidden, small values that repeat
    "xy": {"dtype": "<i2", "shape": [2]},
})  # fmt: skip
HIDDEN = ("gold", "secret")
PLAYERS = np.array([7, 8, 9])


def _world(rng: np.random.Generator, tick: int, previous: WorldState | None) -> WorldState:
    ids = np.flatnonzero(rng.random(12) < 0.7).astype("<u4") + 1
    n = ids.shape[0]
    secret = rng.integers(1, 256, (n, 8)).astype("u1")
    gold = rng.integers(0, 3, n).astype("<u4")
    xy = rng.integers(-3, 3, (n, 2)).astype("<i2")
    if previous is not None:  # some entities keep last tick's values: unchanged rows
        keep = np.isin(ids, previous.ids) & (rng.random(n) < 0.5)
        at = np.searchsorted(previous.ids, ids[keep])
        secret[keep] = previous.components["secret"][at]
        gold[keep] = previous.components["gold"][at]
    return WorldState.from_view(tick, ids, {"secret": secret, "gold": gold, "xy": xy}, SCHEMA)


@st.composite
def worlds_and_masks(draw):
    """A few ticks of a random world with, per tick, a random entity mask
    and a random mask per hidden component for three players."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    density = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    out: list[tuple[WorldState, Visibility]] = []
    world = None
    for tick in range(1, draw(st.integers(2, 6)) + 1):
        world = _world(rng, tick, world)
        shape = (PLAYERS.shape[0], world.ids.shape[0])
        components = {name: rng.random(shape) < draw(st.sampled_from([0.0, 0.5, 1.0])) for name in HIDDEN}
        out.append((world, Visibility(PLAYERS, rng.random(shape) < density, components)))
    return out


def _expected(world: WorldState, visibility: Visibility, k: int) -> dict[str, np.ndarray]:
    row = visibility.mask[k]
    out = {}
    for name, array in world.components.items():
        values = np.array(array[row])
        if name in visibility.components:
            values[~visibility.components[name][k][row]] = 0
        out[name] = values
    return out


@given(worlds_and_masks(), st.lists(st.integers(0, 4), min_size=3, max_size=3))
@settings(max_examples=150, deadline=None)
def test_every_client_rebuilds_what_it_may_see_and_no_hidden_byte_leaves(ticks, lags) -> None:
    history = SnapshotHistory(SCHEMA, 8)
    clients: list[dict[int, WorldState]] = [{} for _ in PLAYERS]
    for world, visibility in ticks:
        history.record(world, [], split_views(world, visibility, world.ids, SCHEMA, HIDDEN))
        secrets = world.components["secret"]
        for k, pid in enumerate(PLAYERS.tolist()):
            older = [t for t in clients[k] if t <= world.tick - 1 - lags[k]]
            base = history.baseline_for(max(older)) if older else m.NO_TICK
            frame = finish_snapshot(history.payload_for(pid, base), 0)
            rebuilt = apply_delta(
                clients[k].get(base), world.tick, envelope.decode(msgpack.unpackb(frame, raw=False)), SCHEMA
            )
            assert rebuilt.ids.tolist() == world.ids[visibility.mask[k]].tolist()
            for name, values in _expected(world, visibility, k).items():
                assert np.array_equal(rebuilt.components[name], values), name
            # Not one secret this player may not see is in its bytes (8 random
            # bytes never zero: a chance match is ~2^-64 per position).
            seen = visibility.mask[k] & visibility.components["secret"][k]
            allowed = {secrets[j].tobytes() for j in np.flatnonzero(seen)}
            for j in np.flatnonzero(~seen):
                if secrets[j].tobytes() not in allowed:
                    assert secrets[j].tobytes() not in frame
            clients[k][world.tick] = rebuilt


@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
@settings(max_examples=100, deadline=None)
def test_batch_encode_equals_one_encode_per_redacted_view(seed, views) -> None:
    rng = np.random.default_rng(seed)
    baseline = _world(rng, 1, None)
    current = _world(rng, 2, baseline)
    n, b = current.ids.shape[0], baseline.ids.shape[0]
    now = rng.random((views, n)) < 0.7
    then = rng.random((views, b)) < 0.7
    now_shown = (rng.random((views, 2, n)) < 0.5) & now[:, None, :]
    then_shown = (rng.random((views, 2, b)) < 0.5) & then[:, None, :]
    if views > 1:  # the common case: nothing changed for this view between the ticks
        then[1] = np.isin(baseline.ids, current.ids[now[1]])
    columns = np.array([SCHEMA.names.index(name) for name in HIDDEN], dtype=np.intp)
    batch = encode_deltas(current, baseline, SCHEMA, now, then, HiddenRows(columns, now_shown, then_shown))

    def cut(world: WorldState, row: np.ndarray, shown: np.ndarray) -> WorldState:
        comps = {}
        for name, array in world.components.items():
            values = np.array(array[row])
            if name in HIDDEN:
                values[~shown[HIDDEN.index(name)][row]] = 0
            comps[name] = values
        return WorldState.from_view(world.tick, world.ids[row], comps, SCHEMA)

    for k in range(views):
        one = encode_delta(cut(current, now[k], now_shown[k]), cut(baseline, then[k], then_shown[k]), SCHEMA)
        assert msgpack.packb(batch[k]) == msgpack.packb(one)


def test_the_helpers_build_owner_and_group_masks() -> None:
    players = np.array([1, 2, 3])
    assert owner_only(players, np.array([2, 0, 1])).tolist() == [
        [False, False, True],
        [True, False, False],
        [False, False, False],
    ]
    assert same_group(np.array([0, 1, 0]), np.array([0, -1, 1])).tolist() == [
        [True, False, False],
        [False, False, True],
        [True, False, False],
    ]


def test_a_declared_hidden_component_needs_its_mask_every_tick() -> None:
    world = WorldState.from_view(
        1, np.array([1, 2], dtype="<u4"), {"secret": np.ones((2, 8), "u1"), "gold": np.array([1, 2], "<u4"), "xy": np.zeros((2, 2), "<i2")},
        SCHEMA,
    )  # fmt: skip
    mask = np.ones((1, 2), dtype=bool)
    with pytest.raises(VisibilityError, match="exactly the hidden components"):
        split_views(world, Visibility(np.array([7]), mask, {"gold": mask}), world.ids, SCHEMA, HIDDEN)
    with pytest.raises(VisibilityError, match="must be bool of shape"):
        split_views(
            world, Visibility(np.array([7]), mask, {"gold": mask, "secret": mask[:, :1]}), world.ids, SCHEMA, HIDDEN
        )
    with pytest.raises(VisibilityError, match="exactly the hidden components"):
        split_views(world, Visibility(np.array([7]), mask, {"gold": mask}), world.ids, SCHEMA)


class _Declares:
    def __init__(self, hidden: tuple[str, ...], with_visibility: bool) -> None:
        self.hidden_components = hidden
        if with_visibility:
            self.visibility = lambda view: None


@pytest.mark.parametrize(
    ("hidden", "with_visibility", "why"),
    [(("nope",), True, "not one of the game's components"), (("gold", "gold"), True, "twice"),
     (("gold",), False, "must define visibility")],
)  # fmt: skip
def test_a_bad_declaration_is_refused(hidden, with_visibility, why) -> None:
    with pytest.raises(VisibilityError, match=why):
        hidden_components(_Declares(hidden, with_visibility), SCHEMA)
    assert hidden_components(_Declares(("gold",), True), SCHEMA) == ("gold",)


def test_players_who_see_the_same_hidden_values_share_one_view() -> None:
    world = WorldState.from_view(
        1, np.array([1, 2, 3], dtype="<u4"),
        {"secret": np.ones((3, 8), "u1"), "gold": np.array([1, 2, 3], "<u4"), "xy": np.zeros((3, 2), "<i2")},
        SCHEMA,
    )  # fmt: skip
    players = np.array([1, 2, 3, 4])
    mask = np.ones((4, 3), dtype=bool)
    team = np.array([0, 0, 1, 1])
    gold = same_group(team, np.array([0, 1, 1]))
    secret = np.zeros((4, 3), dtype=bool)
    views = split_views(world, Visibility(players, mask, {"gold": gold, "secret": secret}), world.ids, SCHEMA, HIDDEN)
    assert views.distinct == 2  # one per team
    assert views.group(1) == views.group(2) != views.group(3) == views.group(4)
    team0 = views.worlds[views.group(1)]
    assert team0.components["gold"].tolist() == [1, 0, 0]
    assert not np.count_nonzero(team0.components["secret"])
