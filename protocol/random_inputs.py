"""Valid random inputs for any game, built from the welcome's input fields.

The welcome describes a game's inputs (``inputs``: ``{"mx": ["float", -1, 1],
"fire": ["bool"], "slot": ["int", 0, 3]}``, docs/protocol.md); a bot that
draws its inputs from that description plays any game without knowing it,
and every input it sends passes the server's validation (its exact wire
types, in range). The values wander rather than jump, as a player's stick
does: a float moves by up to WANDER_STEP of its range per input, an int
changes now and then, a bool is pressed now and then.

Pure and seeded: the same fields and seed give the same inputs (a load
test's ``--seed`` reproduces a run's workload).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from tickroom.protocol.validate import InputFields

WANDER_STEP = 0.15  # of a float field's range, at most, per input
INT_CHANGE_P = 0.1  # an int field takes a new value on this share of inputs
BOOL_TRUE_P = 0.1  # a bool field is true on this share of inputs
UNBOUNDED_SPAN = 1.0  # a float field with an infinite bound wanders in [-1, 1] clamped to it


class RandomInputs:
    """Random inputs valid for one game's input fields.

    ``fields`` is the welcome's ``inputs`` (or a game's ``input_fields``);
    raises ValueError when it is not a valid description. ``next()`` returns
    one input payload (the ``in`` of an ``input`` message) with every field
    present, floats as floats, ints as ints, bools as bools.
    """

    def __init__(self, fields: Mapping[str, Any], rng: random.Random) -> None:
        self._rng = rng
        self._floats: list[tuple[str, float, float]] = []
        self._ints: list[tuple[str, int, int]] = []
        self._bools: list[str] = []
        self._state: dict[str, Any] = {}
        for name, spec in InputFields(fields).fields.items():
            kind = spec[0]
            if kind == "bool":
                self._bools.append(name)
            elif kind == "int":
                lo, hi = math.ceil(spec[1]), math.floor(spec[2])
                if lo > hi:  # e.g. [0.2, 0.8]: no valid value exists
                    raise ValueError(f"input field {name!r}: no integer in [{spec[1]}, {spec[2]}]")
                self._ints.append((name, lo, hi))
                self._state[name] = rng.randint(lo, hi)
            else:
                lo, hi = _wander_range(float(spec[1]), float(spec[2]))
                self._floats.append((name, lo, hi))
                self._state[name] = rng.uniform(lo, hi)

    def next(self) -> dict[str, Any]:
        """The next input payload."""
        rng, state = self._rng, self._state
        for name, lo, hi in self._floats:
            step = (hi - lo) * WANDER_STEP
            state[name] = min(hi, max(lo, state[name] + rng.uniform(-step, step)))
        for name, ilo, ihi in self._ints:
            if rng.random() < INT_CHANGE_P:
                state[name] = rng.randint(ilo, ihi)
        payload = dict(state)
        for name in self._bools:
            payload[name] = rng.random() < BOOL_TRUE_P
        return payload


def _wander_range(lo: float, hi: float) -> tuple[float, float]:
    """Where a float field wanders: its range, or for an infinite bound a
    finite window (around 0 when it can be) inside the range: the server
    refuses non-finite floats."""
    if math.isfinite(lo) and math.isfinite(hi):
        return lo, hi
    wlo = lo if math.isfinite(lo) else min(-UNBOUNDED_SPAN, hi - 2 * UNBOUNDED_SPAN)
    whi = hi if math.isfinite(hi) else max(UNBOUNDED_SPAN, wlo + 2 * UNBOUNDED_SPAN)
    wlo, whi = max(lo, wlo), min(hi, whi)
    if not (math.isfinite(wlo) and math.isfinite(whi) and wlo <= whi):  # [-inf, -inf] or [inf, inf]
        raise ValueError(f"an input field's range [{lo}, {hi}] holds no finite value")
    return wlo, whi
