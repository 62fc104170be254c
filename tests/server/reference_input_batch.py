"""The per-message input batching that protocol version 2's RowBatcher
(tickroom.server.rooms.input_rows_batch) replaced, kept as the reference its
property test holds it to (tests/server/test_input_rows_batch.py).

Per player: drop inputs at or below the newest applied seq (stale) and
repeated seqs (duplicates), keep the rest in seq order, at most
``max_per_tick`` of them (the newest), and lay them out in columns, rows
grouped by player in the order the players are given (the room passes them
by ascending id, the game's cheapest case).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from tickroom.protocol import messages as m
from tickroom.protocol.validate import InputFields
from tickroom.server.rooms.input_rows_batch import InputCounters
from tickroom.server.rooms.players import Player
from tickroom.simulation.game import InputBatch

_DTYPES = {"float": np.float64, "int": np.int64, "bool": np.bool_}


class InputBatcher:
    """Owned by one room; reuses its empty batch, the common idle case."""

    def __init__(self, fields: InputFields, max_per_tick: int) -> None:
        self.fields = fields
        self.max_per_tick = max_per_tick
        self.counters = InputCounters()
        self._empty = InputBatch.empty(fields.fields)
        self._dtypes = tuple((name, _DTYPES[spec[0]]) for name, spec in fields.fields.items())

    def batch(self, received: Iterable[tuple[Player, list[m.Input]]]) -> InputBatch:
        """Each player's inputs received since the last tick, in one batch
        (``received`` in ascending player id, as the room passed them)."""
        rows: list[int] = []
        data: list[Mapping[str, object]] = []  # each applied input's validated fields, row by row
        seqs: list[int] = []  # each row's seq and client tick (InputBatch.seqs / ticks)
        ticks: list[int] = []
        counters = self.counters
        for player, pending in received:
            if len(pending) == 1 and pending[0].seq > player.last_seq:
                # The usual case: one new input since the last tick.
                msg = pending[0]
                player.last_seq = msg.seq
                rows.append(player.id)
                data.append(msg.data)
                seqs.append(msg.seq)
                ticks.append(msg.tick)
                continue
            ordered = sorted((i for i in pending if i.seq > player.last_seq), key=lambda i: i.seq)
            fresh = [i for k, i in enumerate(ordered) if k == 0 or i.seq != ordered[k - 1].seq]
            counters.stale += len(pending) - len(fresh)
            if len(fresh) > self.max_per_tick:
                counters.over_limit += len(fresh) - self.max_per_tick
                fresh = fresh[-self.max_per_tick :]
            if fresh:
                player.last_seq = fresh[-1].seq
                for msg in fresh:
                    rows.append(player.id)
                    data.append(msg.data)
                    seqs.append(msg.seq)
                    ticks.append(msg.tick)
        if not rows:
            return self._empty
        counters.applied += len(rows)
        # One list per column, straight into numpy: no per-value appends.
        return InputBatch(
            players=np.array(rows, dtype=np.int64),
            fields={name: np.array([d[name] for d in data], dtype=dtype) for name, dtype in self._dtypes},
            seqs=np.array(seqs, dtype=np.int64),
            ticks=np.array(ticks, dtype=np.int64),
        )
