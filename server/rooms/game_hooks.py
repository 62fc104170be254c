"""The game's optional lifecycle hooks, called on the room's task, each with
its failure policy (docs/games.md, "Hooks").

A game may define any of these; one without them keeps the room's default
behaviour (nothing happens):

    on_drop(player_id)      the player's connection dropped; its avatar stays
                            for the rejoin grace (a crash here: the room
                            closes with 4103, reported)
    on_rejoin(player_id)    the player is back on a new connection (a crash
                            here: the room closes with 4103, reported)
    on_end(reason)          the room ends: "closed", "idle", "handed_over",
                            "shutdown", "match_ended" (a crash here is logged
                            and reported; the room ends as planned)
    on_signal(data)         a JSON object from POST /v1/rooms/{id}/signal;
                            returns the JSON answer (a crash here answers
                            that signal with signal_failed, reported; the
                            room plays on)

Drop and rejoin are notices the game cannot refuse, made in the middle of
its world's update: a game that raised there may be half-changed, so the
room stops trusting it (as for step()). A signal, like a join, is a request:
refusing it leaves the room as it was. The reports are ``log.exception``
records carrying the room id, tick and game, which the Sentry handler
(tickroom.server.ops.sentry) sends on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from tickroom.protocol.errors import Code
from tickroom.simulation.game import Game
from tickroom.simulation.room_requests import RoomRequest

log = logging.getLogger(__name__)

MAX_SIGNAL_ANSWER_BYTES = 16 * 1024  # a game's answer to a signal, JSON-encoded

#: Why a room ended, as the game's on_end hears it, by the close code its
#: clients got (any other code: "closed").
END_REASONS: Mapping[Code, str] = {
    Code.ROOM_CLOSED: "closed",
    Code.REDIRECT: "handed_over",
    Code.ROOM_RECOVERING: "handed_over",
    Code.GOING_AWAY: "shutdown",
    Code.MATCH_ENDED: "match_ended",
}


class SignalError(Exception):
    """A signal the room could not answer. ``reason`` is stable and machine-
    readable (the control API's error reason): room_busy, room_closing,
    signal_timeout, signal_unsupported, signal_failed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def _hook(game: Game, name: str) -> Callable[..., Any] | None:
    hook = getattr(game, name, None)
    return hook if callable(hook) else None


class GameHooks:
    """The hooks ``game`` defines, resolved once, and its request outbox."""

    def __init__(self, game: Game, room_id: str) -> None:
        self.game = game
        self.room_id = room_id
        self._on_drop = _hook(game, "on_drop")
        self._on_rejoin = _hook(game, "on_rejoin")
        self._on_end = _hook(game, "on_end")
        self._on_signal = _hook(game, "on_signal")
        self.hook_failures = 0  # contained exceptions (on_end, on_signal)

    def dropped(self, player_id: int) -> None:
        """Tell the game a player's connection dropped. Exceptions propagate
        to the room's fence (4103)."""
        if self._on_drop is not None:
            self._on_drop(player_id)

    def rejoined(self, player_id: int) -> None:
        """Tell the game a player is back. Exceptions propagate to the room's fence (4103)."""
        if self._on_rejoin is not None:
            self._on_rejoin(player_id)

    def ended(self, reason: str) -> None:
        """Tell the game its room ends. Never raises: a failure is logged and reported."""
        if self._on_end is None:
            return
        try:
            self._on_end(reason)
        except Exception:  # noqa: BLE001 - the room ends anyway; the report is the policy
            self.hook_failures += 1
            self._report("on_end")

    def signal(self, data: Mapping[str, Any]) -> Any:
        """The game's JSON answer to ``data``. Raises SignalError
        (signal_unsupported, signal_failed); never anything else."""
        if self._on_signal is None:
            raise SignalError("signal_unsupported", f"the game {self.game.name!r} takes no signals")
        try:
            answer = self._on_signal(data)
            size = len(json.dumps(answer, separators=(",", ":"), allow_nan=False).encode())
        except Exception:  # noqa: BLE001 - the signal is refused; the room plays on
            self.hook_failures += 1
            self._report("on_signal")
            raise SignalError("signal_failed", "the game failed to answer the signal; the room plays on") from None
        if size > MAX_SIGNAL_ANSWER_BYTES:
            self.hook_failures += 1
            log.error(
                "room %s: the game's answer to a signal is %d bytes, over %d", self.room_id, size, MAX_SIGNAL_ANSWER_BYTES,
                extra={"room_id": self.room_id, "tick": self.game.tick, "game": self.game.name},
            )  # fmt: skip
            raise SignalError("signal_failed", f"the game's answer is over {MAX_SIGNAL_ANSWER_BYTES} bytes")
        return answer

    def take_requests(self) -> list[RoomRequest]:
        """What the game asked of its room since the last take (its ``requests``
        outbox, tickroom.simulation.room_requests), oldest first."""
        requests = getattr(self.game, "requests", None)
        return requests.take() if requests is not None else []

    def _report(self, hook: str) -> None:
        log.exception(
            "room %s: the game's %s() raised", self.room_id, hook,
            extra={"room_id": self.room_id, "tick": self.game.tick, "game": self.game.name},
        )  # fmt: skip
