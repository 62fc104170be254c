"""Raw bots: many protocol-correct players per process on one epoll loop.

Why: the full client bots (loadtest/bots.py) decode every delta into numpy
worlds over trio-websocket, ~0.6 ms of CPU per snapshot, so one machine
cannot load a server past ~500 players while also running it. A raw bot
speaks the same protocol (docs/protocol.md sections 1, 3-5) over a bare
non-blocking socket, with the server's own frame codec in the client role
(tickroom.protocol.websocket_frames) and does the least a player must: it decodes each
snapshot only to read ``tick`` and ``seq`` (no deltas applied, so no desync
check) and answers it at once with one input that acknowledges it, the
reference workload of one snapshot in and one input out per player per tick.

One ``Fleet`` per worker process drives all its bots from one
``selectors`` loop (epoll on Linux): no trio, no asyncio, no task or thread
per bot, so the cost per message is a recv, a frame parse, one msgpack
decode, one encode (protocol version 2: a struct-packed input row of the
welcome's layout; ``Target.protocol`` 1 speaks the deprecated version 1,
for servers older than version 2) and a send. Figures go into the same ``Meter``/``Delta``
as the client bots', so the report pipeline (workers.py, report.py) is the
same for both kinds.

Differences from the client bots, on purpose:
- inputs are paced by the snapshots (one per snapshot), not by a timer, so
  --input-rate does not apply;
- RTT is measured the same way (input N sent -> first snapshot with
  ``seq`` >= N) but, since inputs leave right after a snapshot, it is about
  one tick plus the server's and the bots' latency;
- bytes count what crosses the socket after the upgrade (WebSocket headers
  included) in each direction.
"""

from __future__ import annotations

import errno
import heapq
import math
import os
import random
import selectors
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from urllib.parse import urlsplit

import msgpack

from tickroom.loadtest.bots import (
    MAX_BACKOFF_S,
    MAX_RECONNECTS,
    RETRY_BACKOFF_S,
    Meter,
    Target,
)
from tickroom.loadtest.scenarios import BotSpec
from tickroom.protocol.errors import FRESH_CODES, REJOIN_CODES
from tickroom.protocol.input_rows import RowEncoder
from tickroom.protocol.random_inputs import RandomInputs
from tickroom.protocol.websocket_frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PONG,
    CloseFrame,
    FrameParser,
    MessageTooBig,
    PingFrame,
    ProtocolViolation,
    client_frame,
    close_payload,
)
from tickroom.protocol.websocket_handshake import HandshakeError, new_key, parse_upgrade_response, upgrade_request

JOIN_TIMEOUT_S = 10.0  # TCP connect to welcome; the server's own handshake timeout is 10 s
LEAVE_TIMEOUT_S = 3.0  # "leave" sent, waiting for the server's close
RECV_BYTES = 256 * 1024
MAX_SERVER_MESSAGE = 16 * 2**20  # the protocol's floor for server messages (docs/protocol.md section 1)
# The loop polls at most once per POLL_INTERVAL_S and sleeps in between, so
# that readiness piles up and one wake serves many bots. Waking per message
# costs more than the message itself: on a VM each wake of an idle core is an
# interrupt between cores and a context switch. The price is up to this much
# added to each snapshot's handling, hence to the RTT measured.
POLL_INTERVAL_S = 0.002
MAX_PENDING_RTT = 256  # input send times kept per bot, if the server stops applying them
# Seated-rate accounting: snapshots counted per window of this many seconds
# (long enough that a bot's own scheduling jitter does not move a snapshot
# across a boundary and read as a drop), from this long after the welcome.
RATE_WINDOW_S = 2.0
RATE_WARMUP_S = 1.0

# One Packer for the process: msgpack.packb builds a new one (and its
# buffer) per call, a measurable part of a ~20 us budget per message.
_pack = msgpack.Packer().pack
_unpack = msgpack.unpackb

# Connection states.
IDLE, CONNECTING, UPGRADING, AWAIT_WELCOME, JOINED, LEAVING, DONE = range(7)


def parse_ws_url(url: str) -> tuple[str, int, str]:
    """(host, port, path) of a ws:// URL. wss:// is refused: TLS would cost
    more than everything else a raw bot does; load the server directly."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or not parts.hostname:
        raise ValueError(f"raw bots need a ws://host:port URL, not {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, parts.port or 80, path


class Fleet:
    """The bots of one worker process and the loop that drives them."""

    def __init__(
        self, bots: list[tuple[BotSpec, Target]], meter: Meter, *, start: float, poll_interval: float = POLL_INTERVAL_S
    ) -> None:
        self.meter = meter
        self.poll_interval = poll_interval
        self.start = start  # time.monotonic() of the schedule's zero
        self.sel = selectors.DefaultSelector()
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_ids = 0
        self._addresses: dict[tuple[str, int], tuple] = {}
        self.done = 0  # bots finished for good
        self.bots = [RawBot(self, spec, target) for spec, target in bots]
        for bot in self.bots:
            self.at(start + bot.spec.join_at, bot.connect)
            self.at(start + bot.spec.leave_at, bot.leave)

    def at(self, when: float, action: Callable[[], None]) -> None:
        self._timer_ids += 1  # a tie-breaker: callables do not compare
        heapq.heappush(self.timers, (when, self._timer_ids, action))

    def address(self, host: str, port: int) -> tuple:
        """getaddrinfo once per host: it blocks, and every bot of a run
        targets the same one or few nodes."""
        key = (host, port)
        if key not in self._addresses:
            family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
            self._addresses[key] = (family, kind, proto, addr)
        return self._addresses[key]

    def run(self, until: float, *, report: Callable[[], None], period: float = 1.0) -> None:
        """Until every bot is done or ``until`` (time.monotonic()); calls
        ``report`` every ``period`` seconds of the schedule."""
        select, timers = self.sel.select, self.timers
        next_report = self.start + period
        now = polled = time.monotonic()
        while now < until and self.done < len(self.bots):
            wake = min(next_report, until, timers[0][0] if timers else until)
            if now - polled < self.poll_interval and wake > now:
                time.sleep(min(self.poll_interval - (now - polled), wake - now))
                now = time.monotonic()
            polled = now
            for key, events in select(max(0.0, wake - now)):
                bot = key.data
                if events & selectors.EVENT_WRITE:
                    bot.on_writable()
                if events & selectors.EVENT_READ and bot.sock is not None:
                    bot.on_readable()
            now = time.monotonic()
            while timers and timers[0][0] <= now:
                heapq.heappop(timers)[2]()
            if now >= next_report:
                report()
                next_report += period * max(1, math.floor((now - next_report) / period) + 1)
        for bot in self.bots:
            bot.finish()  # the worker's own deadline: whatever is still going ends here
        self.sel.close()


class RawBot:
    """One player: its socket, its protocol state and its figures."""

    __slots__ = (
        "fleet", "spec", "target", "name", "rng", "inputs", "state", "sock", "out", "head", "key", "parser",
        "url", "room", "session", "seq", "sent", "ever", "gen", "attempt", "tried_at", "connected_at",
        "last_snap", "conn_last", "redirect", "close_sent", "rows",
        "window_at", "window_count", "rate_min",
    )  # fmt: skip

    def __init__(self, fleet: Fleet, spec: BotSpec, target: Target) -> None:
        self.fleet = fleet
        self.spec = spec
        self.target = target
        self.name = f"rawbot-{spec.index}"
        self.rng = random.Random(spec.seed)  # nosec B311 - gameplay, not security
        self.inputs: RandomInputs | None = None  # from the first welcome: the game's input fields
        self.state = IDLE
        self.sock: socket.socket | None = None
        self.out = b""  # bytes the kernel did not take yet
        self.head = b""  # the upgrade answer, until complete
        self.key = b""
        self.parser = FrameParser(MAX_SERVER_MESSAGE, client=True)
        self.url = target.url
        self.room = target.room  # the welcome's room once joined: a rejoin names it
        self.session: str | None = None
        self.seq = 0  # input seq: continues across rejoins, restarts on a fresh join
        self.sent: deque[tuple[int, float]] = deque()  # (input seq, send time) awaiting a snapshot's seq
        self.ever = False
        self.gen = 0  # connection generation: a timer of an older connection does nothing
        self.attempt = 0
        self.tried_at = self.connected_at = 0.0
        self.last_snap: float | None = None  # across reconnects: the longest gap
        self.conn_last: float | None = None  # this connection's previous snapshot
        self.redirect: str | None = None
        self.close_sent = False
        # Seated-rate accounting (_count_rate): the current window's start and
        # snapshots, and this connection's lowest rate over whole windows.
        self.window_at = math.inf
        self.window_count = 0
        self.rate_min: float | None = None
        self.rows: RowEncoder | None = None  # protocol version 2: the welcome's input row layout

    # -- connection set-up -------------------------------------------------

    def connect(self) -> None:
        if self.state != IDLE:
            return
        self.gen += 1
        gen = self.gen
        meter = self.fleet.meter
        self.tried_at = time.monotonic()
        self.parser = FrameParser(MAX_SERVER_MESSAGE, client=True)
        self.out = self.head = b""
        self.close_sent = False
        self.conn_last = None
        try:
            host, port, _ = parse_ws_url(self.url)
            family, kind, proto, addr = self.fleet.address(host, port)
            sock = socket.socket(family, kind, proto)
        except (OSError, ValueError) as exc:  # a bad URL (a redirect to wss://), no such host
            meter.error(f"connect_{type(exc).__name__}")
            self.finish()
            return
        sock.setblocking(False)
        # Inputs are ~80-byte writes: without TCP_NODELAY Nagle would hold
        # them back behind unacknowledged data and add to the RTT measured.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.state = CONNECTING
        err = sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            self._end(0, f"connect_{type(OSError(err, os.strerror(err))).__name__}")
            return
        self.fleet.sel.register(sock, selectors.EVENT_WRITE, self)
        self.fleet.at(self.tried_at + JOIN_TIMEOUT_S, lambda: self._join_timeout(gen))

    def _join_timeout(self, gen: int) -> None:
        if gen == self.gen and self.state in (CONNECTING, UPGRADING, AWAIT_WELCOME):
            self._end(0, "connect_TimeoutError")

    def on_writable(self) -> None:
        if self.sock is None:
            return  # ended by an earlier event of the same poll
        if self.state == CONNECTING:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                # OSError(errno) is the errno's subclass: ConnectionRefusedError, ...
                self._end(0, f"connect_{type(OSError(err, os.strerror(err))).__name__}")
                return
            self.state = UPGRADING
            self.key = new_key()
            host, port, path = parse_ws_url(self.url)
            self.fleet.sel.modify(self.sock, selectors.EVENT_READ, self)
            self._send(upgrade_request(host, port, path, self.key))
            return
        out, self.out = self.out, b""
        self.fleet.sel.modify(self.sock, selectors.EVENT_READ, self)
        self._send(out)

    def _send(self, data: bytes) -> None:
        """Write now; what the kernel does not take waits for EVENT_WRITE
        (rare: a bot's socket buffer holds many seconds of its inputs)."""
        if self.sock is None:
            return
        if self.out:
            self.out += data
            return
        try:
            n = self.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError:
            self._end(1006, "closed_1006")
            return
        if n < len(data):
            self.out = data[n:]
            self.fleet.sel.modify(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self)

    def _send_message(self, msg: dict) -> int:
        return self._send_payload(_pack(msg))

    def _send_payload(self, payload: bytes) -> int:
        frame = client_frame(OP_BINARY, payload, self.rng.getrandbits(32).to_bytes(4, "little"))
        self.fleet.meter.delta.bytes_out += len(frame)
        self._send(frame)
        return len(frame)

    def _join_message(self) -> dict:
        msg: dict = {"t": "join", "v": self.target.protocol, "name": self.name}
        if self.session is not None:
            # A rejoin (section 3.8): the same player; no "ack", so the first
            # snapshot is full (a raw bot holds no worlds to resume from).
            msg["session"] = self.session
            msg["room"] = self.room
        else:
            if self.room is not None:
                msg["room"] = self.room
            if self.target.ticket is not None:
                msg["ticket"] = self.target.ticket
        return msg

    # -- reading -----------------------------------------------------------

    def on_readable(self) -> None:
        if self.sock is None:
            return  # ended by an earlier event of the same poll
        try:
            data = self.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            # EOF without a close frame: the connection dropped (1006). (After
            # a close frame the bot has already ended the connection.)
            self._end(1006, "closed_1006")
            return
        if self.state == UPGRADING:
            self.head += data
            try:
                used = parse_upgrade_response(self.head, self.key)
            except HandshakeError:
                self._end(0, "connect_HandshakeError")
                return
            if used is None:
                return
            data, self.head = self.head[used:], b""
            self.state = AWAIT_WELCOME
            self._send_message(self._join_message())
            if not data:
                return
        self.fleet.meter.delta.bytes_in += len(data)
        for event in self.parser.receive(data):
            if type(event) is bytes:
                try:
                    msg = _unpack(event, raw=False)
                    if type(msg) is list:  # the hot path first: a version 2 snapshot
                        self._on_snapshot(msg[0], msg[1])
                    elif msg.get("t") == "snap":  # version 1's
                        self._on_snapshot(msg["seq"], msg["tick"])
                    else:
                        self._on_message(msg)
                except (
                    ValueError,
                    TypeError,
                    AttributeError,
                    KeyError,
                    IndexError,
                    struct.error,
                    msgpack.UnpackException,
                ):
                    # Not a map, or a snapshot without its tick or seq: the
                    # server broke the protocol; count it, like a desync.
                    self._close(1002, "bad_message")
            elif isinstance(event, CloseFrame):
                self._on_close(event.code)
                return
            elif isinstance(event, PingFrame):
                self._send(client_frame(OP_PONG, event.payload, os.urandom(4)))
            elif isinstance(event, (ProtocolViolation, MessageTooBig)):
                self._close(1002, "frame_error")
                return
            # Pongs (raw bots do not ping) and text (the server sends none): nothing to do.
            if self.sock is None:
                return  # the message ended the connection

    def _on_message(self, msg: dict) -> None:
        kind = msg.get("t")
        if kind == "welcome":
            self._on_welcome(msg)
        elif kind == "error":
            code = msg.get("code")
            if not (code == 4202 and self.redirect):  # a redirect's close: counted as a redirect
                self.fleet.meter.error(f"server_error_{code}")
        elif kind == "redirect":
            self.redirect = msg.get("url")
            self.fleet.meter.delta.redirects += 1
        # "pong": raw bots do not ping (RTT comes from inputs); nothing else is expected.

    def _on_welcome(self, msg: dict) -> None:
        now = time.monotonic()
        meter = self.fleet.meter
        self.state = JOINED
        self.attempt = 0
        self.session, self.room = msg["session"], msg["room"]
        if self.inputs is None:
            # Any game: valid random inputs from the welcome's input fields
            # (a rejoin's welcome describes the same game: the inputs wander on).
            self.inputs = RandomInputs(msg["inputs"], self.rng)
        if self.target.protocol >= 2:
            self.rows = RowEncoder(msg["layout"])
        meter.connected += 1
        meter.delta.join_ms.append((now - self.tried_at) * 1e3)
        self.connected_at = now
        self.window_at, self.window_count, self.rate_min = now + RATE_WARMUP_S, 0, None
        if not self.ever:
            self.ever = True
            meter.delta.joins += 1
            meter.delta.ever_connected += 1
            meter.delta.connect_at.append(now - self.fleet.start)

    def _on_snapshot(self, done: int, tick: int) -> None:
        """Count it (its input ``seq`` and ``tick``), close the RTT samples
        it acknowledges, answer with one input."""
        now = time.monotonic()
        delta = self.fleet.meter.delta
        delta.snapshots += 1
        self._count_rate(now)
        if self.conn_last is not None:
            delta.interval_ms.append((now - self.conn_last) * 1e3)
        if self.last_snap is not None:
            gap = (now - self.last_snap) * 1e3
            if gap > delta.max_gap_ms:
                delta.max_gap_ms = gap
        self.conn_last = self.last_snap = now
        sent = self.sent
        while sent and sent[0][0] <= done:
            delta.rtt_ms.append((now - sent.popleft()[1]) * 1e3)
        if self.state != JOINED or self.inputs is None:
            return  # leaving: no more inputs
        self.seq += 1
        if self.rows is not None:
            self._send_payload(self.rows.encode(self.seq, tick, tick, self.inputs.next()))
        else:
            self._send_message({"t": "input", "seq": self.seq, "tick": tick, "ack": tick, "in": self.inputs.next()})
        delta.inputs += 1
        sent.append((self.seq, now))
        if len(sent) > MAX_PENDING_RTT:
            sent.popleft()

    def _count_rate(self, now: float) -> None:
        """Snapshots per RATE_WINDOW_S window while seated; a window with
        none (a stall) counts as 0."""
        if now < self.window_at:
            return  # the warm-up after the welcome
        while now >= self.window_at + RATE_WINDOW_S:
            rate = self.window_count / RATE_WINDOW_S
            self.rate_min = rate if self.rate_min is None else min(self.rate_min, rate)
            self.window_at += RATE_WINDOW_S
            self.window_count = 0
        self.window_count += 1

    # -- ending ------------------------------------------------------------

    def _on_close(self, code: int) -> None:
        """The server's close (``code`` 1005 when it gave none): answer it
        (RFC 6455 5.5.1) and end."""
        if not self.close_sent:
            self.close_sent = True
            # 1005 means "no code": it is echoed as an empty close, never sent (RFC 6455 7.4.1).
            self._send(client_frame(OP_CLOSE, b"" if code == 1005 else close_payload(code), os.urandom(4)))
        if self.state == AWAIT_WELCOME and code >= 4000:  # a refused join: its code and how fast it came
            self.fleet.meter.delta.refusals[code] += 1
            self.fleet.meter.delta.refusal_ms.append((time.monotonic() - self.tried_at) * 1e3)
        expected = self.state == LEAVING and code == 1000
        self._end(code, None if expected or (code == 4202 and self.redirect) else f"closed_{code}")

    def _close(self, code: int, error: str) -> None:
        """Our own close after a protocol error: we end at once."""
        if self.sock is not None and not self.close_sent:
            self.close_sent = True
            self._send(client_frame(OP_CLOSE, close_payload(code), os.urandom(4)))
        self._end(code, error)

    def leave(self) -> None:
        """The bot's scheduled end: "leave", then the server closes 1000."""
        if self.state == JOINED:
            self.state = LEAVING
            self._send_message({"t": "leave"})
            self.fleet.at(time.monotonic() + LEAVE_TIMEOUT_S, partial(self._leave_timeout, self.gen))
        elif self.state != LEAVING:
            self._drop_socket()
            self.finish()

    def _leave_timeout(self, gen: int) -> None:
        if gen == self.gen and self.state == LEAVING:
            self._end(0, None)

    def _drop_socket(self) -> None:
        if self.sock is None:
            return
        if self.state == JOINED or self.state == LEAVING:
            meter = self.fleet.meter
            if self.rate_min is not None:
                meter.delta.seated_rate_min.append(self.rate_min)
            meter.connected -= 1
            meter.delta.connected_ms += int((time.monotonic() - self.connected_at) * 1e3)
        try:
            self.fleet.sel.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()
        self.sock = None

    def _end(self, code: int, error: str | None) -> None:
        """The connection is over: count it, then rejoin, join afresh or stop."""
        if self.sock is None:
            return  # already ended (a failed write inside the close handshake)
        leaving = self.state == LEAVING
        self._drop_socket()
        self.state = IDLE
        self.gen += 1
        meter = self.fleet.meter
        if error is not None:
            meter.error(error)
        if leaving:
            self.finish()
            return
        redirect, self.redirect = self.redirect, None
        if redirect:
            self.url = redirect
        if code in FRESH_CODES:
            self.session, self.seq, self.room = None, 0, self.target.room
            self.sent.clear()
        elif not (code == 0 or code in REJOIN_CODES or redirect):
            self.finish()  # refused: full room, bad ticket, protocol error
            return
        now = time.monotonic()
        if self.attempt >= MAX_RECONNECTS or now >= self.fleet.start + self.spec.leave_at:
            self.finish()
            return
        meter.delta.reconnects += 1
        self.fleet.at(now + min(MAX_BACKOFF_S, RETRY_BACKOFF_S * self.attempt), self.connect)
        self.attempt += 1

    def finish(self) -> None:
        if self.state == DONE:
            return
        self._drop_socket()
        self.state = DONE
        self.fleet.done += 1
        meter = self.fleet.meter
        if not self.ever:
            meter.error("never_connected")
        meter.delta.leaves += 1


def run_fleet(bots: list[tuple[BotSpec, Target]], worker: int, *, t0: float, until: float, ship: Callable) -> None:
    """A worker's whole run: ``ship(delta)`` once a second and at the end.
    ``t0`` is the schedule's zero on time.monotonic() (shared by processes)."""
    meter = Meter(worker)
    fleet = Fleet(bots, meter, start=t0)
    cpu = [time.process_time()]

    def report() -> None:
        second = int(time.monotonic() - t0 + 0.5)  # the report ticks at whole seconds
        delta = meter.take(second)
        now_cpu = time.process_time()
        delta.cpu_ms = int((now_cpu - cpu[0]) * 1e3)
        cpu[0] += delta.cpu_ms / 1e3  # keep the remainder for the next interval
        ship(delta)

    fleet.run(until, report=report)
    report()
