"""TLS for the game port (wss://), over the transport's non-blocking socket.

The transport (tickroom.server.transport.websocket) and the outbox (tickroom.server.transport.outbox) drive a plain
non-blocking stdlib socket: ``recv``/``send`` that raise BlockingIOError, and
trio.lowlevel.wait_readable/wait_writable on its file descriptor. ``TlsSocket``
offers that same small interface over ``ssl.SSLContext.wrap_bio`` (an
SSLObject between two MemoryBIOs), so the plain path needs no TLS branch and
stays exactly as fast as before:

    recv:  raw socket -> incoming BIO -> sslobj.read() -> plaintext
    send:  plaintext -> sslobj.write() -> outgoing BIO -> raw socket

Backpressure and latest-wins. Once plaintext is fed to the SSLObject it is
encrypted and cannot be taken back, so ``send`` feeds a frame only when no
ciphertext is waiting; otherwise it refuses (returns 0), and the outbox keeps
the frame, whole, where a newer snapshot may still replace it. When the kernel
takes only part of the ciphertext of a frame, ``send`` reports the frame as
sent but for its last byte: the outbox then holds one byte "pending", which
keeps its flusher waiting for writability and calling ``send`` again. That
byte was fed already; the next ``send`` flushes the ciphertext first and then
counts it as sent (``_owed``). So at most one frame's ciphertext is ever
buffered here, and the outbox's statistics and bounds keep their meaning.
"""

from __future__ import annotations

import socket
import ssl

import trio

RECEIVE_BYTES = 64 * 2**10  # 64 KiB of ciphertext per recv


def load_server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server SSLContext with our certificate chain and key (PEM files).

    TLS 1.2 at least; Python's defaults for ciphers. Raises OSError or
    ssl.SSLError when a file is missing or the key does not match.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class TlsHandshakeFailed(Exception):
    """The peer did not complete a TLS handshake (or spoke no TLS)."""


class TlsSocket:
    """A TLS session over a connected non-blocking socket, socket-shaped.

    Only what the transport and the outbox use: ``recv``, ``send``,
    ``fileno``, ``getpeername``, ``setblocking``, ``close``. Owns ``raw``:
    ``close()`` closes it.
    """

    def __init__(self, raw: socket.socket, context: ssl.SSLContext) -> None:
        raw.setblocking(False)
        self.raw = raw
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._cipher = bytearray()  # ciphertext the kernel did not take yet
        self._owed = 0  # plaintext bytes fed already but reported unsent (0 or 1)
        self._eof = False

    # -- the socket interface ---------------------------------------------

    def fileno(self) -> int:
        return self.raw.fileno()

    def getpeername(self):
        return self.raw.getpeername()

    def setblocking(self, flag: bool) -> None:
        if flag:
            raise ValueError("TlsSocket is non-blocking only")

    def close(self) -> None:
        self.raw.close()

    def close_notify(self) -> None:
        """Send TLS close_notify if the kernel takes it now (best effort:
        it tells the client the stream ended on purpose). Never raises."""
        try:
            self._ssl.unwrap()
        except (ssl.SSLError, OSError, ValueError):
            pass  # SSLWantReadError: the peer's close_notify is not awaited
        try:
            self._flush_cipher()
        except OSError:
            pass

    async def do_handshake(self) -> None:
        """Run the TLS handshake. The caller bounds it with a timeout.

        Raises TlsHandshakeFailed.
        """
        while True:
            try:
                self._ssl.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush_cipher()
                await self._wait_flushed()
                if not self._pull():
                    await trio.lowlevel.wait_readable(self.raw)
            except (ssl.SSLError, OSError) as exc:
                raise TlsHandshakeFailed(str(exc)) from None
        self._flush_cipher()  # our Finished (and TLS 1.3 session tickets)
        await self._wait_flushed()

    def recv(self, bufsize: int) -> bytes:
        """Plaintext, b"" at the end, or BlockingIOError: wait readable.

        Like ``socket.recv``, it returns everything available up to
        ``bufsize`` bytes: every TLS record already decrypted, buffered in
        the incoming BIO or waiting in the kernel, not just the first one.
        ``SSLObject.read`` returns at most one record, and a client usually
        sends each WebSocket message in a record of its own; the room reads
        each player once per tick, so one record per call let a client that
        sends two messages per tick build an ever-growing backlog (its RTT
        climbed by seconds). ``bufsize`` bounds what one call decrypts.
        """
        chunks: list[bytes] = []
        size = 0
        while size < bufsize:
            try:
                data = self._ssl.read(bufsize - size)
            except ssl.SSLWantReadError:
                if self._eof or not self._pull():
                    break
                continue
            except ssl.SSLZeroReturnError:
                self._eof = True  # close_notify: what came before it still counts
                break
            except ssl.SSLError:
                # A broken stream (EOF without close_notify, a bad record):
                # hand over what was read; the next call raises.
                if not chunks:
                    raise
                break
            finally:
                # Reading may produce records to send (alerts, key updates);
                # they go out with the next write if the kernel is full now.
                if self._outgoing.pending:
                    self._flush_cipher()
            if not data:  # close_notify (read() returns b"" for it once received)
                self._eof = True
                break
            chunks.append(data)
            size += len(data)
        if chunks:
            return b"".join(chunks) if len(chunks) > 1 else chunks[0]
        if self._eof:
            return b""
        raise BlockingIOError()

    def send(self, data) -> int:
        """Take plaintext; see the module docstring for what the count means.

        Raises OSError when the socket fails (as socket.send does).
        """
        if self._cipher:
            self._flush_cipher()
            if self._cipher:
                return 0  # still blocked: take nothing new
        taken, self._owed = self._owed, 0
        rest = memoryview(data)[taken:]
        if not rest:
            return taken
        self._ssl.write(rest)  # a memory BIO takes it all
        self._flush_cipher()
        if self._cipher:
            self._owed = 1
            return len(data) - 1
        return len(data)

    # -- internals -----------------------------------------------------------

    def _pull(self) -> bool:
        """Move what the kernel has into the incoming BIO; False if nothing
        was there yet. Raises nothing: a dead socket reads as EOF."""
        try:
            data = self.raw.recv(RECEIVE_BYTES)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._eof = True
            self._incoming.write_eof()
        else:
            self._incoming.write(data)
        return True

    def _flush_cipher(self) -> None:
        """Write ciphertext to the kernel as far as it takes it. Raises
        OSError when the socket fails."""
        if self._outgoing.pending:
            self._cipher += self._outgoing.read()
        if self._cipher:
            try:
                sent = self.raw.send(self._cipher)
            except BlockingIOError:
                return
            del self._cipher[:sent]

    async def _wait_flushed(self) -> None:
        while self._cipher:
            await trio.lowlevel.wait_writable(self.raw)
            self._flush_cipher()
