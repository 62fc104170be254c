"""--durable-acks end to end: real server processes sharing a real
redis-server. Clients send numbered inputs (the counter game,
tests/games/counter.py, keeps per player the highest n with every input
1..n applied); Redis pauses its writes (CLIENT PAUSE WRITE: a slow store)
while play goes on, and the owner is SIGKILLed before the writes resume;
after the room moved, every input a client saw acknowledged by the dead node (a snapshot's
``seq``) is in the restored room's state."""

from __future__ import annotations

import redis
import trio

from tickroom.client import connect

from .harness import eventually, running_server

TTL_S = 1.5
CHECKPOINT_TICKS = 10
RATE = 20
PLAYERS = 3
RECOVERY_DEADLINE_S = TTL_S + 8.0  # lease expiry + a watcher round + restore + rejoin, with CI slack
PLAY_DEADLINE_S = 20.0
PAUSE_MS = 1500  # Redis holds every write this long: the kill lands inside it


def node(redis_url: str):
    return running_server(
        "--redis-url", redis_url, "--lease-ttl", str(TTL_S), "--checkpoint-interval", str(CHECKPOINT_TICKS),
        "--tick-rate", str(RATE), "--rejoin-grace", "20", "--idle-close", "30",
        "--game", "tests.games.counter:Counter", "--durable-acks",
    )  # fmt: skip


class Numbered:
    """One player sending inputs n = 1, 2, 3, ...: remembers which seq
    carried which n, and the highest n node A acknowledged."""

    def __init__(self, client, owner_url: str) -> None:
        self.client = client
        self.owner_url = owner_url
        self.sent = 0
        self.n_of_seq: dict[int, int] = {}
        self.acked_by_owner = 0  # highest n whose seq a snapshot from the owner acknowledged

    async def run(self, stop: trio.Event) -> None:
        while not stop.is_set():
            seq = await self.client.send_input(mx=1.0 if self.sent // 20 % 2 else -1.0, my=0.0, n=self.sent + 1)
            if seq:  # 0: dropped while the client reconnects
                self.sent += 1
                self.n_of_seq[seq] = self.sent
            with trio.move_on_after(0.2):
                await self.client.next_world()
            # Read after the snapshot was applied: a world that came from the
            # new owner has the new URL already (a switch in between only
            # skips one of the old owner's acks: never a false failure).
            if self.client.url == self.owner_url:
                acked = self.client.session.last_processed_seq
                if acked in self.n_of_seq:
                    self.acked_by_owner = max(self.acked_by_owner, self.n_of_seq[acked])


async def test_no_input_a_client_saw_acknowledged_is_lost_when_the_owner_is_killed(redis_url):
    store = redis.Redis.from_url(redis_url)
    with node(redis_url) as a, node(redis_url) as b:
        async with (
            connect(a.url, room="durable", name="p0", reconnect=True, urls=[b.url]) as c0,
            connect(a.url, room="durable", name="p1", reconnect=True, urls=[b.url]) as c1,
            connect(a.url, room="durable", name="p2", reconnect=True, urls=[b.url]) as c2,
        ):
            players = [Numbered(c, a.url) for c in (c0, c1, c2)]
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                for p in players:
                    nursery.start_soon(p.run, stop)
                # Kill in the middle of play, between checkpoints, with inputs in flight.
                await eventually(
                    lambda: all(p.acked_by_owner >= 2 * CHECKPOINT_TICKS + 3 for p in players),
                    timeout=PLAY_DEADLINE_S, what="every player to have inputs acknowledged",
                )  # fmt: skip
                # The store turns slow: writes wait, snapshots go on (held,
                # then past the hold bound with a seq lowered to what is written).
                ticks = [p.client.world.tick for p in players]
                store.client_pause(PAUSE_MS, all=False)  # WRITE mode: reads still answered
                await eventually(
                    lambda: all(p.client.world.tick >= t + 4 for p, t in zip(players, ticks, strict=True)),
                    timeout=PLAY_DEADLINE_S, what="play to go on while Redis holds the writes",
                )  # fmt: skip
                a.proc.kill()  # SIGKILL: no drain, no last write
                await eventually(
                    lambda: all(p.client.url == b.url for p in players),
                    timeout=RECOVERY_DEADLINE_S, what="every client to move to node B",
                )  # fmt: skip
                stop.set()
            for p in players:
                with trio.fail_after(RECOVERY_DEADLINE_S):
                    world = await p.client.next_world(after=p.client.world.tick if p.client.world else -1)
                high = int(world.entity(p.client.player)["high"])
                print(f"player {p.client.player}: acknowledged by A up to n={p.acked_by_owner}, restored high={high}")
                assert p.acked_by_owner > 2 * CHECKPOINT_TICKS
                assert high >= p.acked_by_owner, (
                    f"player {p.client.player}: input {high + 1} was acknowledged (up to {p.acked_by_owner}) but lost"
                )
