"""Rooms of the same game stepped together: one pass of arithmetic per node.

A small room's step costs what its numpy calls cost (~1-2 us each, whatever
the array size): the arena's apply_inputs and step are ~60 calls for a room
of 10 players. Rooms of a node tick on one grid and the node's TickClock
wakes every room due in one scheduler pass (tickroom.server.rooms.tick_clock), so at
that moment they can be stepped by one call over all their worlds.

Each room stays a trio task that owns its players, its clock, its lifecycle
and its failover; only the game's arithmetic is shared. A room reads its
players' inputs and reaps its gone players on its own task, then parks here
(``await stepper.step(room, batch)``). The stepper task runs in the next
scheduler pass, after every room woken with the first has parked, and for
each game class with more than one room parked calls the class's batched
form (``apply_inputs_together``, ``step_together``, ``view_together``:
tickroom.simulation.game);
a class without it, or a lone room, is called room by room. Each room is
then recorded (its view taken, its world kept for its snapshots: the
room's own code, called here), the deltas its clients will need are
encoded for all the rooms of the game in one pass
(tickroom.protocol.delta_rooms), and each room is resumed to send its
clients their snapshots on its own task.

Faults stay in their room. A batched call is all or nothing (the game's
contract): when it raises, the stepper calls the same rooms one by one, so
the world that makes the game raise fails alone; a room's own failure
(its game's handle_messages, apply_inputs or step raising) is thrown into
that room's task, which crashes through its own fence (4103 ROOM_CRASHED)
while the other rooms of the batch go on untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import outcome
import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from tickroom.protocol.delta import WorldState
from tickroom.protocol.delta_rooms import encode_room_deltas
from tickroom.protocol.input_rows import DecodedRows, InputRows
from tickroom.protocol.schema import Schema
from tickroom.server.rooms.input_rows_batch import GatheredRows
from tickroom.simulation.game import Game, InputBatch, View

log = logging.getLogger(__name__)

_NO_INPUTS = InputBatch(players=np.zeros(0, dtype=np.int64), fields={})  # until begin_tick makes the batch

Events = list[list[Any]]


class SteppedRoom(Protocol):
    """What the stepper needs of a room (tickroom.server.rooms.room.Room)."""

    game: Game
    schema: Schema

    @property
    def input_rows(self) -> InputRows:
        """Its game's input row layout."""

    def begin_tick(self, gathered: GatheredRows, decoded: DecodedRows | None) -> InputBatch:
        """The tick's input batch from the rows it read and their decode,
        then its gone players reaped, as the room does alone."""

    def take_messages(self) -> None:
        """Hand the tick's game messages to the game (after its inputs,
        before its step), as the room does when it steps alone."""

    def close_tick(self, batch: InputBatch, events: Events) -> bool:
        """After the step: the game's history, the observer, the game's
        requests. False when the room has no snapshot to send this tick."""

    def record_view(self, view: View) -> None:
        """Record the tick's view (the game's) for its snapshots."""

    def deltas_wanted(self) -> list[tuple[int, WorldState, WorldState]]:
        """The shared deltas its clients will need this tick, not encoded
        yet: (base tick, current world, baseline world)."""

    def prime_delta(self, base: int, fields: dict) -> None:
        """The delta against ``base``, encoded with the other rooms'."""


@dataclass(eq=False)
class _Parked:
    room: SteppedRoom
    gathered: GatheredRows
    task: Task
    players: int
    batch: InputBatch = field(default_factory=lambda: _NO_INPUTS)  # made by begin_tick
    decoded: DecodedRows | None = None  # its rows' decode, for begin_tick
    failure: BaseException | None = None
    events: Events = field(default_factory=list)
    read_s: float = 0.0  # its share of the node-wide decode, and its batch made, CPU seconds
    step_s: float = 0.0  # its share of the batched inputs and step
    snapshot_s: float = 0.0  # its tick recorded, and its share of the batched delta encode
    viewed: bool = False  # its tick has a view to record (the game did not end its match)
    view: View | None = None  # its view, taken by the game's view_together


@dataclass
class StepCounters:
    """What the stepper did since the node started (metrics, tests)."""

    passes: int = 0  # stepper passes that stepped at least one room
    rooms_together: int = 0  # room steps done by a batched call
    rooms_alone: int = 0  # room steps done one by one
    batch_failures: int = 0  # batched calls that raised (their rooms then stepped alone)
    largest_batch: int = 0
    deltas_together: int = 0  # deltas encoded in the stepper's pass for all rooms
    encode_failures: int = 0  # passes whose encode raised (each room then encoded its own)


class StepBatcher:
    """The node's stepper. ``run()`` must be running, in a nursery that
    outlives the rooms that park here."""

    def __init__(self) -> None:
        self._parked: list[_Parked] = []
        self._task: Task | None = None
        self._idle = False  # the stepper task waits to be rescheduled
        self.counters = StepCounters()

    async def step(self, room: SteppedRoom, gathered: GatheredRows, players: int) -> tuple[float, float, float]:
        """Decode the input rows ``room`` read (``gathered``), make its
        batch, reap its gone players, apply the batch to its game, hand it
        its messages, step it, record its tick and encode the deltas its
        clients need, together with the other rooms parked in this scheduler
        pass; the room then only sends. Returns this room's CPU seconds
        spent here: its share of the read (the decode), of the step
        (inputs, messages, step) and of the snapshot (its tick recorded, its
        deltas encoded). Raises what the room's game raised. Cancellable
        while parked (the room's tick then never happens)."""
        parked = _Parked(room, gathered, current_task(), players)
        self._parked.append(parked)
        if self._idle and self._task is not None:
            self._idle = False
            reschedule(self._task)

        def abort(_raise_cancel: Callable[[], Any]) -> Abort:
            try:
                self._parked.remove(parked)
            except ValueError:  # already taken by the stepper: it will reschedule us
                return Abort.FAILED
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)
        return parked.read_s, parked.step_s, parked.snapshot_s

    async def run(self) -> None:
        """Step whatever parked, once per scheduler pass, until cancelled."""
        self._task = current_task()
        while True:
            if not self._parked:
                self._idle = True
                await wait_task_rescheduled(self._abort_wait)
            else:
                # Run after every room woken in the same pass as the first one
                # has parked: they were all rescheduled together.
                await trio.lowlevel.cancel_shielded_checkpoint()
            parked, self._parked = self._parked, []
            if parked:
                self._step_all(parked)

    def _abort_wait(self, _raise_cancel: Callable[[], Any]) -> Abort:
        self._idle = False
        return Abort.SUCCEEDED

    def _step_all(self, parked: list[_Parked]) -> None:
        self.counters.passes += 1
        by_class: dict[type, list[_Parked]] = {}
        for entry in parked:
            by_class.setdefault(type(entry.room.game), []).append(entry)
        try:
            for cls, group in by_class.items():
                try:
                    self._tick_group(cls, group)
                except Exception as exc:
                    # The stepper's own fence: a fault outside the guarded
                    # calls (a bug here) fails this group's rooms, whose
                    # state is no longer trusted (4103), not the node.
                    log.exception("stepper: the rooms of %s failed together", cls.__name__)
                    for entry in group:
                        if entry.failure is None:
                            entry.failure = exc
        finally:
            # Whatever happened, every parked room is resumed: none waits forever.
            for entry in parked:
                if entry.failure is not None:
                    reschedule(entry.task, outcome.Error(entry.failure))
                else:
                    reschedule(entry.task, outcome.Value(None))

    def _tick_group(self, cls: type, group: list[_Parked]) -> None:
        """One game class's rooms, from their rows to their deltas."""
        clock = time.perf_counter
        began = clock()
        self._begin_ticks(group)
        _share(group, clock() - began, "read_s")
        began = clock()
        self._step_group(cls, [entry for entry in group if entry.failure is None])
        _share(group, clock() - began, "step_s")
        for entry in group:
            if entry.failure is None:
                began = clock()
                _guarded(entry, lambda e: setattr(e, "viewed", e.room.close_tick(e.batch, e.events)))
                entry.snapshot_s += clock() - began
        began = clock()
        self._record_views(cls, [entry for entry in group if entry.failure is None and entry.viewed])
        _share(group, clock() - began, "snapshot_s")
        began = clock()
        self._encode_deltas([entry for entry in group if entry.failure is None])
        _share(group, clock() - began, "snapshot_s")

    def _begin_ticks(self, group: list[_Parked]) -> None:
        """Every room's input rows decoded and validated in one pass
        (version 2's rows: a node's hundreds of rows cost a fixed handful
        of numpy calls, tickroom.protocol.input_rows), cut back into each
        room's batch; then each room reaps its gone players. Should the
        joint decode fail, each room decodes its own rows."""
        rows = [row for entry in group for row in entry.gathered.rows]
        decoded = None
        if rows and len(group) > 1:
            try:
                decoded = group[0].room.input_rows.decode(rows)
            except Exception:
                self.counters.batch_failures += 1
        at = 0
        for entry in group:
            count = len(entry.gathered.rows)
            mine: DecodedRows | None = None
            if decoded is not None:
                mine = decoded.cut(at, at + count)
            elif count:
                try:
                    mine = entry.room.input_rows.decode(entry.gathered.rows)
                except Exception as exc:
                    entry.failure = exc
                    continue
            at += count
            entry.decoded = mine
            _guarded(entry, _begin_tick)

    def _record_views(self, cls: type, group: list[_Parked]) -> None:
        """Each room's view recorded: the game class's ``view_together``
        for all of them when it has one (all or nothing, as the other
        batched forms), else view() game by game."""
        view_together = getattr(cls, "view_together", None) if len(group) > 1 else None
        if view_together is not None:
            try:
                views = view_together([entry.room.game for entry in group])
            except Exception:
                self.counters.batch_failures += 1
            else:
                for entry, view in zip(group, views, strict=True):
                    entry.view = view
                    _guarded(entry, _record_its_view)
                return
        for entry in group:
            _guarded(entry, lambda e: e.room.record_view(e.room.game.view()))

    def _encode_deltas(self, group: list[_Parked]) -> None:
        """The deltas every room of the group (one game, one schema) needs
        this tick, in one pass (tickroom.protocol.delta_rooms). A failure
        here primes nothing: each room then encodes its own deltas when it
        sends, and a world that makes the encoder fail fails in its room."""
        wanted = [(entry.room, base, pair) for entry in group for base, *pair in entry.room.deltas_wanted()]
        if len(wanted) < 2:
            return
        try:
            encoded = encode_room_deltas(
                [(current, baseline) for _, _, (current, baseline) in wanted], group[0].room.schema
            )
        except Exception:
            self.counters.encode_failures += 1
            if self.counters.encode_failures == 1:  # once: it would repeat every tick (the counter is a metric)
                log.exception("stepper: the rooms' deltas could not be encoded together; each room encodes its own")
            return
        for (room, base, _), fields in zip(wanted, encoded, strict=True):
            room.prime_delta(base, fields)
        self.counters.deltas_together += len(wanted)

    def _step_group(self, cls: type, group: list[_Parked]) -> None:
        together = len(group) > 1
        apply_together = getattr(cls, "apply_inputs_together", None) if together else None
        if apply_together is None or not self._together(
            group, lambda ok: apply_together([e.room.game for e in ok], [e.batch for e in ok])
        ):
            for entry in group:
                _guarded(entry, lambda e: e.room.game.apply_inputs(e.batch))
        for entry in group:
            if entry.failure is None:
                _guarded(entry, lambda e: e.room.take_messages())
        ok = [entry for entry in group if entry.failure is None]
        step_together = getattr(cls, "step_together", None) if len(ok) > 1 else None
        if step_together is not None:

            def step_ok(rooms: list[_Parked]) -> None:
                for entry, events in zip(rooms, step_together([e.room.game for e in rooms]), strict=True):
                    entry.events = events

            if self._together(ok, step_ok):
                self.counters.rooms_together += len(ok)
                self.counters.largest_batch = max(self.counters.largest_batch, len(ok))
                return
        for entry in ok:
            _guarded(entry, _step_alone)
        self.counters.rooms_alone += len(ok)

    def _together(self, group: Sequence[_Parked], call: Callable[[list[_Parked]], Any]) -> bool:
        """One batched call over the rooms of ``group`` without a failure;
        False when it raised (the game promises it then changed nothing:
        the caller goes room by room, and the faulty world fails alone)."""
        ok = [entry for entry in group if entry.failure is None]
        try:
            call(ok)
        except Exception:
            self.counters.batch_failures += 1
            return False
        return True


def _share(group: list[_Parked], seconds: float, phase: str) -> None:
    """Add a batched call's time to its rooms, in proportion to their players."""
    players = sum(entry.players or 1 for entry in group)
    for entry in group:
        setattr(entry, phase, getattr(entry, phase) + seconds * (entry.players or 1) / players)


def _begin_tick(entry: _Parked) -> None:
    entry.batch = entry.room.begin_tick(entry.gathered, entry.decoded)
    entry.decoded = None


def _record_its_view(entry: _Parked) -> None:
    assert entry.view is not None
    entry.room.record_view(entry.view)
    entry.view = None


def _step_alone(entry: _Parked) -> None:
    entry.events = entry.room.game.step()


def _guarded(entry: _Parked, call: Callable[[_Parked], Any]) -> None:
    """``call(entry)``; an exception becomes the room's failure, thrown into
    its task when it is resumed."""
    try:
        call(entry)
    except Exception as exc:
        entry.failure = exc
