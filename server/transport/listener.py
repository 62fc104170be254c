"""The game port: accept loops, per-connection admission, and the table of
live connections.

``Listener.accept_all`` runs one accept loop per listening socket and a task
per accepted connection. Admission happens after the WebSocket upgrade, so a
refused client is told why (an error and a close code: "full" is not
"down"): over ``--max-connections`` or ``--max-connections-per-ip`` it is
refused politely, and past ``MAX_REFUSING`` refusals in progress it is
closed without a word. An admitted connection's fresh join is put to the
``gate`` (the node's load governor, tickroom.server.ops.overload): over
capacity it is refused with 4203 before it reaches a room, while rejoins go
through. ``ConnectionTable`` is what the rest of the node
reads: the live connections, the refused and replaced counts, and an event
for "no connection left" (set by the connection that ends last). Refusals
are also counted by close code (``refused_by_code``): the admission caps
(4201, 4011), the gate (4203) and joins the registry refused (a ticket, a
full room, ...);
tickroom.server.ops.metrics reads them at scrape time.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import trio

from tickroom.protocol.errors import Code
from tickroom.server.rooms.registry import RoomRegistry
from tickroom.server.transport.connection import Connection, ConnectionLimits, JoinGate

log = logging.getLogger(__name__)

# accept() errors that mean "out of resources, try again shortly" (as in
# trio's serve_listeners): the server stays up and sheds the new connection.
_ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
ACCEPT_BACKOFF_S = 0.1
# accept() errors about the queued connection itself (trio's accept skips them too).
_ACCEPT_PEER_ERRNOS = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM}
# Connections taken from the backlog per wake-up of an accept loop.
ACCEPT_BATCH = 32
# Connections being refused politely (upgrade, error, close) at once; past
# this, a refused connection is closed without a word, so that a flood of
# connections over the caps cannot hold unbounded sockets for the handshake
# timeout each.
MAX_REFUSING = 256


@dataclass(frozen=True)
class ConnectionCaps:
    """Admission limits; 0 means no limit."""

    max_connections: int = 0  # per node, in total
    max_connections_per_ip: int = 0  # per source address


class ConnectionTable:
    """The node's live (admitted) connections and the counts of those gone.
    Iterating and ``len()`` see the live ones."""

    def __init__(self) -> None:
        self.live: set[Connection] = set()
        self.refused = 0  # over --max-connections or --max-connections-per-ip
        # close code -> connections refused with it: the caps above and
        # refused joins (never a redirect, which serves the client elsewhere)
        self.refused_by_code: Counter[int] = Counter()
        self.replaced_by_closed = 0  # latest-wins replacements of connections that ended
        self._per_ip: dict[str, int] = {}  # admitted connections by source address
        self._empty = trio.Event()  # set while no connection is live
        self._empty.set()

    def __len__(self) -> int:
        return len(self.live)

    def __iter__(self) -> Iterator[Connection]:
        return iter(self.live)

    def count_refusal(self, code: Code) -> None:
        """One more connection refused over the caps, with ``code``."""
        self.refused += 1
        self.refused_by_code[int(code)] += 1

    def count_join_refusal(self, code: Code) -> None:
        """One more admitted connection whose join was refused with ``code``."""
        self.refused_by_code[int(code)] += 1

    def from_address(self, ip: str) -> int:
        """Live connections from ``ip``."""
        return self._per_ip.get(ip, 0)

    def admit(self, conn: Connection, ip: str) -> None:
        if self._empty.is_set():
            self._empty = trio.Event()
        self.live.add(conn)
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1

    def retire(self, conn: Connection, ip: str) -> None:
        """Forget an ended connection, keeping its count of replaced snapshots."""
        self.live.discard(conn)
        self.replaced_by_closed += conn.ws.outbox.statistics().snapshots_replaced
        left = self._per_ip.pop(ip) - 1
        if left:
            self._per_ip[ip] = left
        if not self.live:
            self._empty.set()

    async def wait_empty(self) -> None:
        """Return once no connection is live (at once if none is)."""
        await self._empty.wait()


class Listener:
    """Accepts game connections, admits or refuses each, and serves it
    against ``registry``. ``on_closed`` is called with each admitted
    connection once it ended (for its final counts)."""

    def __init__(
        self,
        table: ConnectionTable,
        registry: RoomRegistry,
        *,
        limits: ConnectionLimits,
        caps: ConnectionCaps,
        tls: ssl.SSLContext | None,
        on_closed: Callable[[Connection], None],
        gate: JoinGate | None = None,
    ) -> None:
        self.table = table
        self.registry = registry
        self.limits = limits
        self.caps = caps
        self.tls = tls
        self.on_closed = on_closed
        self.gate = gate  # asked before each fresh join (tickroom.server.ops.overload.LoadGovernor)
        self._refusing = 0  # refusals in progress

    async def accept_all(
        self, listeners: Sequence[trio.SocketListener], nursery: trio.Nursery, scope: trio.CancelScope
    ) -> None:
        """Accept on every listener until ``scope`` is cancelled, then close
        the listeners. Connections run in ``nursery``, which outlives this."""
        with scope:
            async with trio.open_nursery() as accepting:
                for listener in listeners:
                    accepting.start_soon(self._accept_loop, listener, nursery)
        for listener in listeners:
            await listener.aclose()

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        # trio's accept() is one connection per scheduler pass: under a burst
        # of connects the backlog drains at the pace of the busiest pass, and
        # clients wait there, unanswered, for seconds. Here each wake-up
        # takes what the backlog holds, up to ACCEPT_BATCH, through a second
        # socket object on the same (non-blocking) descriptor, detached
        # before the listener closes it.
        fd = listener.socket.fileno()
        raw = socket.socket(fileno=fd)
        try:
            while True:
                await trio.lowlevel.wait_readable(fd)
                for _ in range(ACCEPT_BATCH):
                    try:
                        sock, _ = raw.accept()
                    except BlockingIOError:
                        break
                    except OSError as exc:
                        if exc.errno in _ACCEPT_CAPACITY_ERRNOS:
                            log.error("accept failed (%s); retrying in %g s", exc, ACCEPT_BACKOFF_S)
                            await trio.sleep(ACCEPT_BACKOFF_S)
                            break
                        if exc.errno in _ACCEPT_PEER_ERRNOS:
                            continue  # the peer gave up while queued: the next one
                        raise
                    # The connection drives a plain non-blocking socket with trio's
                    # wait_readable/wait_writable, so the tick can write to it
                    # directly (see tickroom.server.transport.outbox).
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    nursery.start_soon(self._serve_connection, sock)
                await trio.lowlevel.checkpoint()  # the accepted ones (and the rooms) run before the next batch
        finally:
            raw.detach()

    async def _serve_connection(self, sock: socket.socket) -> None:
        conn = Connection(sock, self.limits, tls=self.tls)
        ip = conn.peer.rpartition(":")[0]
        refuse = self._over_limit(ip)
        if refuse is not None:
            # Refused after the upgrade, with an error and a close code, so
            # that the client can tell "full" from "down". Refused
            # connections do not count; the handshake and close timeouts
            # bound what each costs.
            self.table.count_refusal(refuse[0])
            if self._refusing >= MAX_REFUSING:
                sock.close()
                return
            self._refusing += 1
            try:
                await conn.serve(self.registry, refuse=refuse)
            finally:
                self._refusing -= 1
            return
        self.table.admit(conn, ip)
        try:
            await conn.serve(self.registry, gate=self.gate)
        finally:
            if conn.join_refused is not None:
                self.table.count_join_refusal(conn.join_refused)
            self.on_closed(conn)
            self.table.retire(conn, ip)

    def _over_limit(self, ip: str) -> tuple[Code, str] | None:
        limit = self.caps.max_connections
        if limit > 0 and len(self.table) >= limit:
            return Code.SERVER_FULL, f"this server holds its maximum of {limit} connections"
        limit = self.caps.max_connections_per_ip
        if limit > 0 and self.table.from_address(ip) >= limit:
            return Code.TOO_MANY_CONNECTIONS, f"your address holds the maximum of {limit} connections"
        return None
