"""--durable-acks: the gate between a room's tick and its clients
(tickroom.server.cluster.durable_acks). A tick's snapshots wait for the
writes of that tick; past the hold bound they leave at once, acknowledging
only the inputs already written; nothing is ever acknowledged early."""

from __future__ import annotations

import msgpack

from tickroom.protocol.codec import pack_snapshot_shared
from tickroom.server.cluster.durable_acks import DurableAcks
from tickroom.server.cluster.stats import FailoverStats

RATE = 20  # hold bound: 0.1 s = 2 ticks


class SeenLink:
    """A client link that records the (tick, seq) of each snapshot offered."""

    def __init__(self) -> None:
        self.closed = False
        self.seen: list[tuple[int, int]] = []

    def offer(self, payload: bytes) -> None:
        msg = msgpack.unpackb(payload)
        self.seen.append((msg["tick"], msg["seq"]))


def shared(tick: int) -> bytes:
    return pack_snapshot_shared(tick, -1, {"ids": b"", "c": {}, "rm": b"", "n": 0}, [])


def sends(tick: int, *players: tuple[int, SeenLink, int]):
    return [(pid, link, shared(tick), seq) for pid, link, seq in players]


async def test_a_ticks_snapshots_leave_once_that_tick_is_written() -> None:
    stats, link = FailoverStats(), SeenLink()
    gate = DurableAcks(RATE, stats)
    gate.deliver(1, sends(1, (7, link, 3)))
    assert link.seen == [] and gate.held_ticks == 1
    gate.durable(1)
    assert link.seen == [(1, 3)] and gate.held_ticks == 0
    assert stats.durable_ack_wait.snapshot().count == 1 and stats.durable_ack_fallbacks == 0


async def test_a_write_covering_several_ticks_sends_the_newest_snapshot_only() -> None:
    link = SeenLink()
    gate = DurableAcks(RATE, FailoverStats(), durable_tick=0)  # anchored at tick 0
    gate.deliver(1, sends(1, (7, link, 3)))
    gate.deliver(2, sends(2, (7, link, 4)))
    gate.durable(1)
    assert link.seen == [(1, 3)]
    gate.durable(2)
    assert link.seen == [(1, 3), (2, 4)]
    gate.durable(2)  # again, or older: nothing more
    gate.durable(1)
    assert link.seen == [(1, 3), (2, 4)]


async def test_past_the_hold_bound_snapshots_leave_at_once_acknowledging_only_written_inputs() -> None:
    stats, ada, bob = FailoverStats(), SeenLink(), SeenLink()
    gate = DurableAcks(RATE, stats)
    gate.deliver(1, sends(1, (1, ada, 10), (2, bob, 5)))
    gate.durable(1)  # ada's 10 and bob's 5 are written
    gate.deliver(2, sends(2, (1, ada, 11), (2, bob, 6)))
    gate.deliver(3, sends(3, (1, ada, 12), (2, bob, 7)))
    assert ada.seen == [(1, 10)]  # within the bound (2 ticks): held
    # The store is slow: tick 4 is 3 ticks past the last durable one.
    gate.deliver(4, sends(4, (1, ada, 13), (2, bob, 8)))
    assert ada.seen[-1] == (4, 10) and bob.seen[-1] == (4, 5)
    assert stats.durable_ack_fallbacks == 1 and gate.held_ticks == 0
    # The write of tick 3 lands late: the durable seqs move on; the next
    # tick is within the bound again and waits.
    gate.durable(3)
    gate.deliver(5, sends(5, (1, ada, 14), (2, bob, 9)))
    assert ada.seen[-1] == (4, 10)
    gate.deliver(6, sends(6, (1, ada, 15), (2, bob, 10)))
    assert ada.seen[-1] == (6, 12) and bob.seen[-1] == (6, 7)  # lowered to tick 3's seqs
    gate.durable(6)
    gate.deliver(7, sends(7, (1, ada, 16)))
    gate.durable(7)
    assert ada.seen[-1] == (7, 16)


async def test_with_the_store_down_seq_stays_at_the_last_written_input() -> None:
    stats, link = FailoverStats(), SeenLink()
    gate = DurableAcks(RATE, stats)
    for tick in range(1, 40):
        gate.deliver(tick, sends(tick, (1, link, tick)))
    assert link.seen, "clients must keep getting snapshots while the store is down"
    assert {seq for _, seq in link.seen} == {0}  # nothing was ever written
    # Every snapshot sent was a fallback; only the first ticks, within the bound, were held.
    assert stats.durable_ack_fallbacks == len(link.seen) == 39 - gate.hold_ticks + 1


async def test_a_restored_room_acknowledges_its_restored_inputs_and_a_new_player_nothing_early() -> None:
    ada, cy = SeenLink(), SeenLink()
    gate = DurableAcks(RATE, FailoverStats(), durable_tick=100, durable_seqs={1: 40})
    gate.deliver(100, sends(100, (1, ada, 40)))  # the anchoring checkpoint's own tick: at once
    assert ada.seen == [(100, 40)]
    for tick in range(101, 105):  # then the store goes quiet; cy joined after the checkpoint
        gate.deliver(tick, sends(tick, (1, ada, 40 + tick - 100), (3, cy, tick - 100)))
    assert ada.seen[-1][1] == 40 and cy.seen[-1][1] == 0


async def test_closed_links_get_nothing() -> None:
    link = SeenLink()
    gate = DurableAcks(RATE, FailoverStats())
    gate.deliver(1, sends(1, (1, link, 1)))
    link.closed = True
    gate.durable(1)
    assert link.seen == []
