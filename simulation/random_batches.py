"""Valid random input batches for any game, built from its ``input_fields``.

The step benchmark (tickroom.simulation.bench) feeds a game what a room
would: each tick one row per player, ascending player ids (the InputBatch
contract), every field present with the dtype the room gives it (float64,
int64, bool) and a value its validator would accept. The values wander as a
player's stick does rather than jump: a float moves by up to WANDER_STEP of
its range per tick, an int changes now and then, a bool is pressed now and
then, so a game sees realistic inputs rather than noise.

The same idea as the load tester's bots (tickroom.protocol.random_inputs),
vectorised over players with numpy and written here because simulation
does not import the protocol.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from tickroom.simulation.game import InputBatch

WANDER_STEP = 0.15  # of a float field's range, at most, per tick
INT_CHANGE_P = 0.1  # an int field takes a new value on this share of ticks
BOOL_TRUE_P = 0.1  # a bool field is true on this share of ticks
UNBOUNDED_SPAN = 1.0  # a float field with an infinite bound wanders in [-1, 1] clamped to it


class RandomBatches:
    """Random valid input batches for one game's players.

    ``input_fields`` is the game's declaration (``{"mx": ("float", -1, 1),
    "fire": ("bool",), "slot": ("int", 0, 3)}``); raises ValueError when a
    field is not of that form or its range holds no value. ``players`` are
    the players' entity ids; ``rng`` makes the batches reproducible.
    """

    def __init__(self, input_fields: Mapping[str, Any], players: np.ndarray, rng: np.random.Generator) -> None:
        self._rng = rng
        self._players = np.sort(np.asarray(players, dtype=np.int64))
        n = self._players.shape[0]
        self._floats: dict[str, tuple[float, float, np.ndarray]] = {}
        self._ints: dict[str, tuple[int, int, np.ndarray]] = {}
        self._bools: list[str] = []
        for name, spec in input_fields.items():
            kind = spec[0] if isinstance(spec, (tuple, list)) and spec else None
            if kind == "bool":
                self._bools.append(name)
            elif kind == "int" and len(spec) == 3:
                lo, hi = math.ceil(spec[1]), math.floor(spec[2])
                if lo > hi:
                    raise ValueError(f"input field {name!r}: no integer in [{spec[1]}, {spec[2]}]")
                self._ints[name] = (lo, hi, rng.integers(lo, hi, n, endpoint=True))
            elif kind == "float" and len(spec) == 3:
                flo, fhi = _wander_range(name, float(spec[1]), float(spec[2]))
                self._floats[name] = (flo, fhi, np.asarray(rng.uniform(flo, fhi, n), dtype=np.float64))
            else:
                raise ValueError(f"input field {name!r}: {spec!r} is not ('float'|'int', lo, hi) or ('bool',)")

    def next(self) -> InputBatch:
        """This tick's batch: one row per player, every field present."""
        rng, n = self._rng, self._players.shape[0]
        fields: dict[str, np.ndarray] = {}
        for name, (flo, fhi, value) in self._floats.items():
            step = (fhi - flo) * WANDER_STEP
            value += rng.uniform(-step, step, n)
            np.clip(value, flo, fhi, out=value)
            fields[name] = value.copy()  # the game may keep the column; the walk goes on in ours
        for name, (lo, hi, ivalue) in self._ints.items():
            change = rng.random(n) < INT_CHANGE_P
            ivalue[change] = rng.integers(lo, hi, int(np.count_nonzero(change)), endpoint=True)
            fields[name] = ivalue.copy()
        for name in self._bools:
            fields[name] = np.asarray(rng.random(n) < BOOL_TRUE_P, dtype=np.bool_)
        return InputBatch(players=self._players.copy(), fields=fields)


def _wander_range(name: str, lo: float, hi: float) -> tuple[float, float]:
    """Where a float field wanders: its range, or for an infinite bound a
    finite window (around 0 when it can be) inside it: a room refuses
    non-finite floats, so a game never sees one."""
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise ValueError(f"input field {name!r}: [{lo}, {hi}] is not a range")
    if math.isfinite(lo) and math.isfinite(hi):
        return lo, hi
    wlo = lo if math.isfinite(lo) else min(-UNBOUNDED_SPAN, hi - 2 * UNBOUNDED_SPAN)
    whi = hi if math.isfinite(hi) else max(UNBOUNDED_SPAN, wlo + 2 * UNBOUNDED_SPAN)
    wlo, whi = max(lo, wlo), min(hi, whi)
    if not (math.isfinite(wlo) and math.isfinite(whi) and wlo <= whi):
        raise ValueError(f"input field {name!r}: [{lo}, {hi}] holds no finite value")
    return wlo, whi
