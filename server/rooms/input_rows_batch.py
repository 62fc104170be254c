"""A tick's inputs from all of a room's players, read, decoded, validated and
batched as arrays (protocol version 2's input rows,
tickroom.protocol.input_rows).

Per tick the room reads each player's link once. Acks (``ack`` messages)
are recorded at once; inputs, version 2's rows as they came and version 1's
validated messages packed into the same layout, are collected with the index
of their player, then decoded and validated in one batch. The per-player
rules are those of version 1, applied on the arrays:

- an input's ``ack`` is recorded when it is newer than the player's and not
  newer than the room's tick (a refused input's is not);
- inputs at or below the player's newest applied seq are stale, repeated
  seqs are duplicates (the first that arrived is kept); both are dropped;
- at most ``max_per_tick`` per player are applied, the newest;
- the batch's rows are grouped by player in ascending player id, in seq
  order within a player (deterministic: failover replays them).

A refused row is answered on its own link (a strike, fatal past the limit:
``ClientLink.refuse``); the others are untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from tickroom.protocol import messages as m
from tickroom.protocol.game_messages import GameMessage
from tickroom.protocol.input_rows import DecodedRows, InputRows
from tickroom.protocol.validate import InputFields
from tickroom.server.rooms.link import ClientLink
from tickroom.server.rooms.players import Player
from tickroom.simulation.game import InputBatch


@dataclass
class InputCounters:
    applied: int = 0
    stale: int = 0  # duplicate or older than the newest applied seq
    over_limit: int = 0  # beyond max_per_tick


@dataclass(slots=True)
class GatheredRows:
    """A tick's input rows as read from a room's links, not decoded yet."""

    rows: list[bytes]
    slots: list[int]  # per row: its player's index in ``owners``
    owners: list[tuple[Player, ClientLink]]
    simple: bool  # one row per player, players in ascending id


class RowBatcher:
    """Owned by one room; reuses its empty batch, the common idle case."""

    def __init__(
        self,
        fields: InputFields,
        max_per_tick: int,
        post_message: Callable[[Player, GameMessage], None] | None = None,
    ) -> None:
        self.rows = InputRows(fields)
        # Where a player's game messages go (the room's queue for its game);
        # without one (tests of inputs alone) they are dropped.
        self.post_message = post_message
        self.max_per_tick = max_per_tick
        self.counters = InputCounters()
        self._empty = InputBatch.empty(fields.fields)

    def collect(self, connected: Iterable[tuple[Player, ClientLink]], tick: int) -> InputBatch:
        """Read each link once and turn what came into the tick's batch.
        ``tick``: the room's newest tick (acks beyond it are ignored)."""
        gathered = self.gather(connected, tick)
        if not gathered.rows:
            return self._empty
        return self.finish(gathered, self.rows.decode(gathered.rows), tick)

    def gather(self, connected: Iterable[tuple[Player, ClientLink]], tick: int) -> GatheredRows:
        """Read each link once: acks recorded, game messages posted, input
        rows collected (not decoded yet: ``finish`` takes their decode, which
        the node's stepper does for all its rooms at once)."""
        rows: list[bytes] = []
        slots: list[int] = []  # per row: its player's index in ``owners``
        owners: list[tuple[Player, ClientLink]] = []
        encode_input = self.rows.encode_input
        simple = True  # one row per player, players in ascending id: the usual tick
        last_id = -1
        for player, link in connected:
            items = link.take_inputs()
            if not items:
                continue
            slot = len(owners)
            owners.append((player, link))
            before = len(rows)
            for item in items:
                kind = type(item)
                if kind is bytes:
                    rows.append(item)  # type: ignore[arg-type]
                elif kind is m.Input:
                    rows.append(encode_input(item))  # type: ignore[arg-type]
                elif kind is GameMessage:
                    if self.post_message is not None:
                        self.post_message(player, item)  # type: ignore[arg-type]
                    continue
                else:  # an Ack
                    ack = item.tick  # type: ignore[union-attr]
                    if player.acked < ack <= tick:
                        player.acked = ack
                    continue
                slots.append(slot)
            if len(rows) - before != 1 or player.id <= last_id:
                simple = False
            last_id = player.id
        return GatheredRows(rows, slots, owners, simple)

    def finish(self, gathered: GatheredRows, decoded: DecodedRows | None, tick: int) -> InputBatch:
        """The tick's batch from the gathered rows and their ``decoded``
        (``rows.decode(gathered.rows)``, alone or cut from a node-wide
        decode; None when no row came)."""
        if not gathered.rows or decoded is None:
            return self._empty
        if gathered.simple and not decoded.refusals:
            batch = self._simple(decoded, gathered.owners, tick)
            if batch is not None:
                return batch
        return self._batch(decoded, np.asarray(gathered.slots, dtype=np.intp), gathered.owners, tick)

    def _simple(self, decoded: DecodedRows, owners: list[tuple[Player, ClientLink]], tick: int) -> InputBatch | None:
        """The usual tick: one valid row per player, in player id order. If
        every row is also new (seq above the player's), the batch is the
        decoded columns as they are; else None (and nothing changed)."""
        seqs = decoded.seq.tolist()
        for (player, _), seq in zip(owners, seqs, strict=True):
            if seq <= player.last_seq:
                return None
        for (player, _), seq, ack in zip(owners, seqs, decoded.ack.tolist(), strict=True):
            player.last_seq = seq
            if player.acked < ack <= tick:
                player.acked = ack
        self.counters.applied += len(seqs)
        ids = np.fromiter((player.id for player, _ in owners), dtype=np.int64, count=len(owners))
        return InputBatch(players=ids, fields=decoded.fields, seqs=decoded.seq, ticks=decoded.tick)

    def _batch(
        self, decoded: DecodedRows, slots: np.ndarray, owners: list[tuple[Player, ClientLink]], tick: int
    ) -> InputBatch:
        """Any tick: refusals, several rows per player, stale and repeated
        seqs, players in any order."""
        for index, refusal in decoded.refusals.items():
            owners[slots[index]][1].refuse(refusal)
        ok, seq = decoded.ok, decoded.seq
        players = [player for player, _ in owners]

        # Acks: the newest eligible one per player.
        eligible = ok & (decoded.ack <= tick)
        if eligible.any():
            newest = np.full(len(owners), m.NO_TICK, dtype=np.int64)
            np.maximum.at(newest, slots[eligible], decoded.ack[eligible])
            for player, ack in zip(players, newest.tolist(), strict=True):
                if player.acked < ack:
                    player.acked = ack

        # Stale, duplicate and surplus inputs; the rest in (player id, seq) order.
        last_seq = np.fromiter((p.last_seq for p in players), dtype=np.int64, count=len(players))
        ids = np.fromiter((p.id for p in players), dtype=np.int64, count=len(players))
        candidates = np.flatnonzero(ok & (seq > last_seq[slots]))
        order = candidates[np.lexsort((seq[candidates], ids[slots[candidates]]))]  # stable: first arrival first
        row_ids, row_seqs = ids[slots[order]], seq[order]
        if len(order) > 1:
            repeat = np.zeros(len(order), dtype=bool)
            repeat[1:] = (row_ids[1:] == row_ids[:-1]) & (row_seqs[1:] == row_seqs[:-1])
            if repeat.any():
                order, row_ids, row_seqs = order[~repeat], row_ids[~repeat], row_seqs[~repeat]
        counters = self.counters
        counters.stale += int(ok.sum()) - len(order)
        if len(order) > self.max_per_tick:
            # Rows after this one of the same player (row_ids is sorted).
            behind = np.searchsorted(row_ids, row_ids, side="right") - 1 - np.arange(len(order))
            keep = behind < self.max_per_tick
            if not keep.all():
                counters.over_limit += int((~keep).sum())
                order, row_ids, row_seqs = order[keep], row_ids[keep], row_seqs[keep]
        if not len(order):
            return self._empty
        # The newest applied seq per player: the last row of each group.
        last = np.ones(len(order), dtype=bool)
        last[:-1] = row_ids[1:] != row_ids[:-1]
        for slot, newest_seq in zip(slots[order[last]].tolist(), row_seqs[last].tolist(), strict=True):
            players[slot].last_seq = newest_seq
        counters.applied += len(order)
        return InputBatch(
            players=row_ids,
            fields={name: col[order] for name, col in decoded.fields.items()},
            seqs=row_seqs,
            ticks=decoded.tick[order],
        )
