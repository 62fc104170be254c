"""Tag that records every lifecycle hook and obeys signals: the room's
lifecycle tests drive it (tests/server/test_game_hooks.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from tag_game.tag import Tag

from tickroom import GameConfig, RoomRequests


class Lifecycle(Tag):
    name: ClassVar[str] = "lifecycle"

    def __init__(self, seed: int, config: GameConfig) -> None:
        super().__init__(seed, config)
        self.requests = RoomRequests()
        self.heard: list[tuple[Any, ...]] = []  # (hook, argument, tick)
        self.raise_in: set[str] = set()  # hooks that raise (a game's bug)

    def _hear(self, hook: str, arg: Any) -> None:
        self.heard.append((hook, arg, self.tick))
        if hook in self.raise_in:
            raise RuntimeError(f"a bug in {hook}")

    def on_drop(self, player_id: int) -> None:
        self._hear("drop", player_id)

    def on_rejoin(self, player_id: int) -> None:
        self._hear("rejoin", player_id)

    def on_end(self, reason: str) -> None:
        self._hear("end", reason)

    def leave(self, player_id: int) -> None:
        self.heard.append(("leave", player_id, self.tick))
        super().leave(player_id)

    def on_signal(self, data: Mapping[str, Any]) -> Any:
        self._hear("signal", dict(data))
        op = data.get("op")
        if op == "end":
            self.requests.end_match(str(data.get("reason", "match over")))
        elif op == "kick":
            self.requests.kick(int(data["player"]), str(data.get("reason", "kicked")))
        elif op == "labels":
            self.requests.set_labels(**data["labels"])
        elif op == "big":
            return {"blob": "x" * 20_000}
        elif op == "nan":
            return {"x": float("nan")}
        return {"tick": self.tick, "players": [int(i) for i in self._ids]}
