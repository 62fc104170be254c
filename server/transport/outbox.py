"""Everything one client is sent, written straight to its socket.

Two kinds of frames, one socket:
- reliable frames (welcome, pong, error, close) are written in order and never
  dropped; they are rare and small, and their backlog is bounded;
- snapshot frames go through a latest-wins slot: when the socket cannot take
  a snapshot now, it replaces the one waiting, so a slow client costs one
  pending frame, never a growing queue, and never slows the room.

Writes go straight to the non-blocking socket from the caller (the room's
tick, right after it encoded the snapshot: ~12 us instead of ~50 us for an
awaited send_all, see docs/benchmarks.md, "Send path"). Only what the kernel refuses waits in
``_pending`` for ``run()``, the one task per connection that waits for the
socket to become writable. Frames are written whole or continue from where the
kernel stopped, so two frames never interleave on the stream.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import trio

#: Reliable bytes we hold for a client that does not read before giving up on
#: it. Snapshots do not count: there is at most one of them waiting.
MAX_PENDING_BYTES = 256 * 2**10  # 256 KiB


class OutboxOverflow(Exception):
    """A client stopped reading and its reliable backlog went over the limit."""


class OutboxClosed(Exception):
    """The socket failed or the outbox was closed; nothing more is sent."""


@dataclass(frozen=True)
class OutboxStatistics:
    frames_sent: int
    bytes_sent: int
    snapshots_replaced: int  # latest-wins replacements (the client was slow)
    pending_bytes: int


class Outbox:
    """Frames to one socket. Sync methods never block; ``run()`` is the flusher.

    The outbox does not own the socket; whoever created it closes it, after
    ``close()`` here.
    """

    def __init__(self, sock: socket.socket, *, max_pending_bytes: int = MAX_PENDING_BYTES) -> None:
        self._sock = sock
        self._max_pending = max_pending_bytes
        self._pending = bytearray()
        self._latest: bytes | None = None
        self._wake = trio.Event()
        self._drained = trio.Event()
        self._drained.set()
        self.closed = False
        self.error: BaseException | None = None
        self._frames = 0
        self._bytes = 0
        self._replaced = 0

    # -- called by anyone, never blocks ----------------------------------

    def send(self, frame: bytes) -> None:
        """Queue a reliable frame behind everything queued before it.

        Raises OutboxOverflow past the backlog limit, OutboxClosed after close.
        """
        if self.closed:
            raise OutboxClosed("outbox closed")
        if self._pending:
            if len(self._pending) + len(frame) > self._max_pending:
                raise OutboxOverflow(f"client is not reading: over {self._max_pending} bytes pending")
            self._pending += frame
            self._frames += 1
        else:
            self._write(frame)
        self._after_write()

    def offer(self, frame: bytes) -> None:
        """Send a snapshot now if the socket takes it, else make it the one
        waiting (replacing an older one). Silently dropped after close."""
        if self.closed:
            return
        if self._pending:
            if self._latest is not None:
                self._replaced += 1
            self._latest = frame
            self._wake.set()
            return
        self._write(frame)
        if self._pending:  # else nothing changed: it was drained and still is
            self._after_write()

    def close(self) -> None:
        """Stop sending; a waiting snapshot is dropped. Idempotent."""
        self.closed = True
        self._latest = None
        self._wake.set()

    # -- the flusher task ------------------------------------------------------

    async def run(self) -> None:
        """Write what the kernel refused as the socket becomes writable.

        Returns when the outbox is closed and the reliable backlog is written;
        raises OutboxClosed if the socket fails.
        """
        while True:
            if self.error is not None:
                raise OutboxClosed(f"socket failed: {self.error}")
            if self._pending:
                await trio.lowlevel.wait_writable(self._sock)
                self._flush_pending()
                continue
            if self._latest is not None:
                frame, self._latest = self._latest, None
                self._write(frame)
                continue
            if self.closed:
                return
            self._wake = trio.Event()
            await self._wake.wait()

    async def wait_drained(self) -> None:
        """Wait until nothing reliable is pending (e.g. before closing)."""
        await self._drained.wait()

    def statistics(self) -> OutboxStatistics:
        return OutboxStatistics(self._frames, self._bytes, self._replaced, len(self._pending))

    # -- internals -------------------------------------------------------------

    def _write(self, frame: bytes) -> None:
        self._frames += 1
        try:
            sent = self._sock.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._fail(exc)
            return
        self._bytes += sent
        if sent < len(frame):
            self._pending += memoryview(frame)[sent:]

    def _flush_pending(self) -> None:
        try:
            sent = self._sock.send(self._pending)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(exc)
            return
        self._bytes += sent
        del self._pending[:sent]
        self._after_write()

    def _after_write(self) -> None:
        if self._pending:
            if self._drained.is_set():
                self._drained = trio.Event()
            self._wake.set()
        else:
            self._drained.set()

    def _fail(self, exc: OSError) -> None:
        self.error = exc
        self.closed = True
        self._pending.clear()
        self._latest = None
        self._drained.set()
        self._wake.set()
