"""The per-message pieces of the hot path, each on its own, in a hot loop.

- receive: one client input frame's msgpack decode and validation through
  the joined ServerSession (protocol version 1's per-message path);
- inputs: a room tick's worth of inputs, 10 players with one input each,
  from the frames' payloads to the game's InputBatch (session, acks, seqs,
  batch): version 1's per-message path on a checkout before version 2, and
  on this one version 2's rows (validated in one numpy batch per room tick)
  and version 1's (now batched the same way);
- envelope: snapshot bytes and the per-client cost of stamping each
  client's seq (``finish_snapshot``), over the reference room's deltas, in
  each protocol version the checkout speaks, and what a fixed binary
  header would weigh instead of version 2's msgpack array;
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
from functools import partial
from pathlib import Path

import msgpack
import numpy as np
import trio

# The checkout under test: PYTHONPATH comes before the installed one.
from tickroom.protocol.codec import finish_snapshot, pack_snapshot_shared
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
    session.receive_message(msgpack.packb({"t": "join", "v": 1}), 0.0)  # version 1: its inputs are maps
    session.joined(InputFields(Arena.input_fields), 20, 0.0)
    data = msgpack.packb({"t": "input", "seq": 5, "tick": 100, "ack": 100,
                          "in": {"mx": math.cos(1.0), "my": math.sin(1.0), "aim": 1.0, "fire": False}})  # fmt: skip
    now = [0.0]

    def receive() -> None:
        now[0] += 0.05  # one input per tick: the rate limit never bites
        session.receive_message(data, now[0])

    return per_call(receive, 20_000)


ROOM_PLAYERS = 10
BATCH_TICKS = 2000  # ticks of pre-encoded inputs per measurement


def _arena_payloads(version: int, fields: InputFields) -> list[list[bytes]]:
    """BATCH_TICKS ticks of one input per player (seq = tick + 1)."""
    rng = random.Random(1)
    encode_row = None
    if version >= 2:
        from tickroom.protocol.input_rows import InputRows

        encode_row = InputRows(fields).encoder.encode
    ticks = []
    for tick in range(BATCH_TICKS):
        payloads = []
        for _ in range(ROOM_PLAYERS):
            data = {
                "mx": rng.uniform(-1, 1),
                "my": rng.uniform(-1, 1),
                "aim": rng.uniform(-3, 3),
                "fire": rng.random() < 0.1,
            }
            if encode_row is not None:
                payloads.append(encode_row(tick + 1, tick, tick, data))
            else:
                payloads.append(msgpack.packb({"t": "input", "seq": tick + 1, "tick": tick, "ack": tick, "in": data}))
        ticks.append(payloads)
    return ticks


class _Link:
    """A connection's take_inputs without the socket: the session's part."""

    def __init__(self, session: ServerSession) -> None:
        self.session = session
        self.payload = b""
        self.now = 0.0

    def take_inputs(self) -> list:
        return [self.session.receive_message(self.payload, self.now)]

    def refuse(self, refusal) -> None:  # noqa: ANN001 - never called: every input is valid
        raise AssertionError(refusal)


def bench_room_inputs(version: int) -> float | None:
    """Microseconds per input: a tick of ROOM_PLAYERS inputs from payloads
    to the InputBatch. None when the checkout does not speak ``version``."""
    from tickroom.protocol import messages as m
    from tickroom.server.rooms.players import Player

    if version not in getattr(m, "SUPPORTED_VERSIONS", (m.PROTOCOL_VERSION,)):
        return None
    fields = InputFields(Arena.input_fields)
    payloads = _arena_payloads(version, fields)
    join = msgpack.packb({"t": "join", "v": version})

    def fresh() -> tuple[list, list]:
        players, sessions = [], []
        for i in range(ROOM_PLAYERS):
            session = ServerSession()
            session.receive_message(join, 0.0)
            session.joined(fields, 20, 0.0)
            sessions.append(session)
            players.append(Player(id=i + 1, name=f"p{i}", session=f"s{i}"))
        return players, sessions

    try:
        from tickroom.server.rooms.input_rows_batch import RowBatcher
    except ImportError:  # a checkout before version 2: the per-message path
        from tickroom.server.rooms.input_batch import InputBatcher
        from tickroom.server.rooms.room import Room

        def run() -> None:
            players, sessions = fresh()
            batcher = InputBatcher(fields, 8)
            for tick, row in enumerate(payloads):
                now = tick * 0.05
                for player, session, data in zip(players, sessions, row, strict=True):
                    Room._receive(player, session.receive_message(data, now), tick)
                batcher.batch([p for p in players if p.pending])

    else:

        def run() -> None:
            players, sessions = fresh()
            links = [_Link(s) for s in sessions]
            connected = list(zip(players, links, strict=True))
            batcher = RowBatcher(fields, 8)
            for tick, row in enumerate(payloads):
                now = tick * 0.05
                for link, data in zip(links, row, strict=True):
                    link.payload, link.now = data, now
                batcher.collect(connected, tick)

    return min(timeit.repeat(run, number=1, repeat=REPEATS)) / (BATCH_TICKS * ROOM_PLAYERS) * 1e6


def bench_envelope() -> dict[str, float]:
    """Snapshot bytes per version (mean over the reference deltas, seq 1000
    and a tick in the thousands: a room a few minutes old) and the cost of
    one client's ``finish_snapshot``."""
    from tickroom.protocol import messages as m

    worlds, schema = reference_worlds()
    deltas = []
    for prev, cur in zip(worlds, worlds[1:], strict=False):
        deltas.append((cur.tick + 5000, prev.tick + 5000, encode_delta(cur, prev, schema)))
    packers = {1: pack_snapshot_shared}
    if 2 in getattr(m, "SUPPORTED_VERSIONS", ()):
        from tickroom.protocol import envelope

        packers[2] = envelope.pack_shared
    out: dict[str, float] = {}
    for version, pack in packers.items():
        shared = [pack(tick, base, fields, []) for tick, base, fields in deltas]
        sizes = [len(finish_snapshot(part, 1000)) for part in shared]
        out[f"snapshot_bytes_v{version}"] = statistics.mean(sizes)
        part = shared[len(shared) // 2]
        runs = timeit.repeat(partial(finish_snapshot, part, 1000), number=20_000, repeat=REPEATS)
        out[f"finish_us_v{version}"] = min(runs) / 20_000 * 1e6
    # The alternative: a fixed binary header (tag u8, seq u32, tick u32,
    # base i32, n u32) in front of a msgpack array of [ids, c, rm, ev].
    binary = []
    for _, _, fields in deltas:
        rest = msgpack.packb([fields["ids"], fields["c"], fields["rm"], []], use_bin_type=True)
        binary.append(17 + len(rest))
    out["snapshot_bytes_binary_header"] = statistics.mean(binary)
    return out


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
    for version in (1, 2):
        cost = bench_room_inputs(version)
        if cost is not None:
            print(f"room_inputs_v{version}_us_per_input: {cost:.2f}")
    for key, value in bench_envelope().items():
        print(f"{key}: {value:.2f}")
    print(f"encode_us_per_room_tick: {bench_encode():.1f}")
    for key, value in bench_wake().items():
        print(f"{key}: {value:.1f}")


if __name__ == "__main__":
    main()
