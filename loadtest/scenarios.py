"""Scenarios: when each bot joins and leaves, decided up front from --seed.

The whole schedule is computed in the parent before any worker starts, so a
run is reproducible (the same bots, rooms, join and leave times and input
streams for the same flags and seed) whatever the number of processes.

- steady: every seat gets one bot; the bots join evenly spread over
  --ramp-up and stay to the end.
- churn: every seat is a chain of bots. Each bot lives an exponentially
  distributed lifetime (mean: a quarter of the run, at least 1 s), leaves
  and is replaced at once by a new bot (a new player, a new join), so bots
  leave and join all the time while the room stays about full.
- burst: like steady, but everyone joins in the same second (at t = 0).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SCENARIOS = ("steady", "churn", "burst")
MIN_LIFETIME_S = 1.0
MAX_BOTS_PER_SEAT = 1000  # a bound on churn chains, whatever the flags


@dataclass(frozen=True)
class BotSpec:
    """One bot: a player that joins once (and rejoins after drops)."""

    index: int  # unique in the run, stable for a seed
    room: int  # room index, 0 .. rooms-1
    name: str
    join_at: float  # seconds since the start of the run
    leave_at: float
    seed: int  # the bot's own RNG seed (its inputs)


def schedule(
    scenario: str, *, rooms: int, bots_per_room: int, duration: float, ramp_up: float, seed: int
) -> list[BotSpec]:
    """Every bot of the run, in join order."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r} (one of {', '.join(SCENARIOS)})")
    rng = random.Random(seed)  # nosec B311 - a reproducible schedule, not security
    seats = rooms * bots_per_room
    ramp = 0.0 if scenario == "burst" else min(ramp_up, duration)
    specs: list[BotSpec] = []
    for seat in range(seats):
        room = seat % rooms  # interleaved: the rooms fill up together
        join_at = ramp * seat / seats
        for _ in range(MAX_BOTS_PER_SEAT):
            if scenario == "churn":
                lifetime = max(MIN_LIFETIME_S, rng.expovariate(4.0 / max(duration, 1e-9)))
                leave_at = min(duration, join_at + lifetime)
            else:
                leave_at = duration
            index = len(specs)
            specs.append(BotSpec(index, room, f"bot-{index}", join_at, leave_at, rng.getrandbits(32)))
            join_at = leave_at
            if join_at >= duration - MIN_LIFETIME_S / 2 or scenario != "churn":
                break
    specs.sort(key=lambda s: (s.join_at, s.index))
    return specs
