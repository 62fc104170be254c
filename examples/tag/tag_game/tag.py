"""Tag: one player is "it"; touching another player passes "it" on.

Unlike tickroom's arena (a shooter whose inputs persist), tag is about
positions only: each player steers with a stick (mx, my); "it" moves a
little faster; after a tag the new "it" cannot tag back for a moment. Every
second a player is not "it" scores it a point.

The world is a few numpy arrays, one row per player in join order; the step
is vectorised (no Python loop over players) and counts ticks, never reads a
clock. Options (room options, set by the matchmaker):

    size      side of the square field, units (default 50)
    speed     units per second at full stick (default 10)
    cooldown  seconds after a tag before the new "it" may tag (default 1)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from tickroom import GameConfig, GameFull, InputBatch, View
from tickroom.simulation.inputs import rows_by_player
from tickroom.simulation.options import Option, float_option

RADIUS = 1.0  # units: a player's circle; two touch at 2 * RADIUS
IT_SPEEDUP = 1.15  # "it" is this much faster than the others
POSITION_SCALE = 32  # wire: int16 positions in 1/32 unit, up to 1023.97 units
STATE_VERSION = 1


def _ticks(seconds: float, tick_rate: int) -> int:
    return max(0, round(seconds * tick_rate))


class Tag:
    """The tag game (see the module docstring)."""

    name: ClassVar[str] = "tag"
    input_fields: ClassVar[Mapping[str, tuple]] = {
        "mx": ("float", -1.0, 1.0),
        "my": ("float", -1.0, 1.0),
    }
    components: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "pos": {"dtype": "<i2", "shape": [2], "scale": POSITION_SCALE},
        "it": {"dtype": "|u1", "shape": []},
        "score": {"dtype": "<u2", "shape": []},
    }
    options: ClassVar[Mapping[str, Option]] = {
        "size": float_option(50.0, lo=10.0, hi=1000.0, doc="side of the square field, units"),
        "speed": float_option(10.0, lo=1.0, hi=50.0, doc="units per second at full stick"),
        "cooldown": float_option(1.0, lo=0.0, hi=10.0, doc="seconds before the new it may tag"),
    }

    def __init__(self, seed: int, config: GameConfig) -> None:
        options = {name: option.default for name, option in self.options.items()} | dict(config.options)
        self.config = config
        self.tick = 0
        self.rng = np.random.default_rng(seed)
        self._size = float(options["size"])
        self._speed = float(options["speed"])
        self._cooldown_ticks = _ticks(float(options["cooldown"]), config.tick_rate)
        self._ids = np.zeros(0, dtype=np.int64)
        self._pos = np.zeros((0, 2), dtype=np.float64)
        self._stick = np.zeros((0, 2), dtype=np.float64)
        self._score = np.zeros(0, dtype=np.int64)  # whole seconds not being it
        self._names: list[str] = []
        self._next_id = 1
        self._it = 0  # entity id of "it"; 0: nobody (an empty field)
        self._cooldown = 0  # ticks until "it" may tag

    # -- players ---------------------------------------------------------------

    def join(self, name: str) -> int:
        if self._ids.shape[0] >= self.config.max_players:
            raise GameFull(f"tag holds {self.config.max_players} players")
        pid = self._next_id
        self._next_id += 1
        self._ids = np.append(self._ids, pid)
        self._pos = np.vstack([self._pos, self.rng.uniform(RADIUS, self._size - RADIUS, size=(1, 2))])
        self._stick = np.vstack([self._stick, np.zeros((1, 2))])
        self._score = np.append(self._score, 0)
        self._names.append(str(name))
        if self._it == 0:
            self._it = pid
        return pid

    def leave(self, player_id: int) -> None:
        keep = self._ids != player_id
        if keep.all():
            return  # unknown ids are ignored
        index = int(np.flatnonzero(~keep)[0])
        del self._names[index]
        self._ids, self._pos, self._stick, self._score = (
            self._ids[keep], self._pos[keep], self._stick[keep], self._score[keep]
        )  # fmt: skip
        if player_id == self._it:
            # "it" left: the game goes on with a player drawn by the room's RNG.
            self._it = int(self.rng.choice(self._ids)) if self._ids.shape[0] else 0
            self._cooldown = self._cooldown_ticks

    # -- the tick --------------------------------------------------------------

    def apply_inputs(self, batch: InputBatch) -> None:
        if len(batch) == 0 or self._ids.shape[0] == 0:
            return
        rows = rows_by_player(batch.players)
        index = np.searchsorted(self._ids, rows.ids)  # ids are ascending: join order
        index = np.minimum(index, self._ids.shape[0] - 1)
        known = self._ids[index] == rows.ids
        stick = np.stack([batch.fields["mx"][rows.last], batch.fields["my"][rows.last]], axis=1)
        self._stick[index[known]] = np.clip(stick[known], -1.0, 1.0)

    def step(self) -> list[list[Any]]:
        self.tick += 1
        events: list[list[Any]] = []
        if self._ids.shape[0] == 0:
            return events
        dt = self.config.dt
        is_it = self._ids == self._it
        speed = np.where(is_it, self._speed * IT_SPEEDUP, self._speed)[:, None]
        self._pos += self._stick * speed * dt
        np.clip(self._pos, RADIUS, self._size - RADIUS, out=self._pos)
        if self.tick % self.config.tick_rate == 0:
            self._score += ~is_it
        if self._cooldown > 0:
            self._cooldown -= 1
            return events
        d2 = np.sum((self._pos - self._pos[is_it][0]) ** 2, axis=1)
        d2[is_it] = np.inf
        nearest = int(np.argmin(d2))
        if d2[nearest] <= (2 * RADIUS) ** 2:
            tagged = int(self._ids[nearest])
            events.append(["tag", self._it, tagged])
            self._it = tagged
            self._cooldown = self._cooldown_ticks
        return events

    def view(self) -> View:
        return View(
            ids=self._ids.astype(np.uint32),
            components={
                "pos": np.round(self._pos * POSITION_SCALE).astype("<i2"),
                "it": (self._ids == self._it).astype(np.uint8),
                "score": np.minimum(self._score, 65535).astype("<u2"),
            },
        )

    # -- checkpoints -----------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "tick": self.tick,
            "tick_rate": self.config.tick_rate,
            "ids": self._ids.copy(),
            "pos": self._pos.copy(),
            "stick": self._stick.copy(),
            "score": self._score.copy(),
            "names": list(self._names),
            "next_id": self._next_id,
            "it": self._it,
            "cooldown": self._cooldown,
            "rng": self.rng.bit_generator.state,
        }

    @classmethod
    def restore(cls, state: Mapping[str, Any], config: GameConfig) -> Tag:
        if state.get("version") != STATE_VERSION or int(state["tick_rate"]) != config.tick_rate:
            raise ValueError("this tag state does not match the version or the room's tick rate")
        game = cls(seed=0, config=config)
        game.tick = int(state["tick"])
        game._ids = np.array(state["ids"], dtype=np.int64)
        game._pos = np.array(state["pos"], dtype=np.float64).reshape(-1, 2)
        game._stick = np.array(state["stick"], dtype=np.float64).reshape(-1, 2)
        game._score = np.array(state["score"], dtype=np.int64)
        game._names = [str(n) for n in state["names"]]
        game._next_id = int(state["next_id"])
        game._it = int(state["it"])
        game._cooldown = int(state["cooldown"])
        game.rng.bit_generator.state = dict(state["rng"])
        return game
