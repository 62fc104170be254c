"""A small control API for the load tester's tests: real HTTP (h11 over a
trio socket on 127.0.0.1), the three endpoints of the contract, rooms on a
real tickroom server process whose URL it hands out as ws_url.

    POST /v1/rooms                      -> 201 {"room_id", "node_id", "ws_url", ...}
    POST /v1/rooms/{room_id}/tickets    -> 200 {"room_id", "ws_url", "tickets": {...}}
    GET  /metrics                       -> Prometheus text; every scrape shows more ticks

It stands in for the control API while that is built in parallel; the load
tester is written against the contract, not against this class.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from functools import partial

import h11
import trio

MAX_REQUEST_BYTES = 64 * 1024
BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


@dataclass
class FakeControl:
    ws_url: str
    api_key: str = "test-key"
    port: int = 0
    requests: list[tuple[str, str, dict | None]] = field(default_factory=list)
    rooms: dict[str, dict] = field(default_factory=dict)
    scrapes: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self)
        await trio.serve_listeners(partial(self._handle), listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
        with trio.move_on_after(10):
            request, body = None, b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(MAX_REQUEST_BYTES)
                    conn.receive_data(data)
                    if not data:
                        return
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            status, answer, ctype = self._route(request, body)
            payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            headers = [("content-type", ctype), ("content-length", str(len(payload))), ("connection", "close")]
            await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)))
            await stream.send_all(conn.send(h11.Data(data=payload)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
        await stream.aclose()

    def _route(self, request: h11.Request, body: bytes) -> tuple[int, dict | bytes, str]:
        method, target = request.method.decode(), request.target.decode()
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        data = json.loads(body) if body else None
        self.requests.append((method, target, data))
        if method == "GET" and target == "/metrics":
            self.scrapes += 1
            return 200, self._metrics().encode(), "text/plain; version=0.0.4"
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "unauthorized"}, "application/json"
        if method == "POST" and target == "/v1/rooms":
            room_id = f"ctl-{secrets.token_hex(4)}"
            self.rooms[room_id] = {"game": data["game"], "max_players": data["max_players"]}
            return (
                201,
                {"room_id": room_id, "node_id": "node-a", "ws_url": self.ws_url, "game": data["game"]},
                "application/json",
            )
        parts = target.strip("/").split("/")
        if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "rooms"] and parts[3] == "tickets":
            if parts[2] not in self.rooms:
                return 404, {"error": "no such room"}, "application/json"
            tickets = {p: f"tk.{parts[2]}.{secrets.token_urlsafe(12)}" for p in data["players"]}
            return 200, {"room_id": parts[2], "ws_url": self.ws_url, "tickets": tickets}, "application/json"
        return 404, {"error": "not found"}, "application/json"

    def _metrics(self) -> str:
        """Each scrape adds 1,000 ticks: 500 under 5 ms, 490 under 10 ms,
        10 under 50 ms; and 3 overruns."""
        n = self.scrapes
        per_scrape = {0.005: 500, 0.01: 990, 0.025: 990, 0.05: 1000, 0.1: 1000}
        lines = [
            "# HELP tickroom_tick_duration_seconds Room tick duration.",
            "# TYPE tickroom_tick_duration_seconds histogram",
        ]
        for le in BUCKETS_S:
            lines.append(f'tickroom_tick_duration_seconds_bucket{{le="{le}"}} {per_scrape.get(le, 0) * n}')
        lines += [
            f'tickroom_tick_duration_seconds_bucket{{le="+Inf"}} {1000 * n}',
            f"tickroom_tick_duration_seconds_count {1000 * n}",
            f"tickroom_tick_duration_seconds_sum {5.0 * n}",
            "# HELP tickroom_tick_overruns_total Ticks that finished late.",
            "# TYPE tickroom_tick_overruns_total counter",
            f"tickroom_tick_overruns_total {3 * n}",
        ]
        return "\n".join(lines) + "\n"
