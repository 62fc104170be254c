"""docs/protocol.md against the code.

docs/protocol_examples.py regenerates the page's byte dumps and limits table
from the real codec, validator, snapshot history, arena game and reference
client; every block must appear verbatim in the page. When one fails, run

    python docs/protocol_examples.py --write

check the diff of docs/protocol.md, and fix the prose around the block if
the change is more than bytes (a new field, a new limit, a new rule).
"""

from __future__ import annotations

import importlib.util
import re
import struct
import sys
from pathlib import Path

import msgpack
import pytest

from tickroom.protocol import errors
from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession
from tickroom.protocol.errors import Code

ROOT = Path(__file__).resolve().parents[2]
DOC_PATH = ROOT / "docs" / "protocol.md"
EXAMPLES_PATH = ROOT / "docs" / "protocol_examples.py"


def _load_examples():
    spec = importlib.util.spec_from_file_location("tickroom_docs_protocol_examples", EXAMPLES_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


examples = _load_examples()
DOC = DOC_PATH.read_text(encoding="utf-8")
SCENARIO = examples.build()
BLOCKS = examples.blocks(SCENARIO)
_HEX_LINE = re.compile(r"^[0-9a-f]{4}  ((?:[0-9a-f]{2} )*[0-9a-f]{2})(?:  |$)")


@pytest.mark.parametrize("name", list(BLOCKS))
def test_generated_block_is_in_the_page(name: str) -> None:
    block = examples.render(name, BLOCKS[name])
    assert block in DOC, (
        f"the {name!r} block of docs/protocol.md is out of date with the code; "
        "run `python docs/protocol_examples.py --write` and review the diff"
    )


@pytest.mark.parametrize("name", list(BLOCKS))
def test_generated_block_sits_between_its_markers(name: str) -> None:
    assert examples.marked(name, BLOCKS[name]) in DOC


def test_examples_are_deterministic() -> None:
    assert examples.blocks(examples.build()) == BLOCKS


def _dump_bytes(dump: str) -> bytes:
    """The bytes an annotated dump shows, in order (the hex column only)."""
    out = bytearray()
    for line in dump.splitlines():
        match = _HEX_LINE.match(line)
        if match:
            assert int(line[:4], 16) == len(out), f"offset out of step at: {line!r}"
            out += bytes.fromhex(match.group(1))
    return bytes(out)


@pytest.mark.parametrize("name", ["join", "welcome", "full", "input", "delta", "rejoin"])
def test_dump_shows_every_byte_of_the_message(name: str) -> None:
    assert _dump_bytes(BLOCKS[name]) == getattr(SCENARIO, name)


def test_examples_are_what_the_reference_client_reads() -> None:
    """The dumped messages decode and apply with protocol.ClientSession and
    rebuild exactly the server's worlds."""
    client = ClientSession()
    client.join(room=examples.ROOM, name="bob")
    welcome = client.receive(SCENARIO.welcome)
    assert isinstance(welcome, m.Welcome)
    assert (welcome.player, welcome.session, welcome.tick_rate) == (2, examples.SESSION, examples.TICK_RATE)

    full = client.receive(SCENARIO.full)
    assert isinstance(full, m.Snapshot) and full.base == m.NO_TICK and full.seq == 0
    assert client.world.equals(SCENARIO.worlds[1])
    assert client.take_events() == [[1, "join", 1, "ada"], [1, "join", 2, "bob"]]

    # Version 2's input: the row the welcome's layout describes.
    assert welcome.layout == [["mx", "<f8"], ["my", "<f8"], ["aim", "<f8"], ["fire", "|u1"]]
    assert SCENARIO.input == struct.pack("<BIiidddB", 1, 1, 1, 1, 1.0, 0.0, 0.5, 1)
    assert client.input(mx=1.0, my=0.0, aim=0.5, fire=True) == SCENARIO.input
    assert msgpack.unpackb(SCENARIO.full)[0] == 0 and len(msgpack.unpackb(SCENARIO.delta)) == 8  # positional

    delta = client.receive(SCENARIO.delta)
    assert isinstance(delta, m.Snapshot) and (delta.tick, delta.base, delta.seq) == (2, 1, 1)
    assert client.world.equals(SCENARIO.worlds[2])
    assert client.take_events() == [[2, "leave", 1]]
    assert msgpack.unpackb(SCENARIO.rejoin) == {
        "t": "join", "v": 2, "name": "bob", "room": examples.ROOM, "session": examples.SESSION, "ack": 2
    }  # fmt: skip


def test_every_error_code_is_in_the_table() -> None:
    for code in Code:
        assert f"| {int(code)} | `{code.name}` |" in DOC, f"{code.name} ({int(code)}) is missing from the codes table"


@pytest.mark.parametrize("name", ["RESUME_CODES", "FAILOVER_CODES", "FRESH_CODES"])
def test_the_close_code_sets_are_the_pages(name: str) -> None:
    found = re.search(rf"^- .*\(`{name}`\): ([\d, ]+)$", DOC, re.M)
    assert found, f"docs/protocol.md, section 8, has no line for {name}"
    assert {int(code) for code in found.group(1).split(",")} == getattr(errors, name)


def test_every_message_type_has_a_section() -> None:
    for tag in (m.JOIN, m.INPUT, m.ACK, m.PING, m.LEAVE, m.WELCOME, m.SNAPSHOT, m.PONG, m.ERROR, m.REDIRECT):
        assert re.search(rf"^### \d+\.\d+ `{tag}`$", DOC, re.M), f"no section for message {tag!r}"
