"""Agones: tell the local SDK sidecar how this game server is doing.

When the pod runs under Agones, the sidecar's REST API listens on
``http://localhost:$AGONES_SDK_HTTP_PORT``. This module:

- POSTs ``/ready`` once the server is listening (retried until it succeeds);
- POSTs ``/health`` every ``health_period_s`` (keep it well under the
  GameServer spec's ``health.periodSeconds``);
- keeps two Counters (Agones Counts and Lists, ``/v1beta1/counters/<name>``)
  in step with the room registry: ``rooms`` (live rooms; capacity
  ``--max-rooms``, for the high-density pattern of many rooms per game
  server) and ``players`` (connected players). The registry is polled once a
  second and only changes are sent: nothing here runs on the tick path;
- keeps the GameServer label ``agones.dev/sdk-tickroom-accepting`` at
  ``"true"`` or ``"false"``: whether the load governor admits new players
  (tickroom.server.ops.overload), so that a GameServerAllocation can select
  only game servers under their capacity (deploy/agones/fleet.yaml);
- POSTs ``/shutdown`` at the end of a drain.

The SDK being unreachable is logged (at most once per ``LOG_EVERY_S``) and
retried; it never stops a room.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping

import trio

log = logging.getLogger(__name__)

ENV_PORT = "AGONES_SDK_HTTP_PORT"
HEALTH_PERIOD_S = 2.0  # the specs in deploy/agones/ check every 5 s
POLL_S = 1.0  # registry -> counters
REQUEST_TIMEOUT_S = 2.0
LOG_EVERY_S = 30.0  # at most one "cannot reach the SDK" line this often
SHUTDOWN_ATTEMPTS = 3
# The label's key as the SDK takes it; Agones stores it as agones.dev/sdk-<key>.
ACCEPTING_LABEL = "tickroom-accepting"


class SDKError(Exception):
    """The sidecar did not answer 2xx (or could not be reached)."""


def port_from_env(environ: Mapping[str, str] | None = None) -> int | None:
    """The sidecar's HTTP port from AGONES_SDK_HTTP_PORT, or None (not under
    Agones, or an unusable value, which is logged)."""
    raw = (os.environ if environ is None else environ).get(ENV_PORT, "").strip()
    if not raw:
        return None
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        log.warning("%s=%r is not a port; Agones SDK calls are off", ENV_PORT, raw)
        return None
    return port


class AgonesSDK:
    """Talks to the sidecar at ``host:port``. ``await nursery.start(...)``
    is not needed: ``nursery.start_soon(sdk.run, registry, max_rooms)``."""

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        health_period_s: float = HEALTH_PERIOD_S,
        poll_s: float = POLL_S,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.host = host
        self.port = port
        self.health_period_s = health_period_s
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.ready = False  # /ready acknowledged
        self.failures = 0  # calls that did not get a 2xx, in total
        self.sent: dict[str, int] = {}  # counter name -> last count acknowledged
        self.label_sent: str | None = None  # the accepting label's last value acknowledged
        self._last_log = float("-inf")

    # -- the tasks ---------------------------------------------------------------

    async def run(self, registry, max_rooms: int, accepting: Callable[[], bool] | None = None) -> None:
        """Ready (retried), then health, counters and (with ``accepting``,
        the governor's state) the accepting label until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._health_loop)
            await self._until_ok("POST", "/ready", {})
            self.ready = True
            log.info("agones: ready (SDK on port %d)", self.port)
            await self._counters_loop(registry, max_rooms, accepting)

    async def shutdown(self) -> None:
        """Tell Agones this game server is done (the end of a drain). A few
        attempts, then give up: the process exits anyway."""
        for attempt in range(SHUTDOWN_ATTEMPTS):
            if await self._call("POST", "/shutdown", {}):
                log.info("agones: shutdown sent")
                return
            if attempt + 1 < SHUTDOWN_ATTEMPTS:
                await trio.sleep(0.2)

    async def _health_loop(self) -> None:
        while True:
            await self._call("POST", "/health", {})
            await trio.sleep(self.health_period_s)

    async def _counters_loop(self, registry, max_rooms: int, accepting: Callable[[], bool] | None) -> None:
        capacity_sent = False
        while True:
            if accepting is not None:
                value = "true" if accepting() else "false"
                if self.label_sent != value and await self._call(
                    "PUT", "/metadata/label", {"key": ACCEPTING_LABEL, "value": value}
                ):
                    self.label_sent = value
            if not capacity_sent:
                capacity_sent = await self._call("PATCH", "/v1beta1/counters/rooms", {"capacity": max_rooms})
            rooms = registry.rooms()
            counts = {"rooms": len(rooms), "players": sum(room.statistics().connected for room in rooms)}
            for name, count in counts.items():
                # Only changes; a failed update is retried at the next poll.
                if self.sent.get(name) != count and await self._call(
                    "PATCH", f"/v1beta1/counters/{name}", {"count": count}
                ):
                    self.sent[name] = count
            await trio.sleep(self.poll_s)

    async def _until_ok(self, method: str, path: str, body: dict) -> None:
        delay = 0.1
        while not await self._call(method, path, body):
            await trio.sleep(delay)
            delay = min(delay * 2, 5.0)

    # -- HTTP --------------------------------------------------------------------

    async def _call(self, method: str, path: str, body: dict) -> bool:
        """One request; True on 2xx. Failures are counted and logged
        (rate-limited), never raised."""
        try:
            with trio.fail_after(self.timeout_s):
                status = await self._request(method, path, body)
            if not 200 <= status < 300:
                raise SDKError(f"HTTP {status}")
            return True
        except (OSError, trio.TooSlowError, SDKError, ValueError) as exc:
            self.failures += 1
            now = trio.current_time()
            if now - self._last_log >= LOG_EVERY_S:
                self._last_log = now
                log.warning(
                    "agones: cannot reach the SDK at %s:%d (%s %s: %s; %d failures so far); retrying",
                    self.host, self.port, method, path, exc or type(exc).__name__, self.failures,
                )  # fmt: skip
            return False

    async def _request(self, method: str, path: str, body: dict) -> int:
        payload = json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: localhost:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        )
        stream = await trio.open_tcp_stream(self.host, self.port)
        async with stream:
            await stream.send_all(head.encode() + payload)
            data = b""
            while b"\r\n" not in data and len(data) < 8192:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                data += chunk
        status_line = data.split(b"\r\n", 1)[0].split()
        if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
            raise SDKError(f"not an HTTP answer: {data[:60]!r}")
        return int(status_line[1])
