"""The players of one room and their links, indexed the ways the tick needs.

A player outlives its connection: when the link drops, the avatar stays for
the rejoin grace period and a new connection with the session token takes it
over (same entity, no duplicate).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from tickroom.protocol import messages as m
from tickroom.protocol.game_messages import GameMessage
from tickroom.server.rooms.link import ClientLink


@dataclass(eq=False)
class Player:
    id: int  # the avatar's entity id
    name: str
    session: str  # token for rejoining
    link: ClientLink | None = None
    linked_tick: int = 0  # tick the current link attached (ack timeout counts from here)
    detached_tick: int = 0  # tick the last link dropped (rejoin grace counts from here)
    last_seq: int = 0  # newest input seq applied
    acked: int = m.NO_TICK  # newest snapshot tick the current link acknowledged
    inbox: list[GameMessage] = field(default_factory=list)  # game messages received since the last tick
    mail_n: int = 0  # number of the last game message sent to it (game_mail)
    mail_log: deque[tuple[int, bytes]] = field(default_factory=deque)  # (tick, message) kept for a replay
    wire_version: int = m.PROTOCOL_VERSION  # the protocol version of the current link's join


def _by_id(player: Player) -> int:
    return player.id


class PlayerTable:
    """Owned by the room task."""

    def __init__(self) -> None:
        self._by_id: dict[int, Player] = {}
        self._by_session: dict[str, Player] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Player]:
        return iter(list(self._by_id.values()))

    def add(self, player: Player) -> None:
        self._by_id[player.id] = player
        self._by_session[player.session] = player

    def remove(self, player: Player) -> None:
        self.detach(player, player.detached_tick)
        self._by_id.pop(player.id, None)
        self._by_session.pop(player.session, None)

    def attach(self, player: Player, link: ClientLink, tick: int) -> None:
        """Give the player a (new) connection; the old one, if any, is
        forgotten (the room never reads it again)."""
        player.link = link
        player.linked_tick = tick
        player.acked = m.NO_TICK
        player.inbox.clear()

    def detach(self, player: Player, tick: int) -> None:
        if player.link is not None:
            player.link = None
            player.detached_tick = tick
        player.inbox.clear()

    def by_id(self, player_id: int) -> Player | None:
        return self._by_id.get(player_id)

    def by_session(self, token: str) -> Player | None:
        return self._by_session.get(token)

    def connected(self) -> Iterator[tuple[Player, ClientLink]]:
        """The players with a link, each with it."""
        return ((p, p.link) for p in self._by_id.values() if p.link is not None)

    def connected_count(self) -> int:
        return sum(1 for p in self._by_id.values() if p.link is not None)

    def with_messages(self) -> list[Player]:
        """In id order (the game's messages, hence its world, are
        deterministic): the players with game messages queued."""
        return sorted((p for p in self._by_id.values() if p.inbox), key=_by_id)
