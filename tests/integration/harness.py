"""Real server processes and raw protocol clients for end-to-end tests.

The server runs as ``python -m tickroom.server serve`` on 127.0.0.1 with port 0; the
harness reads the bound port from its log line, waiting with a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from tickroom.protocol import messages as m
from tickroom.protocol.client_session import ClientSession

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0
_LISTENING = re.compile(r"listening on (wss?)://[^:]+:(\d+)")
_CONTROL_LISTENING = re.compile(r"control API listening on (https?://\S+)")


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    url: str
    log_path: Path
    control_url: str = ""  # http://127.0.0.1:PORT of the control API

    @property
    def web_url(self) -> str:
        """Where /play is served: the control API's port."""
        return self.control_url

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM (the graceful path) and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=STOP_TIMEOUT_S)


@contextmanager
def running_server(*args: str) -> Iterator[ServerProcess]:
    """Start a real server process; stop it (SIGTERM) on exit. The control
    API listens on a free port (its URL in ``control_url``) unless ``args``
    choose one."""
    log_file = tempfile.NamedTemporaryFile(prefix="tickroom-", suffix=".log", delete=False)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tickroom.server",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--control-port",
            "0",
            *args,
        ],
        cwd=REPO,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    server = ServerProcess(proc, "", Path(log_file.name))
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            text = server.log()
            found = _LISTENING.search(text)
            if found:
                host = "localhost" if found.group(1) == "wss" else "127.0.0.1"  # wss: the certificate's name
                server.url = f"{found.group(1)}://{host}:{found.group(2)}"
                control = _CONTROL_LISTENING.search(text)
                server.control_url = control.group(1) if control else ""
                break
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server did not start in {START_TIMEOUT_S} s:\n{server.log()}")
            time.sleep(0.02)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log_file.close()


async def eventually(predicate: Callable[[], bool], *, timeout: float = 5.0, what: str = "condition") -> None:
    """Wait until ``predicate()`` holds, failing after ``timeout`` seconds."""
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.01)
        return
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class RawClient:
    """A protocol client on a bare trio-websocket connection, for sending
    exactly the bytes a test wants."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.session = ClientSession()
        self.errors: list[m.Error] = []  # error messages read by expect_close

    async def join(self, room: str, name: str = "raw") -> m.Welcome:
        await self.ws.send_message(self.session.join(room=room, name=name))
        msg = await self.next_message()
        assert isinstance(msg, m.Welcome), msg
        return msg

    async def next_message(self, *, skip_snapshots: bool = True, ack: bool = True) -> m.ServerMessage:
        """The next server message; snapshots are applied (and acked) and
        skipped unless ``skip_snapshots`` is false."""
        while True:
            msg = self.session.receive(await self.ws.get_message())
            if isinstance(msg, m.Snapshot):
                if ack:
                    await self.ws.send_message(self.session.ack())
                if skip_snapshots:
                    continue
            return msg

    async def expect_error(self, code: int) -> m.Error:
        msg = await self.next_message()
        assert isinstance(msg, m.Error), msg
        assert msg.code == code, msg
        return msg

    async def expect_close(self, code: int) -> None:
        """Read until the server closes; the close code must be ``code``."""
        try:
            while True:
                msg = await self.next_message(ack=False)
                if isinstance(msg, m.Error):
                    self.errors.append(msg)
        except ConnectionClosed as exc:
            assert exc.reason.code == code, exc.reason


@asynccontextmanager
async def raw_client(url: str) -> AsyncIterator[RawClient]:
    async with open_websocket_url(url) as ws:
        try:
            yield RawClient(ws)
        finally:
            # Take what is still arriving so trio-websocket's reader can
            # finish the close handshake instead of timing out.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_drain, ws)
                await ws.aclose()
                nursery.cancel_scope.cancel()


async def _drain(ws: WebSocketConnection) -> None:
    try:
        while True:
            await ws.get_message()
    except ConnectionClosed:
        pass
