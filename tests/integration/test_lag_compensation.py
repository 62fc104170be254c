"""Lag compensation over real sockets (issue 18): a scripted shooter behind a
proxy that delays every byte by 75 ms each way (150 ms of added round trip)
hits a moving target it aimed at on its own interpolated screen; the same
shot beyond the room's rewind bound misses.

A real server process; both players are Python clients; the shooter's
connection goes through DelayProxy. The geometry makes the outcome depend on
the rewind only: the target runs along a line at full speed (0.6 units a
tick), the shooter stands still 2 units beside that line and fires straight
at the target as its screen shows it (the world INTERP_TICKS behind its
newest, as docs/protocol.md section 9 draws others), saying that tick in the
input. Judged at that tick, the projectile's first position is on the
target (a hit); judged 3 or more ticks later, the target is 1.8 units further
on and the projectile only flies away from its line (a miss, whatever the
machine's load: load only makes the shot older). The shot's lag is read from
the projectile's spawn tick on the wire (t0 + 1 is the tick it was fired in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx
import pytest
import trio

from tickroom.client import connect
from tickroom.client.connection import Client as Connection
from tickroom.protocol.delta import WorldState

from .harness import running_server

pytestmark = pytest.mark.integration

RATE = 20
SIZE = 40.0  # a small arena: the target reaches its start line in a few seconds
DELAY_S = 0.075  # added each way: 150 ms of round trip
INTERP_TICKS = 2  # docs/protocol.md section 9: others are drawn two ticks back
STEP = 12.0 / RATE  # units a full stick moves a player per tick
GAP = 2.0  # units between the shooter and the target's line: one projectile step
SCENE_TIMEOUT_S = 40.0


class DelayProxy:
    """A TCP proxy that forwards every chunk, each way, ``delay`` seconds
    after it arrived, in order (a fixed one-way latency)."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.port = 0

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._serve, listeners)

    async def _serve(self, client: trio.SocketStream) -> None:
        upstream = await trio.open_tcp_stream("127.0.0.1", self.upstream_port)
        async with client, upstream, trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, client, upstream, nursery.cancel_scope)
            nursery.start_soon(self._pump, upstream, client, nursery.cancel_scope)

    async def _pump(self, src: trio.SocketStream, dst: trio.SocketStream, scope: trio.CancelScope) -> None:
        """src -> dst, each chunk held ``delay``; either side going away
        (closed, reset) ends the whole proxied connection."""
        send, recv = trio.open_memory_channel[tuple[float, bytes]](10_000)

        async def deliver() -> None:
            try:
                async for due, chunk in recv:
                    await trio.sleep_until(due)
                    await dst.send_all(chunk)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(deliver)
            try:
                while chunk := await src.receive_some(65536):
                    send.send_nowait((trio.current_time() + self.delay, chunk))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            await send.aclose()  # deliver() sends what is queued, then ends it all


class Screen:
    """A client's recent worlds by tick, filled by reading its snapshots."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.worlds: dict[int, WorldState] = {}
        self.changed = trio.Event()

    async def follow(self) -> None:
        async for world in self.conn.worlds():
            self.worlds[world.tick] = world
            for old in [t for t in self.worlds if t < world.tick - 60]:
                del self.worlds[old]
            self.changed.set()
            self.changed = trio.Event()

    def newest(self) -> WorldState:
        return self.worlds[max(self.worlds)]

    def shown(self) -> WorldState:
        """What the screen shows of others: the world INTERP_TICKS behind the
        newest (or the newest one held before that, if it was skipped)."""
        newest = max(self.worlds)
        return self.worlds[max(t for t in self.worlds if t <= newest - INTERP_TICKS or t == min(self.worlds))]

    def pos(self, world: WorldState, entity: int) -> tuple[float, float]:
        row = world.entity(entity)
        assert row is not None, f"entity {entity} not in world {world.tick}"
        return row["pos"][0] / 32, row["pos"][1] / 32


async def settle(screen: Screen, entity: int) -> tuple[float, float]:
    """Wait until ``entity`` stands still for 4 consecutive snapshots."""
    last, still = None, 0
    while still < 4:
        await screen.changed.wait()
        now = screen.pos(screen.newest(), entity)
        still = still + 1 if now == last else 0
        last = now
    assert last is not None
    return last


async def hold(conn: Connection, **stick: float) -> None:
    await conn.send_input(mx=stick.get("mx", 0.0), my=stick.get("my", 0.0), aim=0.0, fire=False)


async def move_to(conn: Connection, screen: Screen, me: int, x: float, y: float, tol: float) -> tuple[float, float]:
    """Steer with stick pulses, re-measuring after each, until within ``tol``."""
    for _ in range(12):
        px, py = await settle(screen, me)
        dx, dy = x - px, y - py
        if abs(dx) <= tol and abs(dy) <= tol:
            return px, py
        ticks = max(2, math.ceil(max(abs(dx), abs(dy)) / STEP))
        await hold(conn, mx=max(-1.0, min(1.0, dx / (ticks * STEP))), my=max(-1.0, min(1.0, dy / (ticks * STEP))))
        await trio.sleep(ticks / RATE)
        await hold(conn)
    raise AssertionError(f"could not steer to ({x}, {y})")


@dataclass
class Outcome:
    hit: bool
    lag_ticks: int  # fire tick - the tick the shooter acted on
    bound_ticks: int
    distance: float  # shooter to target on the shooter's screen when it fired


async def duel(server_url: str, proxy_url: str, room: str, rewind: float) -> Outcome:
    async with (
        connect(server_url, room=room, name="target") as target,
        connect(proxy_url, room=room, name="shooter") as shooter,
        trio.open_nursery() as nursery,
    ):
        t_screen, s_screen = Screen(target), Screen(shooter)
        nursery.start_soon(t_screen.follow)
        nursery.start_soon(s_screen.follow)
        tid, sid = target.player, shooter.player
        # The target backs against the x = 1 wall (exact: the walls clamp).
        await hold(target, mx=-1.0)
        _, ty = await settle(t_screen, tid)
        # The shooter stands GAP beside the target's line, well ahead of it.
        sy = ty + GAP if ty + GAP <= SIZE - 1 else ty - GAP
        sx, sy = await move_to(shooter, s_screen, sid, SIZE / 2, sy, tol=0.1)
        await hold(target, mx=1.0)  # and the target runs along its line
        with trio.fail_after(SCENE_TIMEOUT_S):
            while True:
                await s_screen.changed.wait()
                seen = s_screen.shown()
                tx, ty_seen = s_screen.pos(seen, tid)
                if abs(tx - sx) <= 0.35:
                    break
            distance = math.hypot(tx - sx, ty_seen - sy)
            aim = math.atan2(ty_seen - sy, tx - sx)
            await shooter.send_input(mx=0.0, my=0.0, aim=aim, fire=True, acting_on=seen.tick)
            await shooter.send_input(mx=0.0, my=0.0, aim=aim, fire=False, acting_on=seen.tick)
            # Either the hit (in the very step it was fired: the projectile
            # never reaches a snapshot) or the projectile on the wire, whose
            # t0 + 1 is its fire tick; then its whole life (1.5 s) for a hit.
            events: list[list] = []
            fired = None
            while fired is None or s_screen.newest().tick < fired + 35:
                await s_screen.changed.wait()
                events += shooter.take_events()
                hits = [e for e in events if e[1] == "hit" and e[2] == sid and e[3] == tid]
                if hits:
                    fired = fired if fired is not None else hits[0][0]
                    break
                world = s_screen.newest()
                for i in world.ids.tolist():
                    row = world.entity(i) or {}
                    if fired is None and i != sid and row.get("owner") == sid:
                        fired = row["t0"] + 1
        nursery.cancel_scope.cancel()
    assert fired is not None
    return Outcome(bool(hits), fired - seen.tick, round(rewind * RATE), distance)


async def test_a_shot_at_the_interpolated_target_hits_within_the_bound_and_misses_beyond() -> None:
    with running_server("--tick-rate", str(RATE), "--idle-close", "30") as server:
        port = int(server.url.rsplit(":", 1)[1])
        rooms = {}
        for rewind in (0.5, 0.1):
            body = {"game": "arena", "options": {"size": SIZE, "rewind": rewind}}
            response = httpx.post(f"{server.control_url}/v1/rooms", json=body, timeout=10)
            assert response.status_code == 201, response.text
            rooms[rewind] = response.json()["room_id"]
        proxy = DelayProxy(port, DELAY_S)
        async with trio.open_nursery() as nursery:
            await nursery.start(proxy.run)
            proxy_url = f"ws://127.0.0.1:{proxy.port}"
            within = await duel(server.url, proxy_url, rooms[0.5], 0.5)
            beyond = await duel(server.url, proxy_url, rooms[0.1], 0.1)
            nursery.cancel_scope.cancel()
    print(f"lag compensation: within {within}; beyond {beyond}")
    # 150 ms of round trip + 2 ticks of interpolation: at least 5 ticks back.
    assert within.lag_ticks >= 5 and beyond.lag_ticks >= 5
    assert within.lag_ticks <= within.bound_ticks and within.hit, within
    assert beyond.lag_ticks >= beyond.bound_ticks + 3 and not beyond.hit, beyond
