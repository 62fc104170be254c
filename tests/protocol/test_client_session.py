"""protocol/client_session.py against a server side made of the real protocol
pieces (codec encoders, the delta codec, the validator), back to back like
wsproto's ``remote.receive_data(local.send(...))``: what the server encodes
goes straight into ClientSession.receive, and what the client sends is
decoded by the server's own validator (a version 2 input row by the
server's batched row decoder). The server side speaks version 2 unless a
test asks for the deprecated version 1."""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import pytest

from tickroom.protocol import envelope
from tickroom.protocol import messages as m
from tickroom.protocol.client_session import MAX_HISTORY, ClientSession, ClientState
from tickroom.protocol.codec import (
    encode_error,
    encode_pong,
    encode_welcome,
    finish_snapshot,
    pack_snapshot_shared,
    unpack_client_frame,
)
from tickroom.protocol.delta import DeltaError, WorldState, encode_delta
from tickroom.protocol.errors import LocalProtocolError
from tickroom.protocol.input_rows import ROW_TAG, InputRows, row_layout
from tickroom.protocol.schema import Schema
from tickroom.protocol.validate import InputFields, validate_client_message

ARENA_INPUTS = InputFields(
    {
        "mx": ("float", -1.0, 1.0),
        "my": ("float", -1.0, 1.0),
        "aim": ("float", -3.14159265, 3.14159265),
        "fire": ("bool",),
    }
)
SCHEMA = Schema.from_description(
    {
        "pos": {"dtype": "<i2", "shape": [2], "scale": 32},
        "angle": {"dtype": "<i2"},
        "hp": {"dtype": "|u1", "shape": []},
        "vel": {"dtype": "<f4", "shape": [2]},
        "alive": {"dtype": "|b1"},
    }
)
PLAYER = 3


def make_world(tick: int, ids: list[int], rng: np.random.Generator) -> WorldState:
    n = len(ids)
    return WorldState.from_view(
        tick,
        np.array(ids, dtype=np.uint32),
        {
            "pos": rng.integers(-2000, 2000, size=(n, 2)).astype("<i2"),
            "angle": rng.integers(-400, 400, size=n).astype("<i2"),
            "hp": rng.integers(0, 256, size=n).astype("|u1"),
            "vel": rng.standard_normal((n, 2)).astype("<f4"),
            "alive": rng.random(n) < 0.5,
        },
        SCHEMA,
    )


def evolve(world: WorldState, tick: int, rng: np.random.Generator) -> WorldState:
    """The next tick: some entities leave, some arrive, some rows change."""
    ids = world.ids.tolist()
    comps = {name: np.array(arr) for name, arr in world.components.items()}
    keep = rng.random(len(ids)) >= 0.1
    ids = [i for i, k in zip(ids, keep, strict=True) if k]
    comps = {name: arr[keep] for name, arr in comps.items()}
    moved = rng.random(len(ids)) < 0.3
    comps["pos"][moved] += rng.integers(-5, 6, size=(int(moved.sum()), 2)).astype("<i2")
    comps["hp"][rng.random(len(ids)) < 0.1] -= 1
    fresh = make_world(tick, [max(ids + [0]) + 1 + k for k in range(int(rng.integers(0, 3)))], rng)
    ids += fresh.ids.tolist()
    comps = {name: np.concatenate([arr, fresh.components[name]]) for name, arr in comps.items()}
    return WorldState.from_view(tick, np.array(ids, dtype=np.uint32), comps, SCHEMA)


class ServerSide:
    """What a room does for one client, from real protocol pieces only."""

    def __init__(
        self, *, session: str = "tok_1", room: str = "r-1", tick: int = 0, seed: int = 0, version: int = 2
    ) -> None:
        self.version = version
        self.rng = np.random.default_rng(seed)
        self.session = session
        self.room = room
        self.worlds: dict[int, WorldState] = {tick: make_world(tick, [PLAYER, 10, 11, 12], self.rng)}
        self.tick = tick

    def welcome(self) -> bytes:
        return encode_welcome(
            m.Welcome(
                version=self.version,
                room=self.room,
                game="arena",
                player=PLAYER,
                session=self.session,
                tick_rate=20,
                tick=self.tick,
                schema=SCHEMA.describe(),
                inputs=ARENA_INPUTS.describe(),
                players=[[PLAYER, "ann"]],
                layout=row_layout(ARENA_INPUTS) if self.version >= 2 else [],
            )
        )

    def step(self, n: int = 1) -> WorldState:
        for _ in range(n):
            self.tick += 1
            self.worlds[self.tick] = evolve(self.worlds[self.tick - 1], self.tick, self.rng)
        return self.worlds[self.tick]

    def snapshot(self, tick: int, base: int = m.NO_TICK, *, seq: int = 0, events: list | None = None) -> bytes:
        baseline = None if base == m.NO_TICK else self.worlds[base]
        fields = encode_delta(self.worlds[tick], baseline, SCHEMA)
        pack = envelope.pack_shared if self.version >= 2 else pack_snapshot_shared
        return finish_snapshot(pack(tick, base, fields, events or []), seq)


def decode(data: bytes) -> m.ClientMessage:
    """What the server makes of a client frame: a version 2 input row
    through the room's batched decoder, anything else the validator."""
    if data[0] == ROW_TAG:
        rows = InputRows(ARENA_INPUTS).decode([data])
        assert rows.ok.all(), rows.refusals
        values = {name: col[0].item() for name, col in rows.fields.items()}
        return m.Input(seq=int(rows.seq[0]), tick=int(rows.tick[0]), ack=int(rows.ack[0]), data=values)
    return validate_client_message(unpack_client_frame(data), ARENA_INPUTS)


@pytest.fixture
def server() -> ServerSide:
    return ServerSide()


@pytest.fixture
def client(server: ServerSide) -> ClientSession:
    client = ClientSession()
    assert decode(client.join(room=server.room, name="ann")) == m.Join(version=2, name="ann", room=server.room)
    client.receive(server.welcome())
    return client


# --- welcome -------------------------------------------------------------------


def test_welcome_sets_player_schema_and_state(server: ServerSide) -> None:
    client = ClientSession()
    assert client.state is ClientState.AWAIT_WELCOME and client.player is None
    msg = client.receive(server.welcome())
    assert isinstance(msg, m.Welcome) and msg.session == "tok_1"
    assert client.state is ClientState.JOINED
    assert client.player == PLAYER
    assert client.schema == SCHEMA
    assert client.world is None and client.acked_tick == m.NO_TICK


def test_snapshot_before_welcome_is_refused(server: ServerSide) -> None:
    with pytest.raises(ValueError):
        ClientSession().receive(server.snapshot(0))


def test_sending_before_welcome_is_our_bug() -> None:
    client = ClientSession()
    client.join(room="r-1")
    with pytest.raises(LocalProtocolError):
        client.input(mx=1.0)
    with pytest.raises(LocalProtocolError):
        client.ack()
    with pytest.raises(LocalProtocolError):
        client.rejoin()


# --- reconstruction -------------------------------------------------------------


@pytest.mark.parametrize("lag", [0, 1, 3], ids=["acks arrive at once", "1 tick late", "3 ticks late"])
def test_full_then_deltas_reconstruct_the_server_world(server: ServerSide, client: ClientSession, lag: int) -> None:
    """The server encodes each tick against the newest tick it knows the
    client acked, which may lag behind what the client applied."""
    client.receive(server.snapshot(0))
    assert client.world.equals(server.worlds[0]) and client.world.tick == 0
    acks = [0]
    for tick in range(1, 60):
        server.step()
        base = acks[max(0, len(acks) - 1 - lag)]
        snap = client.receive(server.snapshot(tick, base, seq=tick))
        assert (snap.tick, snap.base, snap.seq) == (tick, base, tick)
        assert client.world.tick == tick
        assert client.world.equals(server.worlds[tick]), f"tick {tick} against {base}"
        assert client.last_processed_seq == tick
        acks.append(client.acked_tick)
    assert client.desyncs == 0
    # The worlds did change, entities came and went: not 60 copies of one world.
    assert not server.worlds[59].equals(server.worlds[0])
    assert set(server.worlds[59].ids.tolist()) - set(server.worlds[0].ids.tolist())
    assert set(server.worlds[0].ids.tolist()) - set(server.worlds[59].ids.tolist())


def test_full_snapshot_mid_stream_replaces_the_world(server: ServerSide, client: ClientSession) -> None:
    client.receive(server.snapshot(0))
    server.step(5)
    client.receive(server.snapshot(5))
    assert client.world.equals(server.worlds[5])
    server.step()
    client.receive(server.snapshot(6, 5))
    assert client.world.equals(server.worlds[6])


# --- outgoing messages -------------------------------------------------------------


def test_input_numbers_seq_and_acks_the_newest_tick(server: ServerSide, client: ClientSession) -> None:
    first = decode(client.input(mx=0.5))
    assert first == m.Input(seq=1, tick=0, ack=m.NO_TICK, data={"mx": 0.5, "my": 0.0, "aim": 0.0, "fire": False})
    client.receive(server.snapshot(0))
    server.step(2)
    client.receive(server.snapshot(2, 0))
    second = decode(client.input(fire=True, aim=-3))
    assert (second.seq, second.tick, second.ack) == (2, 2, 2)
    assert second.data == {"mx": 0.0, "my": 0.0, "aim": -3.0, "fire": True}
    third = decode(client.input())
    assert (third.seq, third.ack) == (3, 2)
    assert decode(client.ack()) == m.Ack(tick=2)


def test_pings_count_up(client: ClientSession) -> None:
    assert [decode(client.ping()) for _ in range(3)] == [m.Ping(id=1), m.Ping(id=2), m.Ping(id=3)]


def test_leave(client: ClientSession) -> None:
    assert decode(client.leave()) == m.Leave()
    assert client.state is ClientState.CLOSED
    with pytest.raises(LocalProtocolError):
        client.input()


# --- desyncs -------------------------------------------------------------------


def test_delta_against_a_base_never_received_is_a_desync(server: ServerSide, client: ClientSession) -> None:
    client.receive(server.snapshot(0))
    server.step(3)
    # Tick 2 was never delivered (the outbox replaced it); a delta against it fails.
    with pytest.raises(DeltaError):
        client.receive(server.snapshot(3, 2))
    assert client.desyncs == 1
    assert client.world.tick == 0 and client.world.equals(server.worlds[0])  # untouched
    # A full snapshot recovers.
    client.receive(server.snapshot(3))
    assert client.world.equals(server.worlds[3])
    assert client.desyncs == 1


def test_inconsistent_delta_is_a_desync(server: ServerSide, client: ClientSession) -> None:
    client.receive(server.snapshot(0))
    server.step()
    fields = encode_delta(server.worlds[1], server.worlds[0], SCHEMA)
    fields["n"] += 1  # the server claims one more entity than applying gives
    with pytest.raises(DeltaError):
        client.receive(finish_snapshot(pack_snapshot_shared(1, 0, fields, []), 0))
    assert client.desyncs == 1
    assert client.world.tick == 0


# --- events --------------------------------------------------------------------


def test_events_are_delivered_once_when_snapshots_overlap(server: ServerSide, client: ClientSession) -> None:
    ev = {t: [t, "hit", PLAYER, t * 10] for t in range(1, 6)}
    client.receive(server.snapshot(0, events=[[0, "spawn", PLAYER]]))
    assert client.take_events() == [[0, "spawn", PLAYER]]
    server.step(5)
    # The server has not seen an ack since tick 0: both deltas start there and
    # both carry the events of ticks 1 and 2.
    client.receive(server.snapshot(2, 0, events=[ev[1], ev[2]]))
    client.receive(server.snapshot(3, 0, events=[ev[1], ev[2], ev[3]]))
    assert client.take_events() == [ev[1], ev[2], ev[3]]
    # Now from tick 2 (an older ack), again overlapping tick 3.
    client.receive(server.snapshot(5, 2, events=[ev[3], ev[4], ev[5]]))
    assert client.take_events() == [ev[4], ev[5]]
    assert client.take_events() == []


def test_several_events_of_one_tick_all_arrive(server: ServerSide, client: ClientSession) -> None:
    client.receive(server.snapshot(0))
    server.step()
    events = [[1, "join", 5, "bob"], [1, "hit", 5, 3], [1, "kill", 5, 3]]
    client.receive(server.snapshot(1, 0, events=events))
    assert client.take_events() == events


# --- history --------------------------------------------------------------------


def test_history_is_pruned_below_the_latest_base(server: ServerSide, client: ClientSession) -> None:
    client.receive(server.snapshot(0))
    server.step(4)
    client.receive(server.snapshot(1, 0))
    client.receive(server.snapshot(2, 1))
    client.receive(server.snapshot(3, 2))
    # A base of 2 proves the server holds an ack >= 2: ticks 0 and 1 are gone...
    for gone in (0, 1):
        with pytest.raises(DeltaError):
            client.receive(server.snapshot(4, gone))
    assert client.desyncs == 2
    # ...while 2 and 3 are still usable baselines.
    client.receive(server.snapshot(4, 2))
    assert client.world.equals(server.worlds[4])
    client.receive(server.snapshot(4, 3))
    assert client.world.equals(server.worlds[4])


def test_history_is_bounded_without_deltas(server: ServerSide, client: ClientSession) -> None:
    # Only full snapshots (base -1, so no base to prune by): the history still
    # keeps no more than MAX_HISTORY ticks back.
    last = MAX_HISTORY + 20
    server.step(last)
    for tick in range(last + 1):
        client.receive(server.snapshot(tick))
    server.step()
    with pytest.raises(DeltaError):
        client.receive(server.snapshot(last + 1, last - MAX_HISTORY - 1))
    client.receive(server.snapshot(last + 1, last - MAX_HISTORY))
    assert client.world.equals(server.worlds[last + 1])


# --- rejoin and new sessions -------------------------------------------------------


def test_rejoin_resumes_the_session_and_keeps_the_world(server: ServerSide, client: ClientSession) -> None:
    client.receive(server.snapshot(0))
    server.step(4)
    client.receive(server.snapshot(4, 0))
    join = decode(client.rejoin())
    assert join == m.Join(version=m.PROTOCOL_VERSION, name="ann", room=server.room, session="tok_1", ack=4)
    assert client.state is ClientState.AWAIT_WELCOME
    assert client.world.equals(server.worlds[4])
    with pytest.raises(LocalProtocolError):
        client.input()
    # Same session: the server resumes deltas from the acked tick.
    client.receive(server.welcome())
    assert client.state is ClientState.JOINED
    assert client.world.tick == 4
    server.step()
    client.receive(server.snapshot(5, 4))
    assert client.world.equals(server.worlds[5])


def test_seq_continues_across_a_rejoin(server: ServerSide, client: ClientSession) -> None:
    client.input()
    client.input()
    client.rejoin()
    client.receive(server.welcome())
    assert decode(client.input()).seq == 3


def test_welcome_of_another_session_clears_the_world(server: ServerSide, client: ClientSession) -> None:
    client.receive(server.snapshot(0))
    server.step(40)
    client.receive(server.snapshot(40, 0, seq=7, events=[[40, "hit", PLAYER, 1]]))
    client.take_events()
    client.input()
    # The rejoin failed (session expired); a fresh join lands in another room,
    # whose ticks are lower than the old room's.
    client.rejoin()
    other = ServerSide(session="tok_2", room="r-2", tick=10, seed=1)
    client.join(room="r-2", name="ann")
    client.receive(other.welcome())
    assert client.world is None and client.acked_tick == m.NO_TICK
    assert client.last_processed_seq == 0
    with pytest.raises(DeltaError):  # nothing of the old world is a baseline any more
        client.receive(server.snapshot(40, 0))
    client.receive(other.snapshot(10, events=[[10, "spawn", PLAYER]]))
    assert client.world.equals(other.worlds[10])
    # The new room's events are not hidden behind the old room's tick 40.
    assert client.take_events() == [[10, "spawn", PLAYER]]
    # Input seqs count from 1 per session.
    first = decode(client.input())
    assert (first.seq, first.ack) == (1, 10)


def test_older_snapshot_does_not_move_the_world_back(server: ServerSide, client: ClientSession) -> None:
    client.receive(server.snapshot(0))
    server.step(3)
    client.receive(server.snapshot(3, 0, seq=3, events=[[3, "hit", 1, 2]]))
    client.take_events()
    stale = client.receive(server.snapshot(2, 0, seq=2, events=[[2, "hit", 1, 1]]))
    assert stale.tick == 2  # decoded and returned...
    assert client.world.tick == 3  # ...but not applied over the newer world
    assert client.world.equals(server.worlds[3])
    assert client.acked_tick == 3 and client.last_processed_seq == 3
    assert client.take_events() == []
    assert decode(client.input()).ack == 3


# --- other server messages ----------------------------------------------------------


def test_pong_and_error_leave_the_world_alone(server: ServerSide, client: ClientSession) -> None:
    client.receive(server.snapshot(0))
    assert client.receive(encode_pong(m.Pong(id=1, tick=9))) == m.Pong(id=1, tick=9)
    assert client.receive(encode_error(m.Error(code=4001, message="bad"))) == m.Error(code=4001, message="bad")
    assert client.world.equals(server.worlds[0]) and client.state is ClientState.JOINED


@pytest.mark.parametrize("obj", [[1, 2], {"t": "nope"}, 5], ids=["array", "unknown type", "int"])
def test_unknown_server_messages_are_value_errors(obj: Any) -> None:
    with pytest.raises(ValueError):
        ClientSession().receive(msgpack.packb(obj))


def test_rejoin_after_a_desync_asks_for_a_full_snapshot(server: ServerSide, client: ClientSession) -> None:
    client.receive(server.snapshot(0))
    server.step(3)
    with pytest.raises(DeltaError):
        client.receive(server.snapshot(3, 2))
    # The baselines are suspect: the rejoin acks nothing, so the server
    # answers with a full snapshot; the last good world stays readable.
    assert decode(client.rejoin()).ack == m.NO_TICK
    assert client.world.tick == 0
    client.receive(server.welcome())
    # Later rejoins resume deltas again.
    assert decode(client.rejoin()).ack == 0


# --- the deprecated version 1 ----------------------------------------------------


def test_a_version_1_client_speaks_maps_and_reads_map_snapshots() -> None:
    server = ServerSide(version=1)
    client = ClientSession(version=1)
    assert decode(client.join(room=server.room, name="ann")) == m.Join(version=1, name="ann", room=server.room)
    client.receive(server.welcome())
    client.receive(server.snapshot(0))
    server.step()
    client.receive(server.snapshot(1, 0, seq=1))
    assert client.world.equals(server.worlds[1])
    data = client.input(mx=0.5, fire=True)
    assert isinstance(msgpack.unpackb(data), dict)  # a map, not a row
    assert decode(data) == m.Input(seq=1, tick=1, ack=1, data={"mx": 0.5, "my": 0.0, "aim": 0.0, "fire": True})


def test_a_version_2_input_is_a_row_of_the_welcome_layout(server: ServerSide, client: ClientSession) -> None:
    client.receive(server.snapshot(0))
    data = client.input(mx=-0.25, aim=3.0, fire=True)
    assert data[0] == ROW_TAG and len(data) == InputRows(ARENA_INPUTS).row_bytes
    assert decode(data) == m.Input(seq=1, tick=0, ack=0, data={"mx": -0.25, "my": 0.0, "aim": 3.0, "fire": True})
    with pytest.raises(ValueError):  # a row has no place for it
        client.input(jump=True)


def test_a_snapshot_array_of_another_length_is_a_desync(server: ServerSide, client: ClientSession) -> None:
    client.receive(server.snapshot(0))
    with pytest.raises(DeltaError):
        client.receive(msgpack.packb([0, 1, 0, 0, b"", {}, b""]))  # 7 values, no "ev"
    assert client.desyncs == 1 and client.world.tick == 0
