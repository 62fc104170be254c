"""The raw bots' handshake (protocol/websocket_handshake.py) and their pure
helpers (loadtest/rawbots.py), without sockets. Their frames come from the
server's own codec, tested in both roles in tests/protocol/test_websocket_frames.py."""

from __future__ import annotations

import base64
import socket
import time
from collections import Counter

import pytest

from tickroom.loadtest.bench import held, largest_held, spread
from tickroom.loadtest.bots import Target
from tickroom.loadtest.rawbots import parse_ws_url, run_fleet
from tickroom.loadtest.scenarios import schedule
from tickroom.protocol.websocket_frames import OP_BINARY, server_frame
from tickroom.protocol.websocket_handshake import (
    HandshakeError,
    accept_for,
    new_key,
    parse_upgrade_response,
    upgrade_request,
)


def test_accept_is_the_rfc_6455_example():
    # RFC 6455 section 1.3's worked example.
    assert accept_for(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_new_key_is_16_random_bytes_in_base64():
    key = new_key()
    assert len(base64.b64decode(key)) == 16 and key != new_key()


def test_upgrade_request_names_no_subprotocol_or_extension():
    text = upgrade_request("127.0.0.1", 7350, "/", b"abc=").decode()
    assert text.startswith("GET / HTTP/1.1\r\n") and text.endswith("\r\n\r\n")
    assert "Host: 127.0.0.1:7350\r\n" in text and "Sec-WebSocket-Key: abc=\r\n" in text
    assert "Upgrade: websocket\r\n" in text and "Sec-WebSocket-Version: 13\r\n" in text
    assert "Protocol" not in text and "Extensions" not in text


def answer(key: bytes, *, status: str = "101 Switching Protocols", accept: bytes | None = None) -> bytes:
    accept = accept_for(key) if accept is None else accept
    return f"HTTP/1.1 {status}\r\nupgrade: WebSocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept.decode()}\r\n\r\n".encode()


def test_upgrade_response_is_parsed_in_pieces_and_frames_after_it_stay():
    key = new_key()
    head = answer(key)
    data = head + server_frame(OP_BINARY, b"\x80")
    assert parse_upgrade_response(data[:10], key) is None  # incomplete: wait for more
    assert parse_upgrade_response(data, key) == len(head)


@pytest.mark.parametrize(
    "status, accept, match",
    [
        ("400 Bad Request", None, "refused"),
        ("403 Forbidden", None, "refused"),
        ("101 Switching Protocols", b"d3Jvbmc=", "Accept"),
    ],
)
def test_a_bad_upgrade_answer_is_refused(status, accept, match):
    key = new_key()
    with pytest.raises(HandshakeError, match=match):
        parse_upgrade_response(answer(key, status=status, accept=accept), key)


def test_an_endless_head_is_refused():
    with pytest.raises(HandshakeError):
        parse_upgrade_response(b"HTTP/1.1 101 x\r\n" + b"x" * 20000, b"k")


def test_ws_urls():
    assert parse_ws_url("ws://127.0.0.1:7350") == ("127.0.0.1", 7350, "/")
    assert parse_ws_url("ws://example.org/play?x=1") == ("example.org", 80, "/play?x=1")
    with pytest.raises(ValueError):
        parse_ws_url("wss://example.org:443/")


def run(
    ccu: int, tick_p99: float | None, snaps: float = 20.0, connected: int | None = None, rtt_p99: float = 60.0
) -> dict:
    return {"ccu": ccu, "connected": ccu if connected is None else connected, "errors": 0, "tick_p99_ms": tick_p99,
            "snapshots_per_bot_s": snaps, "server_cpu_ms_per_ccu_s": 0.5, "rtt_p99_ms": rtt_p99}  # fmt: skip


def test_bench_summary_is_min_median_max_over_the_runs():
    summary = spread([run(500, 10.0), run(500, 30.0), run(500, 12.0)])
    assert summary["tick_p99_ms"] == {"min": 10.0, "median": 12.0, "max": 30.0}
    assert summary["runs"] == 3 and summary["connected"] == [500] * 3
    assert summary["rtt_p50_ms"] is None  # no run measured it


def test_bench_largest_ccu_held_needs_tick_p99_rtt_p99_snapshots_and_every_bot():
    results = {
        "50x10": [run(500, 10.0)] * 3,
        "100x10": [run(1000, 20.0), run(1000, 40.0), run(1000, 22.0)],  # median 22 < 25: held
        "150x10": [run(1500, 30.0)] * 3,  # tick p99 over the limit
        "160x10": [run(1600, 10.0, snaps=15.0)] * 3,  # bots starved
        "170x10": [run(1700, 10.0, connected=1600)] * 3,  # not everyone got in
        "180x10": [run(1800, 10.0, rtt_p99=150.0)] * 3,  # short ticks, but the process fell behind
    }
    assert held(results["100x10"], 25.0) and not held(results["150x10"], 25.0)
    assert not held(results["180x10"], 25.0) and held(results["180x10"], 25.0, max_rtt_p99_ms=200.0)
    assert largest_held(results, 25.0) == 1000
    assert largest_held({"x": [run(10, None)]}, 25.0) is None


def fleet_errors(url: str, *, bots: int = 2, duration: float = 0.6) -> tuple[dict, int]:
    """Run a fleet against ``url`` until its bots give up; (errors, leaves)."""
    specs = schedule("burst", rooms=1, bots_per_room=bots, duration=duration, ramp_up=0, seed=1)
    deltas = []
    t0 = time.monotonic()
    run_fleet([(s, Target(url, "r")) for s in specs], 0, t0=t0, until=t0 + 10, ship=deltas.append)
    assert time.monotonic() - t0 < 5  # every bot ended by itself, not by the deadline
    errors: Counter = Counter()
    for d in deltas:
        errors.update(d.errors)
    return dict(errors), sum(d.leaves for d in deltas)


def test_a_url_raw_bots_cannot_use_ends_the_bots_at_once():
    errors, leaves = fleet_errors("wss://127.0.0.1:1/")
    assert errors == {"connect_ValueError": 2, "never_connected": 2} and leaves == 2


def test_refused_connections_are_retried_and_counted_until_the_bot_leaves():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        errors, leaves = fleet_errors(f"ws://127.0.0.1:{sock.getsockname()[1]}/")
    assert errors["never_connected"] == 2 and leaves == 2
    assert errors["connect_ConnectionRefusedError"] >= 4  # the first try and at least one retry each
