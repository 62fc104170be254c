"""Headless bots: real protocol clients (client.connect) that play any game.

A bot joins its room at its scheduled time, sends one input per
1/input_rate seconds (default: the room's tick rate from the welcome) with a
sequence number, drawn at random from the welcome's input fields
(tickroom.protocol.random_inputs: valid for whatever game the room runs), acknowledges every snapshot (the client does that) and
leaves at its scheduled time. It measures the round trip from sending input
N to the first snapshot whose "seq" acknowledges N: what a player feels.

A dropped connection is resumed like a real client would (docs/protocol.md,
section 12): ``plan_reconnect`` decides between a rejoin of the same session,
a fresh join and giving up. Every failure is counted by kind, never raised.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import trio

from tickroom.client import ClientClosed, Desynced, connect, rejoin
from tickroom.loadtest.scenarios import BotSpec
from tickroom.loadtest.stats import Delta

# What to do after a close, per code: protocol/errors.py holds the one rule
# (docs/protocol.md, section 8); re-exported here for the raw bots.
from tickroom.protocol import messages as m
from tickroom.protocol.errors import FAILOVER_CODES, FRESH_CODES, REJOIN_CODES, RESUME_CODES
from tickroom.protocol.random_inputs import RandomInputs

__all__ = ["FAILOVER_CODES", "FRESH_CODES", "REJOIN_CODES", "RESUME_CODES"]

MAX_RECONNECTS = 20  # per bot: a bound on the retry loop whatever the server does
RETRY_BACKOFF_S = 0.2  # times the attempt number, at most MAX_BACKOFF_S
MAX_BACKOFF_S = 2.0


@dataclass(frozen=True)
class Target:
    """Where and how a bot joins: a room by name, or a matchmaker's ticket."""

    url: str
    room: str | None
    ticket: str | None = None
    protocol: int = m.PROTOCOL_VERSION  # the wire version to speak (1: a server older than version 2)


class Meter:
    """One worker's running counters; the worker ships and resets them
    every second (``take``). Bots only add to the current Delta."""

    def __init__(self, worker: int) -> None:
        self.worker = worker
        self.connected = 0
        self.delta = Delta(worker, 0)

    def take(self, second: int) -> Delta:
        delta, self.delta = self.delta, Delta(self.worker, second)
        delta.second = second
        delta.connected = self.connected
        return delta

    def error(self, kind: str) -> None:
        self.delta.errors[kind] += 1


@dataclass(frozen=True)
class Reconnect:
    """What to do after a connection ended or failed."""

    action: str  # "rejoin" (same session), "fresh" (new join), "stop"
    url: str | None = None  # a redirect's new address, else None: the same one
    redirect: bool = False


def plan_reconnect(exc: BaseException, *, joined: bool) -> Reconnect:
    """The one place that maps a connection's end to the next step.

    A redirect (a server telling the client that the room lives elsewhere,
    after a failover) is any failure carrying a ``url`` attribute, or a close
    whose reason says "redirect"; it is counted apart and followed.
    ``joined`` says whether this bot ever had a session to resume.
    """
    url = getattr(exc, "url", None) or getattr(exc, "ws_url", None)
    reason = getattr(exc, "reason", "")
    if url or (isinstance(reason, str) and "redirect" in reason.lower()):
        return Reconnect("rejoin" if joined else "fresh", url=url if isinstance(url, str) else None, redirect=True)
    if isinstance(exc, Desynced):
        return Reconnect("rejoin")  # the session asks for a full snapshot
    if isinstance(exc, ClientClosed):
        if exc.code in REJOIN_CODES:
            return Reconnect("rejoin" if joined else "fresh")
        if exc.code in FRESH_CODES:
            return Reconnect("fresh")
        return Reconnect("stop")  # refused: full room, bad ticket, protocol error
    # The TCP connect, the WebSocket handshake or the join timed out or failed:
    # try again the same way (the server may be restarting).
    return Reconnect("rejoin" if joined else "fresh")


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, Desynced):
        return "desync"
    if isinstance(exc, ClientClosed):
        return f"closed_{exc.code}"
    # trio-websocket wraps what went wrong (HandshakeError from an OSError
    # from a ConnectionRefusedError): name the root cause, it says more.
    root = exc
    for _ in range(5):
        if root.__cause__ is None:
            break
        root = first_leaf(root.__cause__)
    return f"connect_{type(root).__name__}"


def first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


async def run_bot(spec: BotSpec, target: Target, meter: Meter, *, start: float, input_rate: float | None) -> None:
    """Play ``spec`` from ``start + join_at`` to ``start + leave_at`` (trio
    clock); failures are counted in ``meter``, never raised."""
    await trio.sleep_until(start + spec.join_at)
    bot = _Bot(spec, meter, random.Random(spec.seed), input_rate)  # nosec B311 - gameplay, not security
    try:
        await _live(bot, target, start=start, deadline=start + spec.leave_at)
    finally:
        # Also when the worker's own deadline cancels a bot stuck in its
        # join: a bot that never got in is a failure, whatever stopped it.
        if not bot.ever:
            meter.error("never_connected")
        meter.delta.leaves += 1


async def _live(bot: _Bot, target: Target, *, start: float, deadline: float) -> None:
    """Connect, play, and resume after drops until ``deadline``."""
    meter = bot.meter
    client = None  # the last connected Client: its session is what a rejoin resumes
    url = target.url
    for attempt in range(MAX_RECONNECTS + 1):
        if trio.current_time() >= deadline:
            return
        try:
            if client is None:
                cm = connect(url, room=target.room, name=bot.spec.name, ticket=target.ticket, protocol=target.protocol)
            else:
                client.url = url
                cm = rejoin(client)
            live = None
            tried_at = trio.current_time()
            with trio.move_on_at(deadline + 5):  # the join itself may hang on a dead server
                async with cm as live:
                    client = live
                    meter.delta.join_ms.append((trio.current_time() - tried_at) * 1e3)
                    bot.connected(start)
                    try:
                        await bot.play(live, deadline)
                    finally:
                        bot.disconnected(live)
                if live.closed is None:
                    return  # left at its time; connect() sent "leave"
            closed = live.closed if live is not None else None
            ended: BaseException = closed if closed is not None else trio.TooSlowError("join or leave timed out")
        except Exception as exc:  # noqa: BLE001 - the bot's fence: count and decide
            ended = first_leaf(exc)
        plan = plan_reconnect(ended, joined=client is not None)
        if plan.redirect:
            meter.delta.redirects += 1
        else:
            meter.error(error_kind(ended))
        if plan.action == "stop" or trio.current_time() >= deadline:
            return  # refused, or ended at the end of its life: nothing to resume
        if plan.action == "fresh":
            client = None
        url = plan.url or url
        meter.delta.reconnects += 1
        await trio.sleep(min(MAX_BACKOFF_S, RETRY_BACKOFF_S * attempt))


class _Bot:
    """One bot's play: inputs out, worlds in, samples into the meter."""

    def __init__(self, spec: BotSpec, meter: Meter, rng: random.Random, input_rate: float | None) -> None:
        self.spec = spec
        self.meter = meter
        self.rng = rng
        self.input_rate = input_rate
        self.inputs: RandomInputs | None = None  # from the first welcome: the game's input fields
        self.last_snapshot: float | None = None  # across reconnects, for max_gap
        self.ever = False
        self.connected_at = 0.0
        self.seen_bytes = self.seen_snaps = 0

    def connected(self, start: float) -> None:
        self.meter.connected += 1
        self.connected_at = trio.current_time()
        if not self.ever:
            self.ever = True
            self.meter.delta.joins += 1
            self.meter.delta.ever_connected += 1
            self.meter.delta.connect_at.append(trio.current_time() - start)

    def disconnected(self, client) -> None:
        self.meter.connected -= 1
        self.meter.delta.connected_ms += int((trio.current_time() - self.connected_at) * 1e3)
        self.meter.delta.desyncs += client.desyncs
        for err in client.errors:
            self.meter.error(f"server_error_{err.code}")

    async def play(self, client, deadline: float) -> None:
        """Until ``deadline`` or until the connection ends."""
        self.seen_bytes = self.seen_snaps = 0
        ws = client._ws
        meter = self.meter
        send = ws.send_message

        async def counted_send(payload: bytes) -> None:
            # Upstream bytes: the client has no counter, so count every
            # message it sends (inputs, acks, leave) on its way out.
            meter.delta.bytes_out += len(payload)
            await send(payload)

        ws.send_message = counted_send
        sent: dict[int, float] = {}
        with trio.move_on_at(deadline):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._send_inputs, client, sent)
                nursery.start_soon(self._read_worlds, client, sent)
                await client.wait_closed()
                nursery.cancel_scope.cancel()

    async def _send_inputs(self, client, sent: dict[int, float]) -> None:
        rate = self.input_rate or client.welcome.tick_rate
        period = 1.0 / rate
        next_at = trio.current_time()
        if self.inputs is None:
            # Any game: valid random inputs from the welcome's input fields
            # (a rejoin's welcome describes the same game: the inputs wander on).
            self.inputs = RandomInputs(client.welcome.inputs, self.rng)
        inputs = self.inputs
        try:
            while True:
                seq = await client.send_input(**inputs.next())
                sent[seq] = trio.current_time()
                self.meter.delta.inputs += 1
                next_at += period
                now = trio.current_time()
                if next_at < now - period:
                    next_at = now  # fell behind (a busy load process): skip, never burst
                await trio.sleep_until(next_at)
        except ClientClosed:
            return

    async def _read_worlds(self, client, sent: dict[int, float]) -> None:
        delta_of = lambda: self.meter.delta
        last = None
        try:
            async for _ in client.worlds():
                now = trio.current_time()
                delta = delta_of()
                delta.snapshots += client.snapshots_received - self.seen_snaps
                delta.bytes_in += client.bytes_received - self.seen_bytes
                self.seen_snaps, self.seen_bytes = client.snapshots_received, client.bytes_received
                if last is not None:
                    delta.interval_ms.append((now - last) * 1e3)
                if self.last_snapshot is not None:
                    delta.max_gap_ms = max(delta.max_gap_ms, (now - self.last_snapshot) * 1e3)
                last = self.last_snapshot = now
                done = client.session.last_processed_seq
                for seq in [s for s in sent if s <= done]:
                    delta.rtt_ms.append((now - sent.pop(seq)) * 1e3)
        except ClientClosed:
            return
