"""Shared helpers for the simulation tests: building worlds and scripting inputs.

Worlds are arranged through the public checkpoint path (state() -> edit ->
restore()), never by poking private attributes, so every arranged test also
exercises restore().
"""

from __future__ import annotations

import numpy as np

from tickroom.simulation.game import GameConfig, InputBatch
from tickroom.simulation.games.arena import Arena


def new_game(players: int = 0, seed: int = 7, **options) -> tuple[Arena, list[int]]:
    max_players = max(16, players)
    game = Arena(seed=seed, config=GameConfig(max_players=max_players, options=options))
    ids = [game.join(f"p{i}") for i in range(players)]
    return game, ids


def edit_players(game: Arena, **fields) -> Arena:
    """A copy of game with the given player fields (state() names without
    the "p_" prefix, one value per player) replaced."""
    state = game.state()
    for k, v in fields.items():
        state["p_" + k] = np.asarray(v, dtype=state["p_" + k].dtype).reshape(state["p_" + k].shape)
    return Arena.restore(state, game.config)


def batch(rows: list[tuple[int, float, float, float, bool]], ticks: list[int] | None = None) -> InputBatch:
    """An InputBatch from (player, mx, my, aim, fire) rows, in the given
    order; with ``ticks``, each row's client tick (and seqs 1, 2, ...)."""
    if not rows:
        return InputBatch.empty(Arena.input_fields)
    players, mx, my, aim, fire = zip(*rows, strict=True)
    return InputBatch(
        players=np.array(players, dtype=np.int64),
        fields={
            "mx": np.array(mx, dtype=np.float64),
            "my": np.array(my, dtype=np.float64),
            "aim": np.array(aim, dtype=np.float64),
            "fire": np.array(fire, dtype=bool),
        },
        seqs=None if ticks is None else np.arange(1, len(players) + 1, dtype=np.int64),
        ticks=None if ticks is None else np.array(ticks, dtype=np.int64),
    )


def random_batch(rng: np.random.Generator, ids: list[int]) -> InputBatch:
    """A plausible tick of inputs: a random ~70% of players, 1-3 rows each,
    grouped by player in a shuffled player order."""
    players = rng.permutation(np.array(ids, dtype=np.int64))
    players = players[rng.random(players.shape[0]) < 0.7]
    players = np.repeat(players, rng.integers(1, 4, size=players.shape[0]))
    n = players.shape[0]
    return InputBatch(
        players=players,
        fields={
            "mx": rng.uniform(-1, 1, n),
            "my": rng.uniform(-1, 1, n),
            "aim": rng.uniform(-3.14159265, 3.14159265, n),
            "fire": rng.random(n) < 0.5,
        },
    )


def states_equal(a: dict, b: dict) -> bool:
    """Exact equality of two state() dicts, arrays compared bit for bit."""
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, np.ndarray):
            if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                return False
        elif x != y:
            return False
    return True
