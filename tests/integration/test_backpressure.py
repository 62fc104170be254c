"""Backpressure over real sockets: 200 connections to a real server process,
a tenth of them reading slowly or not at all (benchmarks/slow_readers.py;
its 1,000-connection run and figures are in docs/benchmarks.md). The good
clients keep their snapshot rate, the slow and mute ones are dropped with
ACK_TIMEOUT (4112) or hold at most one pending snapshot, no reliable backlog
grows, and the server's RSS stays under a generous ceiling."""

from __future__ import annotations

import pytest

from benchmarks import slow_readers

pytestmark = pytest.mark.integration

RSS_CEILING_MIB = 400  # generous: ~50 MiB measured; a per-client queue would blow through it


async def test_slow_and_mute_readers_do_not_hurt_the_others():
    report = await slow_readers.run(
        connections=200, slow_fraction=0.1, duration=4, room_size=50, tick_rate=20, ack_timeout=1.5
    )
    print("\n" + report.summary())
    assert report.joined == 200
    # The good clients get (nearly) every tick's snapshot.
    assert report.good_snapshots_per_s >= 0.75 * report.tick_rate
    # Mute clients never ack: every one is dropped with ACK_TIMEOUT.
    assert report.close_codes["mute"] == {"4112": 10}
    # Slow ones are dropped the same way, or are still served.
    assert set(report.close_codes.get("slow", {})) <= {"4112", "None"}
    # No reliable backlog anywhere near the 256 KiB cut-off; memory bounded.
    assert report.pending_bytes_max < 64 * 2**10
    assert report.rss_mib_max < RSS_CEILING_MIB
