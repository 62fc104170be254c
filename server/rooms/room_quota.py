"""How many rooms the clients of one source address may have created.

With client rooms on (``--allow-client-rooms``), a ``join`` that names a
room nobody runs creates it. Without a quota one client could fill the
node's ``--max-rooms`` with rooms of its own and every honest player would
get 4201 (issue 16, item 5). A connection joins once, so it creates at most
one room; the quota bounds what an address's many connections create: the
rooms it created that still run, at most ``max_per_address`` (0: no limit).
A room counts against its creator's address until it ends, whoever plays in
it meanwhile; rooms made by the control API (a matchmaker) never count.

Behind a load balancer that hides the clients' addresses every client has
the balancer's address: docs/operations.md ("Limits") says to raise the
quota there or turn it off.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tickroom.protocol.errors import Code
from tickroom.server.rooms.room import JoinRefused

MAX_ROOMS_PER_ADDRESS = 16  # live client-created rooms per source address
UNJOINED_CLOSE_S = 5.0  # a client-created room nobody joined ends after this long


@dataclass(frozen=True)
class RoomQuotaStatistics:
    addresses: int  # source addresses with at least one live room
    rooms: int  # live client-created rooms counted
    refused: int  # joins refused with TOO_MANY_ROOMS since start


class RoomQuota:
    """Counts live client-created rooms per source address."""

    def __init__(self, max_per_address: int = MAX_ROOMS_PER_ADDRESS) -> None:
        self.max_per_address = max_per_address
        self._per_address: Counter[str] = Counter()
        self._creator: dict[str, str] = {}  # room id -> address that created it
        self._refused = 0

    def check(self, address: str | None) -> None:
        """Raise JoinRefused(TOO_MANY_ROOMS) when ``address`` may not create
        one more room now. ``None`` (an in-process link with no address) is
        never limited."""
        limit = self.max_per_address
        if address is None or limit <= 0 or self._per_address[address] < limit:
            return
        self._refused += 1
        raise JoinRefused(
            Code.TOO_MANY_ROOMS,
            f"rooms created from your address that still run: {limit}, the maximum; join one of them or wait",
        )

    def created(self, room_id: str, address: str | None) -> None:
        """``address`` created ``room_id``: count it until ``ended(room_id)``."""
        if address is None:
            return
        self._creator[room_id] = address
        self._per_address[address] += 1

    def ended(self, room_id: str) -> None:
        """The room ended (any way): its creator may create another. Idempotent."""
        address = self._creator.pop(room_id, None)
        if address is None:
            return
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]

    def statistics(self) -> RoomQuotaStatistics:
        return RoomQuotaStatistics(addresses=len(self._per_address), rooms=len(self._creator), refused=self._refused)
