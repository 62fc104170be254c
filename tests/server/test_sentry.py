"""Sentry: a room that crashes on purpose is reported, with its tags, to a
real HTTP endpoint this test runs (the SDK's own transport, no mocks)."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk
import trio

import tickroom.simulation.games
from tests.server.test_registry import CrashingArena
from tickroom.server.ops import sentry
from tickroom.server.rooms.registry import RegistryConfig, RoomRegistry
from tickroom.server.rooms.room import RoomConfig


class SentryEndpoint(ThreadingHTTPServer):
    """Collects the events of Sentry envelopes POSTed to it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.events: list[dict] = []
        self.received = threading.Event()

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server_address[1]}/42"


class _Handler(BaseHTTPRequestHandler):
    server: SentryEndpoint

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        lines = body.split(b"\n")
        # An envelope: a header line, then (item header, payload) pairs.
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                self.server.events.append(json.loads(payload))
                self.server.received.set()
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch):
    monkeypatch.setitem(tickroom.simulation.games.GAMES, CrashingArena.name, CrashingArena)
    server = SentryEndpoint()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sentry.init(server.dsn, environment="ci", release="tickroom@test", node_id="node-7")
    try:
        yield server
    finally:
        sentry_sdk.get_client().close(timeout=2)
        sentry_sdk.init(
            dsn=None, default_integrations=False, auto_enabling_integrations=False
        )  # the no-op client again
        server.shutdown()
        server.server_close()


async def test_a_room_crash_reaches_sentry_with_its_tags(endpoint, nursery, autojump_clock) -> None:
    registry = RoomRegistry(RegistryConfig(room=RoomConfig(tick_rate=20), ticket_secret=b"never-sent"))
    await nursery.start(registry.run)
    registry.create("doomed", "crashing")
    while registry.get("doomed") is not None:
        await trio.sleep(0.05)
    assert registry.crashes == 1
    await trio.to_thread.run_sync(lambda: sentry_sdk.flush(timeout=5))
    assert await trio.to_thread.run_sync(endpoint.received.wait, 5)

    (event,) = endpoint.events
    assert event["level"] == "error"
    assert event["environment"] == "ci" and event["release"] == "tickroom@test"
    assert {"room_id": "doomed", "tick": "4", "game": "crashing", "node_id": "node-7"}.items() <= event["tags"].items()
    assert "simulated bug at tick 5" in json.dumps(event["exception"])
    assert "never-sent" not in json.dumps(event)
