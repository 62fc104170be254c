"""The live attack suite (issue 16): each attack against real `tickroom
serve` processes on 127.0.0.1 (ws:// and wss://), with a well-behaved canary
player in another room of the same node.

Every attack is bounded in time (ATTACK_S) and count, and each test asserts
what the attacker sees (the documented close code), that the canary keeps
its snapshot rate, and that the server's memory stays bounded.

How the canary's rate is held without being flaky on a busy 2-core machine:
the test does not demand that every second be good. It waits, with a
deadline, for one WINDOW_S-long window (sliding, after the attack began) in
which the canary received at least MIN_RATE snapshots per second, and the
deadline is the attack's own bound: an attack the server does not stop
(the defects of issue 16: ping floods never closed, 1 to 5 snapshots/s for
the canary) never leaves such a window before it, while a scheduling hiccup
of the machine costs one window, not the test. Snapshots are counted as
they are decoded, each one (a read can bring several), not once per read.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.certs import SelfSigned, make_self_signed
from tests.rawws import OP_BINARY, OP_CONTINUATION, OP_PING, OP_PONG, RawWebSocket, frame, rtts_at_two_messages_per_tick
from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession
from tickroom.protocol.errors import Code

from .harness import ServerProcess, running_server

TICK_RATE = 20
MIN_RATE = 18.0  # canary snapshots per second, over a window
WINDOW_S = 2.0
ATTACK_S = 6.0  # every attack gives up after this long; the canary must have had its window by then
RSS_GROWTH_MB = 25.0  # the server's RSS during and after an attack, over its baseline
ROOM_QUOTA = 24  # --max-rooms-per-address of the ws:// server (room spam)
# These tests hold each connection's own defences to account. The node-wide
# load governor (tests/integration/test_overload.py) would, rightly, refuse
# fresh joins for its hold time after a flood took the node's CPU share up,
# and so the next test's canary: it is measured off here (the cap stays).
NO_LOAD_GOVERNOR = ("--capacity-cpu", "0", "--capacity-tick-lag", "0")


# -- servers -----------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> SelfSigned:
    return make_self_signed(tmp_path_factory.mktemp("attack-certs"))


@pytest.fixture(scope="module")
def ws_server() -> Iterator[ServerProcess]:
    with running_server("--max-rooms-per-address", str(ROOM_QUOTA), *NO_LOAD_GOVERNOR) as server:
        yield server


@pytest.fixture(scope="module")
def wss_server(cert: SelfSigned) -> Iterator[ServerProcess]:
    with running_server(
        "--tls-cert", str(cert.cert_file), "--tls-key", str(cert.key_file), *NO_LOAD_GOVERNOR
    ) as server:
        yield server


def port_of(server: ServerProcess) -> int:
    port = urlsplit(server.url).port
    assert port is not None
    return port


def rss_mb(server: ServerProcess) -> float:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("the server process is gone")


# -- the canary --------------------------------------------------------------


class _CountingSession(ClientSession):
    """A client session that notes when each snapshot was decoded."""

    def __init__(self, arrivals: list[float]) -> None:
        super().__init__()
        self.arrivals = arrivals

    def receive(self, data: bytes) -> m.ServerMessage:
        msg = super().receive(data)
        if isinstance(msg, m.Snapshot):
            self.arrivals.append(trio.current_time())
        return msg


class Canary:
    """A well-behaved player in its own room: acks every snapshot it applies."""

    def __init__(self, server: ServerProcess, tls: SelfSigned | None = None) -> None:
        self.server = server
        self.tls = tls
        self.arrivals: list[float] = []
        self.ws: RawWebSocket | None = None

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        context = self.tls.client_context() if self.tls is not None else None
        ws = await RawWebSocket.connect("127.0.0.1", port_of(self.server), tls=context)
        ws.session = _CountingSession(self.arrivals)
        self.ws = ws
        await ws.join("canary-room", "canary")
        task_status.started()
        acked = m.NO_TICK
        try:
            while await ws.read_some():
                if ws.session.acked_tick > acked:  # the newest applied world: ack it
                    acked = ws.session.acked_tick
                    await ws.send(frame(OP_BINARY, ws.session.ack()))
            raise AssertionError(f"the canary was closed ({ws.close_code})")
        finally:
            with trio.CancelScope(shield=True):
                await ws.send(frame(OP_BINARY, ws.session.leave()))
                await ws.aclose()

    def best_rate(self, since: float, until: float) -> float:
        """The highest snapshot rate of a WINDOW_S window inside [since, until]."""
        best, start = 0.0, 0
        times = [t for t in self.arrivals if since <= t <= until]
        for end in range(len(times)):
            while times[end] - times[start] > WINDOW_S:
                start += 1
            if times[end] - since >= WINDOW_S:
                best = max(best, (end - start + 1) / WINDOW_S)
        return best

    async def wait_for_rate(self, since: float, deadline: float) -> float:
        """Wait until a WINDOW_S window after ``since`` held MIN_RATE
        snapshots/s; fail at ``deadline``. Returns that window's rate."""
        while True:
            now = trio.current_time()
            rate = self.best_rate(since, now)
            if rate >= MIN_RATE:
                return rate
            if now >= deadline:
                raise AssertionError(
                    f"the canary never got {MIN_RATE:g} snapshots/s over {WINDOW_S:g} s (best {rate:.1f}/s)"
                )
            await trio.sleep(0.05)


class RssWatch:
    """Samples the server's RSS while an attack runs."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.baseline = rss_mb(server)
        self.peak = self.baseline

    async def run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb(self.server))
            await trio.sleep(0.05)

    async def wait_back(self, timeout: float = 5.0) -> float:
        """Wait until RSS is within RSS_GROWTH_MB of the baseline; return it."""
        with trio.move_on_after(timeout):
            while rss_mb(self.server) > self.baseline + RSS_GROWTH_MB:
                await trio.sleep(0.05)
        now = rss_mb(self.server)
        assert now <= self.baseline + RSS_GROWTH_MB, (self.baseline, now)
        return now


# -- attackers ---------------------------------------------------------------


async def flood(
    server: ServerProcess, burst: bytes, codes: list[int], *, room: str | None, until: float, first: bytes = b""
) -> None:
    """Connect (and join ``room`` unless None), send ``first``, then send
    ``burst`` back to back until the server closes or ``until``; note the
    close code (0: the server never closed)."""
    ws = await RawWebSocket.connect("127.0.0.1", port_of(server))
    try:
        if room is not None:
            await ws.join(room, "attacker")
        await ws.send(first)

        async def send_forever() -> None:
            while ws.close_code is None and trio.current_time() < until:
                await ws.send(burst)
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_forever)
            with trio.move_on_at(until):
                while ws.close_code is None and await ws.read_some():
                    pass
            nursery.cancel_scope.cancel()
        codes.append(ws.close_code or 0)
    finally:
        await ws.aclose()


async def attack_beside_the_canary(
    server: ServerProcess, attackers: int, burst: bytes, expected: int, *, room: str | None, first: bytes = b""
) -> RssWatch:
    """Run ``attackers`` floods beside a canary; assert the canary's rate
    and every attacker's close code. Returns the RSS samples."""
    codes: list[int] = []
    canary = Canary(server)
    async with trio.open_nursery() as nursery:
        await nursery.start(canary.run)
        watch = RssWatch(server)
        nursery.start_soon(watch.run)
        began = trio.current_time()
        async with trio.open_nursery() as attacks:
            for _ in range(attackers):
                attacks.start_soon(partial(flood, server, burst, codes, room=room, until=began + ATTACK_S, first=first))
            await canary.wait_for_rate(began, began + ATTACK_S)
        nursery.cancel_scope.cancel()
    assert codes == [expected] * attackers
    return watch


# -- the attacks -------------------------------------------------------------


async def test_a_ping_flood_after_the_join_is_closed_4006(ws_server) -> None:
    watch = await attack_beside_the_canary(ws_server, 3, frame(OP_PING, b"p") * 200, Code.RATE_LIMITED, room="pings")
    assert watch.peak <= watch.baseline + RSS_GROWTH_MB
    await watch.wait_back()


async def test_a_ping_flood_before_the_join_is_closed_4006(ws_server) -> None:
    # No ticket or join needed: the pre-welcome budget is 16 control frames.
    watch = await attack_beside_the_canary(ws_server, 3, frame(OP_PING, b"p") * 200, Code.RATE_LIMITED, room=None)
    await watch.wait_back()


async def test_a_pong_flood_is_closed_4006(ws_server) -> None:
    watch = await attack_beside_the_canary(ws_server, 3, frame(OP_PONG, b"q") * 200, Code.RATE_LIMITED, room="pongs")
    await watch.wait_back()


async def test_a_fragment_flood_is_closed_1009_with_bounded_memory(ws_server) -> None:
    watch = await attack_beside_the_canary(
        ws_server, 1, frame(OP_CONTINUATION, fin=False) * 500, 1009,
        room="fragments", first=frame(OP_BINARY, b"\x81", fin=False),
    )  # fmt: skip
    assert watch.peak <= watch.baseline + RSS_GROWTH_MB, (watch.baseline, watch.peak)
    await watch.wait_back()


async def _oversized_close_code(url: str, cert: SelfSigned | None, room: str) -> int:
    """One connection through trio-websocket (the project's own client
    library) that joins ``room``, then sends a 1 MiB message; the close code
    it reports. In a room the tick reads the socket: the path players use."""
    context = cert.client_context() if cert is not None else None
    session = ClientSession()
    with trio.fail_after(10):
        async with open_websocket_url(url, ssl_context=context) as ws:
            try:
                await ws.send_message(session.join(room=room, name="big"))
                while not isinstance(session.receive(await ws.get_message()), m.Welcome):
                    pass
                await ws.send_message(b"\x00" * 2**20)
                while True:
                    await ws.get_message()
            except ConnectionClosed as exc:
                return exc.reason.code
    raise AssertionError("unreachable")


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_an_oversized_frame_closes_4002_every_time_never_1006(scheme, ws_server, wss_server, cert) -> None:
    server, tls = (ws_server, None) if scheme == "ws" else (wss_server, cert)
    canary = Canary(server, tls)
    async with trio.open_nursery() as nursery:
        await nursery.start(canary.run)
        watch = RssWatch(server)
        began = trio.current_time()
        # Three rooms: each refused player's seat waits out its rejoin grace (16 seats a room).
        codes = [await _oversized_close_code(server.url, tls, f"big-{i % 3}") for i in range(30)]
        await canary.wait_for_rate(began, max(trio.current_time(), began + WINDOW_S) + ATTACK_S)
        nursery.cancel_scope.cancel()
    assert codes == [Code.MESSAGE_TOO_BIG] * 30
    await watch.wait_back()


async def test_a_wss_client_at_two_messages_per_tick_keeps_a_flat_rtt(wss_server, cert) -> None:
    run_s = 8.0
    canary = Canary(wss_server, cert)
    ws = await RawWebSocket.connect("127.0.0.1", port_of(wss_server), tls=cert.client_context())
    await ws.join("two-per-tick", "busy")
    async with trio.open_nursery() as nursery:
        await nursery.start(canary.run)
        t0 = trio.current_time()
        # Four pings a second: 2 messages in those ticks too.
        rtts = await rtts_at_two_messages_per_tick(ws, run_s, TICK_RATE, ping_every=5)
        await canary.wait_for_rate(t0, t0 + run_s + ATTACK_S)
        nursery.cancel_scope.cancel()
    await ws.aclose()
    assert ws.close_code is None, f"the busy wss:// client was closed with {ws.close_code}"
    first = statistics.median(rtt for at, rtt in rtts if at < 2.5)
    last = statistics.median(rtt for at, rtt in rtts if at > run_s - 2.5)
    # Flat: no backlog building up (before the fix it grew ~0.45 s per second).
    assert last <= first + 0.1 and last <= 0.3, (first, last)


async def test_a_cross_site_post_to_the_keyless_control_api_is_refused(ws_server) -> None:
    canary = Canary(ws_server)
    async with trio.open_nursery() as nursery:
        await nursery.start(canary.run)
        began = trio.current_time()
        async with httpx.AsyncClient(base_url=ws_server.control_url, timeout=10) as http:
            evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
            drained = await http.post("/v1/drain", headers=evil)
            assert drained.status_code == 403 and drained.json()["reason"] == "cross_origin"
            form = await http.post(
                "/v1/rooms", content=b"max_players=2", headers={**evil, "Content-Type": "text/plain"}
            )
            assert form.status_code == 403
            rebound = await http.post("/v1/drain", headers={"Host": "evil.example"})
            assert rebound.status_code == 403 and rebound.json()["reason"] == "forbidden_host"
            assert (await http.get("/readyz")).json()["ready"] is True  # still taking rooms
        await canary.wait_for_rate(began, began + WINDOW_S + ATTACK_S)
        nursery.cancel_scope.cancel()


async def test_room_spam_from_one_address_is_capped_4012(ws_server) -> None:
    canary = Canary(ws_server)
    welcomed, refused = 0, []
    async with trio.open_nursery() as nursery:
        await nursery.start(canary.run)
        began = trio.current_time()
        with trio.fail_after(ATTACK_S * 3):
            for i in range(2 * ROOM_QUOTA):
                ws = await RawWebSocket.connect("127.0.0.1", port_of(ws_server))
                try:
                    await ws.join(f"spam-{i}", "spammer")
                    welcomed += 1
                    await ws.send(frame(OP_BINARY, ws.session.leave()))
                except ConnectionError:
                    refused.append((ws.close_code, ws.errors()))
                finally:
                    await ws.aclose()
        await canary.wait_for_rate(began, max(trio.current_time(), began + WINDOW_S) + ATTACK_S)
        # The capped address still joins rooms that run.
        other = await RawWebSocket.connect("127.0.0.1", port_of(ws_server))
        assert (await other.join("canary-room", "second")).room == "canary-room"
        await other.aclose()
        nursery.cancel_scope.cancel()
    assert welcomed + len(refused) == 2 * ROOM_QUOTA
    assert welcomed < ROOM_QUOTA  # the canary's room (at least) counts too
    assert refused and all(r == (Code.TOO_MANY_ROOMS, [Code.TOO_MANY_ROOMS]) for r in refused), refused
