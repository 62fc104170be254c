"""Who may join: the join-ticket check, in one place.

With a ticket secret configured, every fresh join (not a rejoin: the session
token is itself the credential) must carry a valid ticket. The ticket, not
the client, says which room and which player: the join is rewritten to the
ticket's room and the player's name becomes the ticket's player id.

A ticket admits one connection: ``check`` reserves its (room, player, nonce)
until the ticket expires, so a leaked ticket cannot seat a second copy of the
player on this node; ``release`` frees it when the join then fails (a full
room). A client that loses its connection rejoins with its session token.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections import Counter
from collections.abc import Callable

from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code
from tickroom.protocol.tickets import TicketClaims, TicketError, verify_ticket

TICKET_LEEWAY_S = 5.0  # clock skew tolerated between the matchmaker and this node
MAX_REMEMBERED_NONCES = 200_000  # ~30 MB at most; past it the soonest-expiring are forgotten


class Admission:
    """Checks join tickets. ``clock`` returns unix seconds (tickets carry
    wall-clock expiries; trio's clock is not wall-clock time)."""

    def __init__(self, secret: bytes | None, *, required: bool = True, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._required = required and secret is not None
        self._clock = clock
        self._used: dict[tuple[str, str, str], int] = {}  # (room, player, nonce) -> expiry
        self._expiries: list[tuple[int, tuple[str, str, str]]] = []  # heap, to forget expired nonces in order
        self.accepted = 0
        self.refused: Counter[str] = Counter()  # reason -> count, for metrics

    @property
    def remembered(self) -> int:
        """Used tickets remembered (until they expire)."""
        return len(self._used)

    @property
    def tickets_required(self) -> bool:
        return self._required

    def check(self, join: m.Join) -> tuple[m.Join, TicketClaims | None]:
        """Return the join to perform (rewritten from the ticket) and the
        ticket's claims, or raise TicketError (fatal; the connection sends
        its code and closes). A ticket that passes is reserved: call
        ``release(claims)`` if the join does not happen."""
        if self._secret is None or join.session is not None:
            return join, None
        if join.ticket is None:
            if not self._required:
                return join, None
            self.refused["missing"] += 1
            raise TicketError(Code.INVALID_TICKET, "missing", "this server admits players with a join ticket only")
        now = self._clock()
        try:
            claims = verify_ticket(self._secret, join.ticket, now, join.room, leeway_s=TICKET_LEEWAY_S)
        except TicketError as exc:
            self.refused[exc.reason] += 1
            raise
        self._forget_expired(now)
        if (claims.room, claims.player, claims.nonce) in self._used:
            self.refused["reused"] += 1
            raise TicketError(
                Code.INVALID_TICKET, "reused", "this ticket was used already; rejoin with the session token"
            )
        self._remember(claims)
        self.accepted += 1
        return dataclasses.replace(join, room=claims.room, name=claims.player), claims

    def release(self, claims: TicketClaims) -> None:
        """The join that ``check`` admitted failed (room full, gone, or the
        client left first): the ticket may be used again until it expires."""
        self._used.pop((claims.room, claims.player, claims.nonce), None)
        self.accepted -= 1

    def _remember(self, claims: TicketClaims) -> None:
        expiry = claims.expires + int(TICKET_LEEWAY_S) + 1
        if len(self._used) >= MAX_REMEMBERED_NONCES:
            _, oldest = heapq.heappop(self._expiries)
            self._used.pop(oldest, None)
        key = (claims.room, claims.player, claims.nonce)
        self._used[key] = expiry
        heapq.heappush(self._expiries, (expiry, key))

    def _forget_expired(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, key = heapq.heappop(self._expiries)
            self._used.pop(key, None)
