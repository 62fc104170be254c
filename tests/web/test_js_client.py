"""tickroom.js's protocol logic, in node over a fake WebSocket: acks
(piggy-backed, or alone when idle), input numbering, event de-duplication,
baseline pruning, rejoin after a drop with the session and "ack", rejoin
without "ack" after a desync, a fresh join after 4110. The messages are the
real server encoders' bytes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tickroom.protocol import envelope
from tickroom.protocol import messages as m
from tickroom.protocol.codec import encode_error, encode_welcome
from tickroom.protocol.delta import WorldState, encode_delta
from tickroom.protocol.input_rows import InputRows, row_layout
from tickroom.protocol.schema import Schema
from tickroom.protocol.validate import InputFields
from tickroom.simulation.games.arena import Arena

SCRIPT = Path(__file__).resolve().parent / "drive_client.mjs"
PLAYER = 7
SESSION = "session-token-0123456789"


def world(tick: int, schema: Schema) -> WorldState:
    """The player walking right, one 1/32 step a tick."""
    comps = {
        "kind": np.array([0], "u1"), "pos": np.array([[100 + tick, 50]], "<i2"), "aim": np.array([0], "i1"),
        "hp": np.array([100], "u1"), "score": np.array([0], "<i2"), "owner": np.array([PLAYER], "<u4"),
        "vel": np.zeros((1, 2), "<i2"), "t0": np.array([0], "<u4"),
    }  # fmt: skip
    return WorldState.from_view(tick, [PLAYER], comps, schema)


def test_client_protocol_logic(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required for the browser client tests (apt-get install nodejs)")
    schema = Schema.from_description(Arena.components)
    welcome = m.Welcome(
        version=2, room="lobby", game="arena", player=PLAYER, session=SESSION, tick_rate=20, tick=0,
        schema=schema.describe(), inputs={k: list(v) for k, v in Arena.input_fields.items()}, players=[[PLAYER, "ada"]],
        options={"size": 60.0, "max_projectiles": 1024, "collision": "auto"},
        layout=row_layout(InputFields(Arena.input_fields)),
    )  # fmt: skip
    (tmp_path / "welcome.msgpack").write_bytes(encode_welcome(welcome))
    steps: list[dict] = [{"open": True}, {"recv": "welcome.msgpack"}]

    def snap(tick: int, base: int, events: list, seq: int = 0, baseline_tick: int | None = None) -> None:
        baseline = None if base == -1 else world(base if baseline_tick is None else baseline_tick, schema)
        fields = encode_delta(world(tick, schema), baseline, schema)
        name = f"snap-{len(steps)}.msgpack"
        (tmp_path / name).write_bytes(
            envelope.encode(m.Snapshot(tick=tick, base=base, seq=seq, fields=fields, events=events))
        )
        steps.append({"recv": name})

    snap(1, -1, [[1, "join", PLAYER, "ada"]])  # idle: acked alone
    steps.append({"input": {"mx": 1, "my": 0, "aim": 0.5, "fire": False}})  # seq 1, ack 1
    snap(2, -1, [[2, "hit", 9, PLAYER, 25]])  # an input went out since: no lone ack
    snap(3, 1, [[2, "hit", 9, PLAYER, 25], [3, "kill", 9, PLAYER]], seq=1)  # overlapping events
    snap(5, 3, [[4, "respawn", PLAYER], [5, "x"]], seq=1)  # tick 4 skipped
    for tick in range(6, 80):
        snap(tick, tick - 1, [], seq=1)
    history_checked = len(steps) - 1
    steps.append({"close": 1006})  # a drop: rejoin with the session
    steps.append({"wait": 20})
    steps.append({"open": True})
    steps.append({"recv": "welcome.msgpack"})
    steps.append({"input": {"mx": 0, "my": 0, "aim": 0, "fire": False}})  # seq 2: numbering carries on
    snap(81, 50, [], seq=2, baseline_tick=50)  # a base it no longer holds: desync
    steps.append({"open": True})
    (tmp_path / "unknown.msgpack").write_bytes(encode_error(m.Error(code=4110, message="session unknown")))
    steps.append({"recv": "unknown.msgpack"})
    steps.append({"close": 4110})  # the session is gone: join afresh
    steps.append({"wait": 20})
    steps.append({"open": True})
    (tmp_path / "steps.json").write_text(json.dumps(steps))

    subprocess.run([node, str(SCRIPT), str(tmp_path)], check=True, timeout=30)
    out = json.loads((tmp_path / "driven.json").read_text())
    first, rejoin, after_desync, fresh = out["sockets"]

    sent = first["sent"]
    assert sent[0] == {"t": "join", "v": 2, "name": "ada", "room": "lobby"}
    kinds = [msg["t"] for msg in sent]
    assert kinds[1] == "ping"  # at the welcome, for the round-trip time
    assert sent[2] == {"t": "ack", "tick": 1}
    # Version 2's input: the row of the welcome's layout, byte for byte as the Python client packs it.
    row = InputRows(InputFields(Arena.input_fields)).encoder.encode(
        1, 1, 1, {"mx": 1, "my": 0, "aim": 0.5, "fire": False}
    )
    assert sent[3] == {"t": "input", "seq": 1, "tick": 1, "ack": 1, "row": list(row)}
    acks = [msg["tick"] for msg in sent if msg["t"] == "ack"]
    assert acks == [1] + [3, 5] + list(range(6, 80))  # not 2: the input carried tick 1's, and 2 came after it
    # Events once each, in order, despite overlapping deltas.
    assert [ev[:2] for ev in out["events"]] == [[1, "join"], [2, "hit"], [3, "kill"], [4, "respawn"], [5, "x"]]
    # The room's options, from the welcome ({} before it).
    assert out["log"][0]["options"] == {} and out["log"][1]["options"]["size"] == 60.0
    # Baselines: everything from the newest base on, nothing older.
    assert out["log"][history_checked]["history"] == [78, 79]

    assert rejoin["sent"][0] == {"t": "join", "v": 2, "room": "lobby", "session": SESSION, "ack": 79, "name": "ada"}
    rejoin_input = next(msg for msg in rejoin["sent"] if msg["t"] == "input")
    assert rejoin_input["seq"] == 2 and rejoin_input["ack"] == 79
    assert rejoin["closedWith"]["code"] == 1000  # closed by the client on the desync
    assert after_desync["sent"][0] == {"t": "join", "v": 2, "room": "lobby", "session": SESSION, "name": "ada"}
    assert fresh["sent"][0] == {"t": "join", "v": 2, "name": "ada", "room": "lobby"}
