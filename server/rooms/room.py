"""A room: one trio task that owns one game world and ticks it.

Only the room task touches its game. Its players' inputs reach it one way:
the tick reads each player's link once (tickroom.server.rooms.link.ClientLink
``take_inputs``; for a real connection, one non-blocking read of its socket)
and gets the validated inputs and acks; no task wakes per message
(docs/benchmarks.md). Joins and closes come through the control channel (nakama's match_handler
pattern): join requests carrying a one-slot reply channel, and close
requests; when full, the request is refused; the room lives.

The tick (``_tick``): read inputs -> reap gone players -> apply inputs ->
hand the game its messages -> step -> record the game's world history (lag
compensation, for a game that asks: tickroom.server.rooms.world_history) ->
carry out the game's requests -> record the snapshot -> send each client its
delta (tickroom.server.rooms.broadcast). On a node, the room reads its
sockets, then parks: the node's stepper (tickroom.server.rooms.step_batch)
does everything from decoding the rows to encoding the deltas for all the
rooms due at the same moment at once (calling the room's own methods for
its parts), and the room sends on its own task. Joins are seated
(admitted, welcomed) by tickroom.server.rooms.seating. The game's optional
hooks (drop, rejoin, end, signal) and its requests (end the match, kick, labels) are in
tickroom.server.rooms.game_hooks and tickroom.simulation.room_requests, carried
out by tickroom.server.rooms.game_requests; signals travel through
tickroom.server.rooms.room_signals; the room's value types (config, join
answers, statistics) are in tickroom.server.rooms.room_types. Ticks run on
trio's clock at ``start + n * dt``, with ``start`` on the node-wide grid of
multiples of dt, so MockClock can run thousands of them instantly; a late tick
is counted as an overrun and the loop runs the missed ticks back to back, up
to ``max_catchup_ticks``, then resynchronises.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from tickroom.protocol import messages as m
from tickroom.protocol.delta import WorldState
from tickroom.protocol.errors import Code
from tickroom.protocol.game_messages import DEFAULT_MESSAGE_RATE, GameMessage, MessageTypes
from tickroom.protocol.input_rows import DecodedRows, InputRows
from tickroom.protocol.schema import Schema
from tickroom.protocol.validate import InputFields
from tickroom.server.rooms.broadcast import SnapshotGate as SnapshotGate
from tickroom.server.rooms.broadcast import broadcast
from tickroom.server.rooms.game_hooks import END_REASONS, GameHooks
from tickroom.server.rooms.game_mail import MAX_QUEUED, MailCounters
from tickroom.server.rooms.game_mail import collect as collect_mail
from tickroom.server.rooms.game_requests import carry_out, kick_player
from tickroom.server.rooms.input_rows_batch import GatheredRows, RowBatcher
from tickroom.server.rooms.link import ClientLink
from tickroom.server.rooms.players import Player, PlayerTable
from tickroom.server.rooms.room_signals import MAX_PENDING_SIGNALS as MAX_PENDING_SIGNALS
from tickroom.server.rooms.room_signals import SIGNAL_TIMEOUT_S, RoomSignals, SignalRequest
from tickroom.server.rooms.room_types import ACK_TIMEOUT_S as ACK_TIMEOUT_S
from tickroom.server.rooms.room_types import IDLE_CLOSE_S as IDLE_CLOSE_S
from tickroom.server.rooms.room_types import REJOIN_GRACE_S as REJOIN_GRACE_S
from tickroom.server.rooms.room_types import JoinAccepted, JoinRefused, RoomConfig, RoomStatistics, TickProfile
from tickroom.server.rooms.seating import JoinRequest, answer_join, refuse_join
from tickroom.server.rooms.snapshots import SnapshotHistory
from tickroom.server.rooms.step_batch import StepBatcher
from tickroom.server.rooms.tick_clock import TickClock
from tickroom.server.rooms.views import RoomViews
from tickroom.server.rooms.world_history import history_for
from tickroom.simulation.game import Game, InputBatch, View
from tickroom.simulation.player_messages import PlayerMessage

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 10.0  # a room that does not answer a join in this time is stuck
CONTROL_BUFFER = 64  # pending join/close requests per room


class TickObserver(Protocol):
    def ticked(self, room: Room, batch: InputBatch, room_events: list[list[Any]]) -> None:
        """Called after each step with its inputs and the joins/leaves
        (["join", pid, name] / ["leave", pid]) applied before it, in order."""


@dataclass(frozen=True)
class _CloseRequest:
    code: Code
    reason: str


@dataclass(frozen=True)
class _KickRequest:
    player_id: int
    reason: str


class Room:
    """One game world and its players. ``run()`` is the room task."""

    def __init__(
        self, room_id: str, game: Game, config: RoomConfig, *, labels: Mapping[str, str] | None = None
    ) -> None:
        self.room_id = room_id
        self.game = game
        self.config = config
        # The matchmaker's labels; checkpointed with the room, so they survive failover.
        self.labels: dict[str, str] = dict(labels or {})
        self.schema = Schema.from_description(game.components)
        self.input_fields = InputFields(game.input_fields)
        self.message_types = MessageTypes(
            getattr(game, "message_types", None), getattr(game, "message_rate", DEFAULT_MESSAGE_RATE)
        )
        if self.message_types.types and getattr(game, "handle_messages", None) is None:
            raise ValueError(f"game {game.name!r} declares message_types but no handle_messages()")
        self._encodes_last_tick = 0
        self._encoded_at_record = 0  # history.deltas_encoded when the tick was recorded
        self._tagged: list[list[Any]] = []  # this tick's events, tagged with it, between close_tick and record_view
        self.tick_messages: list[PlayerMessage] = []  # handed to the game this tick (the observer logs them)
        self.players = PlayerTable()
        # Events outlive the worlds: a client that acked nothing for the ack
        # timeout, then rejoined within the grace, still gets every one; each
        # player's game messages are kept as long, for a replay at its rejoin.
        event_ticks = config.ticks(config.ack_timeout_s + config.rejoin_grace_s) + 1
        self.history = SnapshotHistory(self.schema, config.history_ticks, event_ticks)
        self.mail = MailCounters(keep_ticks=event_ticks)
        self._batcher = RowBatcher(self.input_fields, config.max_inputs_per_tick, self._post_message)
        self.closed = False
        self._control_send, self._control_recv = trio.open_memory_channel(CONTROL_BUFFER)
        self._room_events: list[list[Any]] = []  # join/leave, emitted with the next tick
        self._empty_ticks = 0
        self._joins_pending = 0  # join requests sent, not yet answered
        self.hooks = GameHooks(game, room_id)
        # What each player sees (tickroom.simulation.game, ``visibility``);
        # a game without it never pays for per-player views.
        self._views = RoomViews(game, self.schema)
        # Lag compensation: the ring of past ticks the game asked for
        # (tickroom.server.rooms.world_history), lent to it as game.past.
        self.world_history = history_for(game)
        self._signals = RoomSignals(room_id, self._control_send, self.hooks)
        self.end_reason = "closed"  # what the game's on_end hears (game_hooks.END_REASONS)
        self._overruns = self._resyncs = self._skipped = 0
        self._last_tick_s = self._max_tick_s = 0.0
        self.tick_durations: deque[float] = deque(maxlen=2048)  # seconds, for metrics
        self.ticks_timed = 0  # durations ever recorded: tells a scraper how many of the deque are new
        self.profile = TickProfile()
        # The node's shared timer (tickroom.server.rooms.tick_clock), set by the registry;
        # None: trio.sleep_until (a room on its own, as in the unit tests).
        self.clock: TickClock | None = None
        # The node's stepper (tickroom.server.rooms.step_batch), set by the
        # registry: steps this room's game together with the others of its
        # game due at the same moment. None: the room steps its game itself.
        self.stepper: StepBatcher | None = None
        # Sees every tick's joins, leaves and inputs (tickroom.server.cluster.failover's
        # checkpointer); it must not block: the tick never waits on storage.
        self.observer: TickObserver | None = None
        # Delivers the snapshots instead of the room when set (--durable-acks);
        # None: each client's snapshot is offered at once.
        self.snapshot_gate: SnapshotGate | None = None

    # -- requests from other tasks -------------------------------------------

    async def join(self, join: m.Join, link: ClientLink) -> JoinAccepted:
        """Ask the room to admit ``link`` as a new or returning player.

        Raises JoinRefused. The reply comes at the room's next tick boundary (at
        most one tick); a room that does not answer in JOIN_TIMEOUT_S is
        reported as an internal error.
        """
        reply_send, reply_recv = trio.open_memory_channel(1)
        try:
            self._control_send.send_nowait(JoinRequest(join, link, reply_send))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            raise JoinRefused(
                Code.ROOM_FULL if not self.closed else Code.ROOM_CLOSED, "room is busy or closing"
            ) from None
        self._joins_pending += 1
        try:
            with trio.fail_after(JOIN_TIMEOUT_S):
                result = await reply_recv.receive()
        except trio.TooSlowError:
            raise JoinRefused(Code.INTERNAL_ERROR, "room did not answer") from None
        except trio.EndOfChannel:
            raise JoinRefused(Code.ROOM_CLOSED, "room closed") from None
        finally:
            self._joins_pending -= 1
        if isinstance(result, JoinRefused):
            raise result
        return result

    @property
    def seats_taken(self) -> int:
        """Players in the room plus joins on their way in (a quick match
        must not send two joiners to the last seat)."""
        return len(self.players) + self._joins_pending

    def request_close(self, code: Code = Code.ROOM_CLOSED, reason: str = "room closed") -> bool:
        """Ask the room to close its clients with ``code`` and end."""
        try:
            self._control_send.send_nowait(_CloseRequest(code, reason))
            return True
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return False

    async def signal(self, data: Mapping[str, Any], *, timeout_s: float = SIGNAL_TIMEOUT_S) -> Any:
        """Hand ``data`` (a small JSON object) to the game's ``on_signal`` at
        the room's next tick and return its answer (JSON-encodable).

        Raises SignalError: room_busy (MAX_PENDING_SIGNALS already wait),
        room_closing (the room ended or is ending), signal_timeout (no answer
        in ``timeout_s``: the signal is then never delivered), and the game's
        own signal_unsupported / signal_failed. Cancellation withdraws the
        signal the same way.
        """
        return await self._signals.send(data, closing=self.closed, timeout_s=timeout_s)

    def request_kick(self, player_id: int, reason: str) -> bool:
        """Ask the room to remove player ``player_id``: its connection is
        closed with KICKED (4108) and ``reason``, its avatar leaves the game
        and its session ends (no rejoin). False when the room's inbox is
        full or closed; a player gone by then is ignored."""
        try:
            self._control_send.send_nowait(_KickRequest(player_id, reason))
            return True
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return False

    def kick_all(self, code: Code, reason: str) -> None:
        """Close every client (used by the registry's fence after a crash)."""
        for player in self.players:
            if player.link is not None and not player.link.closed:
                player.link.kick(code, reason)

    def statistics(self) -> RoomStatistics:
        return RoomStatistics(
            room_id=self.room_id,
            game=self.game.name,
            tick=self.game.tick,
            players=len(self.players),
            connected=self.players.connected_count(),
            overruns=self._overruns,
            resyncs=self._resyncs,
            ticks_skipped=self._skipped,
            inputs_applied=self._batcher.counters.applied,
            inputs_stale=self._batcher.counters.stale,
            inputs_over_limit=self._batcher.counters.over_limit,
            deltas_encoded=self.history.deltas_encoded,
            distinct_views=self.history.distinct_views,
            encodes_last_tick=self._encodes_last_tick,
            game_messages_received=self.mail.received,
            game_messages_sent=self.mail.sent,
            game_messages_dropped=self.mail.dropped + self.mail.held_dropped + self.mail.refused,
            last_tick_ms=self._last_tick_s * 1e3,
            max_tick_ms=self._max_tick_s * 1e3,
        )

    # -- the task ------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Tick until closed or idle. Exceptions propagate to the caller's
        fence (the registry), which closes the clients with ROOM_CRASHED."""
        dt = 1.0 / self.config.tick_rate
        sleep_until = self.clock.sleep_until if self.clock is not None else trio.sleep_until
        async with self._control_recv:
            try:
                # Every room of the node ticks on the same grid (multiples of
                # dt on trio's clock), so the rooms due run one after another
                # in one scheduler pass: the process wakes once per tick, not
                # once per room, and the interpreter's and numpy's hot code
                # stays in the CPU caches from one room to the next (-25%
                # CPU per player at 200 players, docs/benchmarks.md).
                start = math.floor(trio.current_time() / dt) * dt
                n = 0
                ended = False
                task_status.started()
                while not self.closed:
                    deadline = start + (n + 1) * dt
                    # One wake-up per tick: control requests (joins, close) wait
                    # for the tick boundary, at most one tick, like inputs do.
                    await sleep_until(deadline)
                    self._drain_control()
                    if self.closed:
                        break
                    now = trio.current_time()
                    behind = int((now - deadline) / dt)
                    if behind > self.config.max_catchup_ticks:
                        # Too far behind to catch up: drop the missed ticks and
                        # start the schedule again from now.
                        self._resyncs += 1
                        self._skipped += behind
                        start, n = math.floor(now / dt) * dt - dt, 0  # back on the grid
                        deadline = now
                    if self.stepper is None:
                        self._record_duration(self._tick())
                    else:
                        self._record_duration(await self._tick_in_batch(self.stepper))
                    n += 1
                    if trio.current_time() > deadline + dt:
                        self._overruns += 1
                    if self._idle():
                        log.info("room %s: empty for %.0f s, closing", self.room_id, self.config.idle_close_s)
                        self.end_reason = "idle"
                        self.closed = True
                ended = True
            finally:
                # Whatever ended the room, nobody waits for an answer from it.
                self.closed = True
                self._refuse_pending_joins()
        # Only an orderly end reaches here (a crash or a cancellation
        # propagates): the game hears why, then the clients left are closed.
        if ended:
            self.hooks.ended(self.end_reason)
        self.kick_all(Code.ROOM_CLOSED, "room closed")

    # -- one tick --------------------------------------------------------------

    def _tick(self) -> float:
        """One tick with the game stepped here, alone (a room without the
        node's stepper: unit tests, benchmarks). Returns its CPU seconds."""
        clock = time.perf_counter
        t0 = clock()
        batch = self._collect_inputs()
        t1 = clock()
        self._reap_players()
        self.game.apply_inputs(batch)
        self.take_messages()
        events = self.game.step()
        t2 = clock()
        self.record_tick(batch, events)
        return self._send_tick(t1 - t0, t2 - t1, clock() - t2)

    async def _tick_in_batch(self, stepper: StepBatcher) -> float:
        """One tick with the game stepped, recorded and its deltas encoded
        by the node's stepper, together with the other rooms of its game due
        now (tickroom.server.rooms.step_batch). Returns this room's CPU
        seconds, its shares of the batched calls included."""
        clock = time.perf_counter
        t0 = clock()
        gathered = self._batcher.gather(self.players.connected(), self.game.tick)
        read_s = clock() - t0
        more_read_s, step_s, snapshot_s = await stepper.step(self, gathered, len(self.players))
        return self._send_tick(read_s + more_read_s, step_s, snapshot_s)

    @property
    def input_rows(self) -> InputRows:
        """Its game's input row layout (the stepper decodes every room's rows at once)."""
        return self._batcher.rows

    def begin_tick(self, gathered: GatheredRows, decoded: DecodedRows | None) -> InputBatch:
        """The tick's batch from the rows read (``gathered``) and their
        decode, then the gone players reaped: what ``_tick`` does before
        the step, for the stepper."""
        batch = self._batcher.finish(gathered, decoded, self.game.tick)
        self._reap_players()
        return batch

    def take_messages(self) -> None:
        """Hand the tick's game messages to the game (after its inputs, before its step)."""
        self.tick_messages = collect_mail(self.players, self.game, self.mail)

    def record_tick(self, batch: InputBatch, events: list[list[Any]]) -> None:
        """After the step: the game's history, the observer, the game's
        requests, then the tick's view recorded for the snapshots (unless
        the game ended its match)."""
        if self.close_tick(batch, events):
            self.record_view(self.game.view())

    def close_tick(self, batch: InputBatch, events: list[list[Any]]) -> bool:
        """The step's aftermath before its view: the game's history, the
        observer, the game's requests. False when the game ended its match
        (its clients are closed already: no snapshot)."""
        tick = self.game.tick
        if self.world_history is not None:
            self.world_history.record(tick)
        tagged = [[tick, *event] for event in self._room_events]
        tagged.extend([tick, *event] for event in events)
        self._tagged = tagged
        if self.observer is not None:
            self.observer.ticked(self, batch, self._room_events)
        self._room_events.clear()
        # Before the view: a player kicked in this step is gone from this
        # tick's snapshot (its leave event goes out with the next tick).
        self._carry_out_requests()
        return not self.closed

    def record_view(self, view: View) -> None:
        """Record this tick's ``view`` (the game's, taken after close_tick) for the snapshots."""
        world = WorldState.from_view(self.game.tick, view.ids, view.components, self.schema)
        self.history.record(world, self._tagged, self._views.split(view, world))
        self._encoded_at_record = self.history.deltas_encoded

    def deltas_wanted(self) -> list[tuple[int, WorldState, WorldState]]:
        """The shared deltas this tick's snapshots need and that are not
        encoded yet (for the stepper's encode of all its rooms at once)."""
        if self.closed:
            return []
        return self.history.deltas_wanted(player.acked for player, _ in self.players.connected())

    def prime_delta(self, base: int, fields: dict) -> None:
        self.history.prime(base, fields)

    def _send_tick(self, read_s: float, step_s: float, snapshot_s: float) -> float:
        """Each client's snapshot sent (unless the game ended its match).
        Returns the tick's CPU seconds."""
        if self.closed:
            return read_s + step_s + snapshot_s
        began = time.perf_counter()
        broadcast(self.players, self.history, self.snapshot_gate, self.game.tick)
        self._encodes_last_tick = self.history.deltas_encoded - self._encoded_at_record
        send_s = time.perf_counter() - began
        self.profile.add(read_s, step_s, snapshot_s, send_s, len(self.players))
        return read_s + step_s + snapshot_s + send_s

    def _collect_inputs(self) -> InputBatch:
        """Read each player's link once: record acks, queue game messages,
        and decode, validate and batch every player's inputs at once
        (tickroom.server.rooms.input_rows_batch)."""
        return self._batcher.collect(self.players.connected(), self.game.tick)

    def _post_message(self, player: Player, msg: GameMessage) -> None:
        """A game message from ``player``, for its game at this tick."""
        if len(player.inbox) < MAX_QUEUED:
            player.inbox.append(msg)
        else:  # more came than any burst the gate admits
            self.mail.dropped += 1

    def _reap_players(self) -> None:
        tick = self.game.tick
        grace = self.config.ticks(self.config.rejoin_grace_s)
        ack_timeout = self.config.ticks(self.config.ack_timeout_s)
        for player in list(self.players):
            link = player.link
            if link is not None and link.closed:
                if link.left:
                    self.remove_player(player, "left")
                    continue
                self.players.detach(player, tick)
                self.hooks.dropped(player.id)
            elif link is not None and tick - max(player.acked, player.linked_tick) > ack_timeout:
                link.kick(Code.ACK_TIMEOUT, f"no snapshot acknowledged for {self.config.ack_timeout_s:g} s")
                self.players.detach(player, tick)
                self.hooks.dropped(player.id)
            if player.link is None and tick - player.detached_tick > grace:
                self.remove_player(player, "timed out")

    # -- control ---------------------------------------------------------------

    def _refuse_pending_joins(self) -> None:
        while True:
            try:
                request = self._control_recv.receive_nowait()
            except (trio.WouldBlock, trio.ClosedResourceError):
                return
            if isinstance(request, SignalRequest):
                self._signals.refuse(request)
            elif isinstance(request, JoinRequest):
                refuse_join(request)

    def _drain_control(self) -> None:
        while not self.closed:
            try:
                request = self._control_recv.receive_nowait()
            except trio.WouldBlock:
                return
            self._handle_control(request)
            self._carry_out_requests()

    def _handle_control(self, request: JoinRequest | _CloseRequest | SignalRequest | _KickRequest) -> None:
        if isinstance(request, _CloseRequest):
            self.kick_all(request.code, request.reason)
            self.end_reason = END_REASONS.get(request.code, "closed")
            self.closed = True
            return
        if isinstance(request, SignalRequest):
            self._signals.answer(request)
            return
        if isinstance(request, _KickRequest):
            kick_player(self, request.player_id, request.reason)
            return
        answer_join(self, request)

    def record_event(self, event: list[Any]) -> None:
        """Queue a join or leave event (["join", pid, name] / ["leave", pid])
        for the next tick's snapshot and observer."""
        self._room_events.append(event)

    def remove_player(self, player: Player, why: str) -> None:
        """Remove ``player`` for good (no rejoin): the game's ``leave`` and a leave event."""
        self.players.remove(player)
        self.game.leave(player.id)
        self.record_event(["leave", player.id])
        log.info("room %s: %s (%d) %s", self.room_id, player.name, player.id, why)

    def _carry_out_requests(self) -> None:
        """Do what the game asked (tickroom.server.rooms.game_requests), in order."""
        carry_out(self, self.hooks.take_requests())

    def _idle(self) -> bool:
        self._empty_ticks = self._empty_ticks + 1 if len(self.players) == 0 else 0
        return self._empty_ticks > self.config.ticks(self.config.idle_close_s)

    def _record_duration(self, seconds: float) -> None:
        self._last_tick_s = seconds
        self._max_tick_s = max(self._max_tick_s, seconds)
        self.tick_durations.append(seconds)
        self.ticks_timed += 1
