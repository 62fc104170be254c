"""tickroom.server.ops.agones against a stand-in for the Agones SDK sidecar: a minimal
HTTP server on 127.0.0.1 that records every call, and a real in-process
GameServer talking to it."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from itertools import pairwise

import trio

from tests.in_process import serving
from tickroom.client import connect
from tickroom.server.config import ServerConfig
from tickroom.server.node import GameServer
from tickroom.server.ops.agones import AgonesSDK, port_from_env

DEADLINE = 10.0
HEALTH_PERIOD = 0.2


class FakeSidecar:
    """Answers 200 ``{}`` to everything and records (time, method, path, body)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, str, dict]] = []
        self.port = 0

    def paths(self, method: str, path: str) -> list[tuple[float, dict]]:
        return [(t, body) for t, m, p, body in self.calls if m == method and p == path]

    def last_count(self, counter: str) -> int | None:
        counts = [body["count"] for _, body in self.paths("PATCH", f"/v1beta1/counters/{counter}") if "count" in body]
        return counts[-1] if counts else None

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self)
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            while len(body) < length:
                body += await stream.receive_some(4096)
            self.calls.append((trio.current_time(), method, path, json.loads(body or b"{}")))
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
            )


@asynccontextmanager
async def running_server(sdk: AgonesSDK | None) -> AsyncIterator[GameServer]:
    server = GameServer(
        ServerConfig(host="127.0.0.1", port=0, graceful_timeout_s=2.0, stats_interval_s=0, max_rooms=50)
    )
    server.agones = sdk
    async with serving(server, stop_deadline=DEADLINE):
        yield server


async def wait_for(predicate: Callable[[], bool], what: str) -> None:
    try:
        with trio.fail_after(DEADLINE):
            while not predicate():
                await trio.sleep(0.01)
    except trio.TooSlowError:
        raise AssertionError(f"timed out waiting for {what}") from None


def test_port_from_env() -> None:
    assert port_from_env({}) is None
    assert port_from_env({"AGONES_SDK_HTTP_PORT": "9358"}) == 9358
    assert port_from_env({"AGONES_SDK_HTTP_PORT": "nope"}) is None
    assert port_from_env({"AGONES_SDK_HTTP_PORT": "70000"}) is None


def test_game_server_reads_the_env(monkeypatch) -> None:
    monkeypatch.setenv("AGONES_SDK_HTTP_PORT", "9358")
    assert GameServer(ServerConfig(port=0)).agones.port == 9358
    monkeypatch.delenv("AGONES_SDK_HTTP_PORT")
    assert GameServer(ServerConfig(port=0)).agones is None


async def test_ready_health_counters_and_shutdown() -> None:
    sidecar = FakeSidecar()
    async with trio.open_nursery() as nursery:
        await nursery.start(sidecar.serve)
        sdk = AgonesSDK(sidecar.port, health_period_s=HEALTH_PERIOD, poll_s=0.05)
        async with running_server(sdk) as server:
            await wait_for(lambda: sidecar.paths("POST", "/ready"), "Ready")
            assert len(sidecar.paths("POST", "/ready")) == 1
            # Capacity of the rooms Counter: --max-rooms.
            await wait_for(
                lambda: {"capacity": 50} in [b for _, b in sidecar.paths("PATCH", "/v1beta1/counters/rooms")],
                "rooms capacity",
            )
            await wait_for(
                lambda: sidecar.last_count("rooms") == 0 and sidecar.last_count("players") == 0, "counters at 0"
            )

            # Health at its period (not faster, not much slower).
            await wait_for(lambda: len(sidecar.paths("POST", "/health")) >= 5, "5 health calls")
            times = [t for t, _ in sidecar.paths("POST", "/health")]
            gaps = [b - a for a, b in pairwise(times)]
            assert all(HEALTH_PERIOD * 0.8 <= gap <= HEALTH_PERIOD * 5 for gap in gaps), gaps

            url = f"ws://127.0.0.1:{server.ports[0]}/"
            async with connect(url, room="r1", name="alice") as alice:
                await wait_for(
                    lambda: sidecar.last_count("rooms") == 1 and sidecar.last_count("players") == 1, "1 room, 1 player"
                )
                async with connect(url, room="r1", name="bob"):
                    await wait_for(lambda: sidecar.last_count("players") == 2, "2 players")
                await wait_for(lambda: sidecar.last_count("players") == 1, "bob left")
                assert (await alice.next_world()) is not None
            await wait_for(lambda: sidecar.last_count("players") == 0, "alice left")
            # Only changes are sent: no run of equal counts.
            counts = [b["count"] for _, b in sidecar.paths("PATCH", "/v1beta1/counters/players") if "count" in b]
            assert all(a != b for a, b in pairwise(counts)), counts
            assert not sidecar.paths("POST", "/shutdown")
        # After the drain: Shutdown, once.
        assert len(sidecar.paths("POST", "/shutdown")) == 1
        nursery.cancel_scope.cancel()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_unreachable_sidecar_never_stops_rooms(caplog) -> None:
    sdk = AgonesSDK(_closed_port(), health_period_s=0.05, poll_s=0.05, timeout_s=0.5)
    async with running_server(sdk) as server:
        url = f"ws://127.0.0.1:{server.ports[0]}/"
        async with connect(url, room="r1", name="alice") as alice:
            first = await alice.next_world()
            await wait_for(lambda: sdk.failures >= 5, "failed SDK calls")
            later = await alice.next_world(after=first.tick)
            assert later.tick > first.tick
        assert not sdk.ready
    # Logged, but rate-limited: one line for many failures.
    lines = [r for r in caplog.records if r.name == "tickroom.server.ops.agones" and "cannot reach" in r.getMessage()]
    assert 1 <= len(lines) < sdk.failures


async def test_the_accepting_label_follows_the_load_governor() -> None:
    sidecar = FakeSidecar()
    async with trio.open_nursery() as nursery:
        await nursery.start(sidecar.serve)
        sdk = AgonesSDK(sidecar.port, health_period_s=HEALTH_PERIOD, poll_s=0.05)
        server = GameServer(ServerConfig(host="127.0.0.1", port=0, graceful_timeout_s=2.0, stats_interval_s=0,
                                         max_node_players=1))  # fmt: skip
        server.agones = sdk

        def labels() -> list[str]:
            return [b["value"] for _, b in sidecar.paths("PUT", "/metadata/label") if b["key"] == "tickroom-accepting"]

        async with serving(server, stop_deadline=DEADLINE):
            await wait_for(lambda: labels() == ["true"], "accepting")
            async with connect(f"ws://127.0.0.1:{server.ports[0]}/", room="r1", name="alice"):
                # The node holds its one player: no more.
                await wait_for(lambda: labels() == ["true", "false"], "not accepting")
            await wait_for(lambda: labels() == ["true", "false", "true"], "accepting again")
        nursery.cancel_scope.cancel()
