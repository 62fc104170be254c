"""A small card game: hidden components and game messages, end to end.

Each player holds a hand of HAND cards (1..52; 0 is no card). The hand is a
hidden component that only its holder sees (everyone else reads zeros); how
many cards a player holds ("count") and the top of the pile ("top", on the
pile entity) are public. Players send messages, not inputs:

- ``play`` {slot}: play the card in that slot of the hand onto the pile; the
  holder draws a replacement and is told privately which card it drew
  ("drew", to that player only); everyone sees a "played" event.
- ``chat`` {text}: a chat line, sent by the game to every player ("chat").
- ``whisper`` {to, text}: a chat line to one player and its sender.

Dealt from one seeded deck; state() is the whole truth (deck, hands, pile).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from tickroom.simulation.game import GameConfig, GameFull, InputBatch, View, Visibility
from tickroom.simulation.hidden import owner_only
from tickroom.simulation.player_messages import PlayerMessage
from tickroom.simulation.room_requests import RoomRequests

HAND = 5
DECK = 52
PILE_ID = 1000  # the pile's entity id; players are 1..max_players


class Cards:
    name: ClassVar[str] = "cards"
    input_fields: ClassVar[Mapping[str, tuple]] = {}
    components: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "hand": {"dtype": "|u1", "shape": [HAND]},
        "count": {"dtype": "|u1", "shape": []},
        "top": {"dtype": "|u1", "shape": []},
    }
    hidden_components: ClassVar[tuple[str, ...]] = ("hand",)
    message_types: ClassVar[Mapping[str, Mapping[str, tuple]]] = {
        "play": {"slot": ("int", 0, HAND - 1)},
        "chat": {"text": ("str", 100)},
        "whisper": {"to": ("int", 1, 999), "text": ("str", 100)},
    }
    message_rate: ClassVar[float] = 10.0

    def __init__(self, seed: int, config: GameConfig) -> None:
        self.config = config
        self.tick = 0
        self.requests = RoomRequests()
        self.rng = np.random.default_rng(seed)
        n = config.max_players
        self.seated = np.zeros(n, dtype=bool)
        self.hands = np.zeros((n, HAND), dtype=np.uint8)
        self.deck = (self.rng.permutation(DECK) + 1).astype(np.uint8)
        self.drawn = 0
        self.top = 0
        self._events: list[list[Any]] = []

    # -- players -----------------------------------------------------------

    def join(self, name: str) -> int:
        free = np.flatnonzero(~self.seated)
        if not free.shape[0]:
            raise GameFull()
        slot = int(free[0])
        self.seated[slot] = True
        self.hands[slot] = [self._draw() for _ in range(HAND)]
        return slot + 1

    def leave(self, player_id: int) -> None:
        slot = player_id - 1
        if 0 <= slot < self.seated.shape[0]:
            self.seated[slot] = False
            self.hands[slot] = 0

    def _draw(self) -> int:
        if self.drawn >= DECK:
            return 0  # the deck is out: no card
        card = int(self.deck[self.drawn])
        self.drawn += 1
        return card

    # -- the tick ------------------------------------------------------------

    def apply_inputs(self, batch: InputBatch) -> None:
        pass  # this game is played with messages

    def handle_messages(self, messages: list[PlayerMessage]) -> None:
        for msg in messages:  # a handful per tick: the game's own rules, one by one
            slot = msg.player - 1
            if not (0 <= slot < self.seated.shape[0] and self.seated[slot]):
                continue
            if msg.kind == "play":
                card = int(self.hands[slot, msg.data["slot"]])
                if not card:
                    continue
                self.top = card
                drew = self._draw()
                self.hands[slot, msg.data["slot"]] = drew
                self._events.append(["played", msg.player, card])
                self.requests.send("drew", {"card": drew, "slot": msg.data["slot"]}, to=msg.player)
            elif msg.kind == "chat":
                self.requests.send("chat", {"from": msg.player, "text": msg.data["text"]})
            elif msg.kind == "whisper":
                to = {msg.player, msg.data["to"]}
                self.requests.send("whisper", {"from": msg.player, "text": msg.data["text"]}, to=sorted(to))

    def step(self) -> list[list[Any]]:
        self.tick += 1
        events, self._events = self._events, []
        return events

    def view(self) -> View:
        slots = np.flatnonzero(self.seated)
        ids = np.append(slots + 1, PILE_ID).astype("<u4")
        hands = np.zeros((ids.shape[0], HAND), dtype=np.uint8)
        hands[:-1] = self.hands[slots]
        count = np.count_nonzero(hands, axis=1).astype(np.uint8)
        top = np.zeros(ids.shape[0], dtype=np.uint8)
        top[-1] = self.top
        return View(ids=ids, components={"hand": hands, "count": count, "top": top})

    def visibility(self, view: View) -> Visibility:
        players = np.flatnonzero(self.seated).astype(np.int64) + 1
        everything = np.ones((players.shape[0], view.ids.shape[0]), dtype=bool)
        # A hand is its holder's (entity id == player id); the pile's is nobody's.
        return Visibility(players, everything, {"hand": owner_only(players, view.ids.astype(np.int64))})

    # -- checkpoints -----------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "tick": self.tick,
            "seated": self.seated.copy(),
            "hands": self.hands.copy(),
            "deck": self.deck.copy(),
            "drawn": self.drawn,
            "top": self.top,
            "rng": self.rng.bit_generator.state,
        }

    @classmethod
    def restore(cls, state: Mapping[str, Any], config: GameConfig) -> Cards:
        game = cls(0, config)
        game.tick = int(state["tick"])
        game.seated = np.array(state["seated"], dtype=bool)
        game.hands = np.array(state["hands"], dtype=np.uint8)
        game.deck = np.array(state["deck"], dtype=np.uint8)
        game.drawn = int(state["drawn"])
        game.top = int(state["top"])
        game.rng.bit_generator.state = state["rng"]
        return game
