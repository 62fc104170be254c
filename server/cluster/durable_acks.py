"""Durable acknowledgements (``--durable-acks``): a snapshot acknowledges
only inputs that are in Redis.

Without it a snapshot's ``seq`` (the newest input the server applied for
that client) leaves in the tick that applied the input, while the log entry
holding that input is written a round trip later by the node's writer
(tickroom.server.cluster.failover): a SIGKILL in between loses inputs the
player saw acknowledged.

With it each room's snapshots go through a ``DurableAcks`` (the room's
``SnapshotGate``). The snapshots of tick T wait until the room's writes
through tick T (its log entry, or a checkpoint at or after T) are written;
the writer's one pipelined batch per node per tick releases them
(``durable(tick)``). Normally that is one Redis round trip after the tick.

The tick never waits on Redis. When the room's durable tick falls more than
``hold_ticks`` (DURABLE_HOLD_S of ticks) behind, the gate stops holding: the
newest snapshot leaves at once, its ``seq`` lowered, per client, to the
newest input already durable (the client's prediction replays a few more
inputs; nothing is acknowledged early). Each such room-tick is counted
(``durable_ack_fallbacks``). While the store is down or the room's log has
a hole (a failed write, before the next checkpoint anchors it), every tick
goes that way, with ``seq`` stuck at the last durable input.
"""

from __future__ import annotations

from collections import deque

import trio

from tickroom.protocol.codec import finish_snapshot
from tickroom.server.cluster.stats import FailoverStats
from tickroom.server.rooms.link import ClientLink

DURABLE_HOLD_S = 0.1  # hold a tick's snapshots at most this long for their inputs to be written
MAX_TRACKED_TICKS = 512  # ticks whose seqs wait for their write (matches the writer's LOG_BUFFER_TICKS)

Send = tuple[int, ClientLink, bytes, int]  # player id, link, shared payload, newest applied seq


class DurableAcks:
    """One room's SnapshotGate (tickroom.server.rooms.broadcast) under
    ``--durable-acks``. Called by the room's tick (``deliver``) and by the
    node's writer (``durable``), both in the trio thread; neither blocks."""

    def __init__(
        self,
        tick_rate: int,
        stats: FailoverStats,
        *,
        durable_tick: int = -1,
        durable_seqs: dict[int, int] | None = None,
    ) -> None:
        """``durable_tick``: the room's state through this tick is stored
        already (a restored room: its re-anchoring checkpoint), with each
        player's newest input seq in ``durable_seqs``."""
        self.hold_ticks = max(1, round(DURABLE_HOLD_S * tick_rate))
        self.durable_tick = durable_tick
        self._stats = stats
        self._durable_seqs: dict[int, int] = dict(durable_seqs or {})
        self._held: deque[tuple[int, float, list[Send]]] = deque()  # (tick, since, sends), oldest first
        self._seqs: deque[tuple[int, dict[int, int]]] = deque()  # ticks not durable yet: each player's seq

    def deliver(self, tick: int, sends: list[Send]) -> None:
        """Tick ``tick``'s snapshots: held until ``durable(tick)``, or sent
        now with a lowered seq when the writes are too far behind."""
        self._seqs.append((tick, {pid: seq for pid, _, _, seq in sends}))
        if len(self._seqs) > MAX_TRACKED_TICKS:
            self._seqs.popleft()  # the durable seq then stays lower for longer: never early
        if tick <= self.durable_tick:
            self._offer(sends, lowered=False)
            return
        if tick - self.durable_tick > self.hold_ticks:
            # The store is slow or down: stop holding, acknowledge only what is stored.
            self._held.clear()
            self._stats.durable_ack_fallbacks += 1
            self._offer(sends, lowered=True)
            return
        self._held.append((tick, trio.current_time(), sends))

    def durable(self, tick: int) -> None:
        """The room's writes through ``tick`` are stored: release the
        snapshots of that tick and before (the newest per client: the
        outbox keeps only the latest anyway)."""
        if tick <= self.durable_tick:
            return
        self.durable_tick = tick
        while self._seqs and self._seqs[0][0] <= tick:
            _, self._durable_seqs = self._seqs.popleft()
        released: list[Send] | None = None
        now = trio.current_time()
        while self._held and self._held[0][0] <= tick:
            _, since, released = self._held.popleft()
            self._stats.durable_ack_wait.observe(now - since)
        if released is not None:
            self._offer(released, lowered=False)

    @property
    def held_ticks(self) -> int:
        """Ticks whose snapshots wait for their writes now."""
        return len(self._held)

    def _offer(self, sends: list[Send], *, lowered: bool) -> None:
        for pid, link, payload, seq in sends:
            if link.closed:
                continue
            if lowered:
                seq = min(seq, self._durable_seqs.get(pid, 0))
            link.offer(finish_snapshot(payload, seq))
