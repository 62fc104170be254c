"""check_game's rule for lag compensation (tickroom.simulation.game,
``history_ticks`` / ``remember`` / ``past``), apart from the other rules so
that each module stays small."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from tickroom.server.cluster.checkpoint import pack
from tickroom.server.rooms.world_history import history_for
from tickroom.simulation.game import InputBatch


class Checker(Protocol):
    ticks: int

    def new(self, players: int) -> tuple[Any, list[int]]: ...

    def batch(self, rng: np.random.Generator, ids: list[int]) -> InputBatch: ...


def history_rule(c: Checker, players: int) -> str:
    """With the room's ring lent as a room would, and inputs saying ticks up
    to a few past the bound: remember() hands out fresh arrays (what a tick
    recorded is unchanged ticks later), and two games fed the same inputs
    and the same history end in the same state."""
    game, ids = c.new(players)
    ring = history_for(game)
    if ring is None:
        return "no history_ticks / remember(): nothing is rewound"
    twin, _ = c.new(players)
    twin_ring = history_for(twin)
    assert twin_ring is not None
    rng = np.random.default_rng(15)
    kept: dict[int, dict[str, np.ndarray]] = {}
    for _ in range(c.ticks):
        base = c.batch(rng, ids)
        n = len(base)
        seen = np.maximum(game.tick - rng.integers(0, ring.ticks + 3, size=n), 0).astype(np.int64)
        batch = InputBatch(base.players, base.fields, seqs=np.arange(1, n + 1, dtype=np.int64), ticks=seen)
        for g, r in ((game, ring), (twin, twin_ring)):
            g.apply_inputs(batch)
            g.step()
            r.record(g.tick)
        entry = ring.at(game.tick)
        if entry is None:
            raise AssertionError("the ring does not hold the tick just recorded")
        kept[game.tick] = {k: np.array(v, copy=True) for k, v in entry.items()}
    for tick, arrays in kept.items():
        entry = ring.at(tick)
        if entry is not None and any(not np.array_equal(arrays[k], entry[k]) for k in arrays):
            raise AssertionError(f"remember() of tick {tick} changed later: it must return fresh arrays")
    if pack(game.state()) != pack(twin.state()):
        raise AssertionError("two games with the same inputs and history diverged")
    return f"{ring.ticks} ticks of history at {players} players: remember() fresh, deterministic with rewinds"
