"""Headless bots: real protocol clients (client.connect) that play the arena.

Each bot joins its room, sends one input per 1/input_rate seconds with a
sequence number and measures the round trip from sending input N to the
first snapshot whose "seq" acknowledges N (what a player feels).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import trio

from client import ClientClosed, connect


@dataclass
class BotStats:
    rtt_s: list[float] = field(default_factory=list)
    snapshot_gaps_s: list[float] = field(default_factory=list)
    bytes_in: int = 0
    snapshots: int = 0
    inputs: int = 0
    desyncs: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    connected: bool = False

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def run_bot(url: str, room: str, name: str, *, input_rate: float, duration: float, seed: int, stats: BotStats) -> None:
    """Play for ``duration`` seconds; failures are counted, never raised."""
    rng = random.Random(seed)  # bots wander at random: gameplay, not security  # nosec B311
    try:
        async with connect(url, room=room, name=name) as client:
            stats.connected = True
            sent: dict[int, float] = {}

            async def send_inputs() -> None:
                period = 1.0 / input_rate
                next_at = trio.current_time()
                heading = rng.uniform(-math.pi, math.pi)
                while True:
                    # Wander, keeping the angle in the arena's [-pi, pi].
                    heading = (heading + rng.uniform(-0.3, 0.3) + math.pi) % (2 * math.pi) - math.pi
                    seq = await client.send_input(
                        mx=math.cos(heading), my=math.sin(heading), aim=heading, fire=rng.random() < 0.1
                    )
                    sent[seq] = trio.current_time()
                    stats.inputs += 1
                    next_at += period
                    await trio.sleep_until(next_at)

            async def read_worlds() -> None:
                last = None
                async for _ in client.worlds():
                    now = trio.current_time()
                    if last is not None:
                        stats.snapshot_gaps_s.append(now - last)
                    last = now
                    done = client.session.last_processed_seq
                    for seq in [s for s in sent if s <= done]:
                        stats.rtt_s.append(now - sent.pop(seq))

            with trio.move_on_after(duration):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send_inputs)
                    nursery.start_soon(read_worlds)
            stats.bytes_in = client.bytes_received
            stats.snapshots = client.snapshots_received
            stats.desyncs = client.desyncs
            for err in client.errors:
                stats.error(f"server_error_{err.code}")
    except* ClientClosed as group:
        for exc in _leaves(group):
            stats.error(f"closed_{exc.code}")
    except* OSError as group:
        for exc in _leaves(group):
            stats.error(type(exc).__name__)


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out[:1]  # one failure per bot: its tasks all see the same close
