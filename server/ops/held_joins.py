"""Fresh joins the load governor holds until its next sample.

A join over the governor's ramp step (tickroom.server.ops.overload) does not
find the node over capacity, only growing faster than its figures can
follow. Instead of refusing it, the governor holds it (FIFO, a bounded
number) and decides it on the figures of its next sample: admitted, or
refused with the reason the node has then. A held join waits at most
``MAX_HOLD_S``: when no sample comes in time (the event loop itself is
late) it is refused, so that every refusal is still answered within a
second of the join.
"""

from __future__ import annotations

from collections.abc import Iterator

import trio

MAX_HOLD_S = 0.5  # two samples: a held join is decided at the next one, or refused at this age


class HeldJoin:
    """One fresh join waiting for the next sample; ``reason`` is None until
    decided, then "" (admitted) or why it is refused."""

    __slots__ = ("link", "reason", "_decided")

    def __init__(self, link: object) -> None:
        self.link = link
        self.reason: str | None = None
        self._decided = trio.Event()

    @property
    def decided(self) -> bool:
        return self.reason is not None

    @property
    def admitted(self) -> bool:
        return self.reason == ""

    def decide(self, reason: str) -> None:
        """Admit (``reason`` "") or refuse the join, and wake its connection."""
        self.reason = reason
        self._decided.set()

    async def wait_decided(self, timeout_s: float = MAX_HOLD_S) -> None:
        """Until decided, or ``timeout_s`` passed (then ``decided`` is False).
        Cancellation propagates; the caller forgets the join then."""
        with trio.move_on_after(timeout_s):
            await self._decided.wait()


class HeldJoins:
    """The joins held, in arrival order; removing one is O(1) (a connection
    that closes while held leaves at once)."""

    def __init__(self) -> None:
        self._joins: dict[HeldJoin, None] = {}  # an ordered set

    def __len__(self) -> int:
        return len(self._joins)

    def add(self, held: HeldJoin) -> None:
        self._joins[held] = None

    def discard(self, held: HeldJoin) -> None:
        self._joins.pop(held, None)

    def take_all(self) -> Iterator[HeldJoin]:
        """Every join held, oldest first; none is held afterwards."""
        joins, self._joins = self._joins, {}
        return iter(joins)
