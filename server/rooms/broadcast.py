"""The tick's last stage: each connected client gets its snapshot.

Every client is sent a delta from the baseline it acknowledged; clients
sharing a baseline share the encoded payload (tickroom.server.rooms.snapshots),
and only the last input seq is stamped per client (``finish_snapshot``; the
shared part is packed once per protocol version the clients on a baseline
speak: version 2's positional envelope, version 1's map). A
``SnapshotGate`` (--durable-acks, tickroom.server.cluster.durable_acks) may hold
a tick's snapshots until the inputs they acknowledge are stored; the room
never waits for it.
"""

from __future__ import annotations

from typing import Protocol

from tickroom.protocol.codec import finish_snapshot
from tickroom.server.rooms.link import ClientLink
from tickroom.server.rooms.players import PlayerTable
from tickroom.server.rooms.snapshots import SnapshotHistory


class SnapshotGate(Protocol):
    def deliver(self, tick: int, sends: list[tuple[int, ClientLink, bytes, int]]) -> None:
        """Hand tick ``tick``'s snapshots to their clients, now or later:
        per connected player (player id, link, the shared payload for its
        baseline, the newest input seq applied). Must not block: the tick
        never waits (tickroom.server.cluster.durable_acks holds them until
        the inputs they acknowledge are stored)."""


def broadcast(players: PlayerTable, history: SnapshotHistory, gate: SnapshotGate | None, tick: int) -> None:
    """Offer each connected player of ``players`` tick ``tick``'s snapshot
    from ``history`` (its own view's when the game splits views), or hand
    them all to ``gate``. Never blocks: a link's offer replaces its pending
    snapshot (latest wins)."""
    if gate is None and not history.per_player:
        # The common path, kept tight: one shared payload per baseline.
        for player, link in players.connected():
            base = history.baseline_for(player.acked)
            link.offer(
                finish_snapshot(history.shared_payload(base, player.acked, player.wire_version), player.last_seq)
            )
        return
    sends = []
    for player, link in players.connected():
        base = history.baseline_for(player.acked)
        acked, version = player.acked, player.wire_version  # a full snapshot carries the events after ``acked``
        payload = (
            history.payload_for(player.id, base, acked, version)
            if history.per_player
            else history.shared_payload(base, acked, version)
        )
        sends.append((player.id, link, payload, player.last_seq))
    if gate is not None:
        gate.deliver(tick, sends)  # held until the inputs they acknowledge are stored
        return
    for _, link, payload, seq in sends:
        link.offer(finish_snapshot(payload, seq))
