"""The per-message pieces of the hot path, each on its own, in a hot loop.

- receive: one client input frame's msgpack decode and validation through
  the joined ServerSession (what every input of every player pays);
- encode: one delta of a reference room (10 wandering, shooting players, the
  arena) against the previous tick, plus its msgpack packing (once per room
  per tick);
- wake: a room's wait for its next tick, 100 rooms at 100 Hz: trio's
  sleep_until, and the node's TickClock where the checkout has one.

Runs against whatever checkout is first on sys.path, so one command measures
before and after a change on the same machine minutes apart:

    python benchmarks/hot_path.py
    PYTHONPATH=/path/to/older/checkout python benchmarks/hot_path.py

Medians of 7 repeats, microseconds per operation (process CPU time for the
wake-ups, which sleep on the real clock).
"""

from __future__ import annotations

import math
import random
import statistics
import time
import timeit
from pathlib import Path

import msgpack
import numpy as np
import trio

# The checkout under test: PYTHONPATH comes before the installed one.
from tickroom.protocol.codec import pack_snapshot_shared
from tickroom.protocol.delta import WorldState, encode_delta
from tickroom.protocol.schema import Schema
from tickroom.protocol.session import ServerSession
from tickroom.protocol.validate import InputFields
from tickroom.simulation.game import GameConfig, InputBatch
from tickroom.simulation.games.arena import Arena

REPEATS = 7


def per_call(fn, number: int) -> float:
    return statistics.median(timeit.repeat(fn, number=number, repeat=REPEATS)) / number * 1e6


def bench_receive() -> float:
    session = ServerSession()
    session.joined(InputFields(Arena.input_fields), 20, 0.0)
    data = msgpack.packb({"t": "input", "seq": 5, "tick": 100, "ack": 100,
                          "in": {"mx": math.cos(1.0), "my": math.sin(1.0), "aim": 1.0, "fire": False}})  # fmt: skip
    now = [0.0]

    def receive() -> None:
        now[0] += 0.05  # one input per tick: the rate limit never bites
        session.receive_message(data, now[0])

    return per_call(receive, 20_000)


def reference_worlds(ticks: int = 300) -> tuple[list[WorldState], Schema]:
    game = Arena(seed=1, config=GameConfig(tick_rate=20, max_players=16))
    schema = Schema.from_description(game.components)
    players = [game.join(f"p{i}") for i in range(10)]
    rng = random.Random(1)
    headings = [rng.uniform(-math.pi, math.pi) for _ in players]
    worlds = []
    for _ in range(ticks):
        for k in range(len(headings)):
            headings[k] = (headings[k] + rng.uniform(-0.3, 0.3) + math.pi) % (2 * math.pi) - math.pi
        aim = np.asarray(headings)
        fire = np.asarray([rng.random() < 0.1 for _ in players])
        game.apply_inputs(InputBatch(
            players=np.asarray(players, dtype=np.int64),
            fields={"mx": np.cos(aim), "my": np.sin(aim), "aim": aim, "fire": fire},
        ))  # fmt: skip
        game.step()
        view = game.view()
        worlds.append(WorldState.from_view(game.tick, view.ids, view.components, schema))
    return worlds[100:], schema  # after projectiles fill the arena


def bench_encode() -> float:
    worlds, schema = reference_worlds()

    def encode_all() -> None:
        # Fresh copies each round: a world caches what encoding needs.
        fresh = [WorldState(w.tick, w.ids, w.components) for w in worlds]
        for prev, cur in zip(fresh, fresh[1:], strict=False):
            fields = encode_delta(cur, prev, schema)
            pack_snapshot_shared(cur.tick, prev.tick, fields, [])

    return per_call(encode_all, 5) / (len(worlds) - 1)


def bench_wake(rooms: int = 100, ticks: int = 100, dt: float = 0.01) -> dict[str, float]:
    from tickroom import server

    try:
        from tickroom.server.rooms import tick_clock
    except ImportError:
        tick_clock = None
    # A checkout before the tick clock has none; an editable install of a
    # newer one would lend its module, which is not the checkout's.
    if tick_clock is not None and Path(tick_clock.__file__).parent.parent != Path(server.__file__).parent:
        tick_clock = None
    TickClock = tick_clock.TickClock if tick_clock is not None else None  # noqa: N806

    async def run(use_clock: bool) -> float:
        clock = TickClock() if use_clock else None
        start = trio.current_time()
        wakes = 0

        async def room() -> None:
            nonlocal wakes
            sleep_until = clock.sleep_until if clock else trio.sleep_until
            for n in range(ticks):
                await sleep_until(start + (n + 1) * dt)
                wakes += 1

        began = time.process_time()
        async with trio.open_nursery() as nursery:
            if clock:
                nursery.start_soon(clock.run)
            async with trio.open_nursery() as rooms_nursery:
                for _ in range(rooms):
                    rooms_nursery.start_soon(room)
            nursery.cancel_scope.cancel()
        return (time.process_time() - began) / wakes * 1e6

    out = {"wake_sleep_until_us": statistics.median(trio.run(run, False) for _ in range(3))}
    if TickClock is not None:
        out["wake_tick_clock_us"] = statistics.median(trio.run(run, True) for _ in range(3))
    return out


def main() -> None:
    from tickroom import protocol

    print(f"checkout: {protocol.__file__.rsplit('/protocol/', 1)[0]}")
    print(f"receive_us_per_input: {bench_receive():.2f}")
    print(f"encode_us_per_room_tick: {bench_encode():.1f}")
    for key, value in bench_wake().items():
        print(f"{key}: {value:.1f}")


if __name__ == "__main__":
    main()
