"""Tag whose players also count: each input carries ``n`` (the client's
running number 1, 2, 3, ...) and the game keeps, per player, ``high``: the
highest n such that every input 1..n was applied. A lost input leaves
``high`` stuck below it for good, so a client can tell from the world alone
whether everything up to an input reached the game's state (the
--durable-acks test, tests/integration/test_durable_acks.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from tag_game.tag import Tag

from tickroom import GameConfig, InputBatch, View


class Counter(Tag):
    name: ClassVar[str] = "counter"
    input_fields: ClassVar[Mapping[str, tuple]] = {**Tag.input_fields, "n": ("int", 0, 2**31 - 1)}
    components: ClassVar[Mapping[str, Mapping[str, Any]]] = {**Tag.components, "high": {"dtype": "<u4", "shape": []}}

    def __init__(self, seed: int, config: GameConfig) -> None:
        super().__init__(seed, config)
        self.high: dict[int, int] = {}

    def join(self, name: str) -> int:
        pid = super().join(name)
        self.high[pid] = 0
        return pid

    def leave(self, player_id: int) -> None:
        super().leave(player_id)
        self.high.pop(player_id, None)

    def apply_inputs(self, batch: InputBatch) -> None:
        super().apply_inputs(batch)
        # A loop per input: a test game, not a model (tickroom.testing's rules).
        for pid, n in zip(batch.players.tolist(), batch.fields["n"].tolist(), strict=True):
            if pid in self.high and n == self.high[pid] + 1:
                self.high[pid] = n

    def view(self) -> View:
        view = super().view()
        high = np.array([self.high.get(int(pid), 0) for pid in view.ids], dtype="<u4")
        return View(ids=view.ids, components={**view.components, "high": high})

    def state(self) -> dict[str, Any]:
        return {**super().state(), "high": [[pid, n] for pid, n in self.high.items()]}

    @classmethod
    def restore(cls, state: Mapping[str, Any], config: GameConfig) -> Counter:
        game = super().restore(state, config)
        assert isinstance(game, Counter)
        game.high = {int(pid): int(n) for pid, n in state["high"]}
        return game
