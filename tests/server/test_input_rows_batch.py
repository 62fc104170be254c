"""The room's batched input path (tickroom.server.rooms.input_rows_batch)
against the per-message one it replaces (tests/server/reference_input_batch.py
after the room's per-message ack rule): the same batch, seqs, acks and
counters for the same inputs, and a refused row answered on its own link
only."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickroom.protocol import messages as m
from tickroom.protocol.errors import Code, RemoteProtocolError
from tickroom.protocol.input_rows import InputRows
from tickroom.protocol.validate import InputFields
from tickroom.server.rooms.input_rows_batch import RowBatcher
from tickroom.server.rooms.players import Player

from .reference_input_batch import InputBatcher

FIELDS = InputFields({"mx": ("float", -1.0, 1.0), "level": ("int", 0, 9), "fire": ("bool",)})
ROWS = InputRows(FIELDS)
TICK = 50
MAX_PER_TICK = 3


class Link:
    """What the batcher reads from one client, and what it refused."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.refused: list[RemoteProtocolError] = []

    def take_inputs(self) -> list[Any]:
        items, self.items = self.items, []
        return items

    def refuse(self, refusal: RemoteProtocolError) -> None:
        self.refused.append(refusal)


inputs = st.tuples(
    st.integers(0, 12),  # seq: 0 is refused
    st.integers(-1, TICK + 2),  # ack: beyond TICK is ignored
    st.floats(-1.5, 1.5),  # mx: beyond 1 is refused
    st.integers(0, 9),
    st.booleans(),
    st.booleans(),  # sent as a version 1 message (validated by the connection) rather than a row
)
players_inputs = st.lists(
    st.tuples(
        st.integers(0, 6),
        st.integers(-1, TICK),
        st.one_of(st.lists(inputs, min_size=1, max_size=1), st.lists(inputs, max_size=8)),
        st.booleans(),
    ),
    min_size=1,
    max_size=5,
)


def valid(seq: int, mx: float) -> bool:
    return seq >= 1 and -1.0 <= mx <= 1.0


@given(players_inputs, st.booleans())
@settings(max_examples=400, deadline=None)
def test_rows_batch_as_the_per_message_path_did(table, ascending) -> None:
    """Both the usual tick's shortcut (one row per player, in id order) and
    the general path."""
    old_players, new_players, links = [], [], []
    received: dict[int, list[m.Input]] = {}  # the per-message path's inputs, by player id
    for k, (last_seq, acked, sent, with_ack_message) in enumerate(table):
        pid = k + 1 if ascending else 10 - k  # not id order: the batch sorts by id
        old = Player(id=pid, name="p", session=f"s{k}", last_seq=last_seq, acked=acked)
        new = Player(id=pid, name="p", session=f"s{k}", last_seq=last_seq, acked=acked)
        items: list[Any] = []
        for seq, ack, mx, level, fire, as_v1 in sent:
            data = {"mx": mx, "level": level, "fire": fire}
            if not valid(seq, mx):
                items.append(ROWS.encoder.encode(seq, 0, ack, data))  # the room refuses it
                continue
            # What the room did per message: the ack first, then the input queued.
            if old.acked < ack <= TICK:
                old.acked = ack
            msg = m.Input(seq=seq, tick=0, ack=ack, data=data)
            received.setdefault(pid, []).append(msg)
            items.append(msg if as_v1 else ROWS.encoder.encode(seq, 0, ack, data))
        if with_ack_message:
            items.append(m.Ack(tick=TICK - 1))
            if old.acked < TICK - 1:
                old.acked = TICK - 1
        old_players.append(old)
        new_players.append(new)
        links.append(Link(items))

    old_batcher = InputBatcher(FIELDS, MAX_PER_TICK)
    expected = old_batcher.batch(
        sorted(((p, received[p.id]) for p in old_players if p.id in received), key=lambda r: r[0].id)
    )
    new_batcher = RowBatcher(FIELDS, MAX_PER_TICK)
    got = new_batcher.collect(list(zip(new_players, links, strict=True)), TICK)

    assert got.players.tolist() == expected.players.tolist()
    for name, column in expected.fields.items():
        assert got.fields[name].dtype == column.dtype
        assert got.fields[name].tolist() == column.tolist()
    assert [(p.last_seq, p.acked) for p in new_players] == [(p.last_seq, p.acked) for p in old_players]
    assert new_batcher.counters == old_batcher.counters
    for (_, _, sent, _), link in zip(table, links, strict=True):
        refused = sum(1 for seq, _, mx, *_ in sent if not valid(seq, mx))
        assert len(link.refused) == refused
        assert {r.code for r in link.refused} <= {Code.INVALID_MESSAGE}


def test_nothing_received_is_the_shared_empty_batch() -> None:
    batcher = RowBatcher(FIELDS, MAX_PER_TICK)
    player = Player(id=1, name="p", session="s")
    first = batcher.collect([(player, Link([]))], TICK)
    assert len(first) == 0 and batcher.collect([(player, Link([m.Ack(tick=3)]))], TICK) is first
    assert player.acked == 3
    assert set(first.fields) == {"mx", "level", "fire"} and first.fields["level"].dtype == np.int64
