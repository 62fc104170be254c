"""``tickroom serve --workers N``: N node processes on one machine.

The parent runs no rooms. It starts N children (``python -m tickroom.server serve``
with the same flags), worker i on game port ``--port`` + 2i and control
port ``--control-port`` + 2i (a base of 0 stays 0: free ports), node id
``<node-id or host name>-w<i>``; they share rooms through the Redis of
``--redis-url``, so the rooms of a worker that dies fail over to the others
while the parent restarts it (after a bounded backoff). SIGTERM or SIGINT
to the parent is forwarded to every worker, which drains; the parent exits
0 once all have exited. A worker whose parent is gone (SIGKILL) drains
itself rather than run unsupervised.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess  # nosec B404 - PIPE and STDOUT only: workers start through trio, argv lists, no shell
import sys

import trio

from tickroom.server.config import ServerConfig

log = logging.getLogger("tickroom.workers")

RESTART_DELAY_S = 0.5  # first restart delay; doubles per quick death
MAX_RESTART_DELAY_S = 10.0
STABLE_S = 30.0  # a worker that lived this long restarts at the first delay again
SUPERVISOR_ENV = "TICKROOM_SUPERVISOR_PID"  # a worker whose parent is gone drains itself
ORPHAN_CHECK_S = 1.0


async def stop_when_orphaned(stop) -> None:
    """In a worker: call ``stop()`` once the supervising parent is gone
    (killed with SIGKILL, say), so no worker outlives it."""
    parent = int(os.environ.get(SUPERVISOR_ENV, "0") or 0)
    if not parent:
        return
    while os.getppid() == parent:
        await trio.sleep(ORPHAN_CHECK_S)
    log.warning("supervisor (pid %d) is gone: stopping this worker", parent)
    stop()


def worker_count(text: str) -> int:
    """``--workers`` value: N >= 1, or 0 / ``auto`` for one per CPU."""
    if text.strip().lower() in ("0", "auto"):
        return os.cpu_count() or 1
    count = int(text)
    if count < 0:
        raise ValueError("--workers must be >= 0")
    return count


# Worker i's ports are the bases plus PORT_STEP * i. A step of 2 interleaves
# the two kinds: with the defaults (7350 game, 7351 control) the game ports
# are 7350, 7352, ... and the control ports 7351, 7353, ...; N workers use the
# block 7350 to 7350 + 2N - 1 and never collide, whatever N. (A step of 1
# put worker 1's game port on worker 0's control port.) Worker 0 keeps the
# ports of a single node.
PORT_STEP = 2


def worker_ports(config: ServerConfig, index: int) -> tuple[int, int | None]:
    """Worker ``index``'s game port and control port (None: no control API).
    A base of 0 stays 0: each worker takes a free port."""
    game = config.port + PORT_STEP * index if config.port else 0
    control = config.control_port
    if control:
        control += PORT_STEP * index
    return game, control


def port_clash(config: ServerConfig, count: int) -> int | None:
    """A port that two of ``count`` workers would both bind, or None."""
    seen: set[int] = set()
    for index in range(count):
        for port in worker_ports(config, index):
            if port:
                if port in seen:
                    return port
                seen.add(port)
    return None


def worker_args(argv: list[str], config: ServerConfig, index: int) -> list[str]:
    """The child's command line: the parent's flags, then the ones that
    differ per worker (argparse keeps the last occurrence of a flag)."""
    base = config.node_id or socket.gethostname()
    game, control = worker_ports(config, index)
    extra = ["--workers", "1", "--node-id", f"{base}-w{index}", "--port", str(game)]
    if control is not None:
        extra += ["--control-port", str(control)]
    return [sys.executable, "-m", "tickroom.server", *argv, *extra]


class Supervisor:
    def __init__(self, argv: list[str], config: ServerConfig, count: int) -> None:
        self.commands = [worker_args(argv, config, i) for i in range(count)]
        # Text logs: each worker's lines prefixed with [w<i>] (JSON lines
        # carry their node_id already and pass through untouched).
        self.prefix = config.log_format == "text"
        self.procs: dict[int, trio.Process] = {}
        self.stopping = False
        self.restarts = 0

    async def run(self) -> int:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._forward, signals)
                async with trio.open_nursery() as workers:
                    for index in range(len(self.commands)):
                        workers.start_soon(self._keep, index)
                nursery.cancel_scope.cancel()
        log.info("all %d workers exited", len(self.commands))
        return 0

    async def _forward(self, signals) -> None:
        async for signum in signals:
            name = signal.Signals(signum).name
            log.info("signal %s: forwarding to %d workers", name, len(self.procs))
            self.stopping = True
            for proc in list(self.procs.values()):
                if proc.returncode is None:
                    proc.send_signal(signum)

    async def _keep(self, index: int) -> None:
        """Run worker ``index``; restart it when it dies, until a signal."""
        delay = RESTART_DELAY_S
        env = {**os.environ, "TICKROOM_WORKERS": "1", "PYTHONUNBUFFERED": "1", SUPERVISOR_ENV: str(os.getpid())}
        while not self.stopping:
            started = trio.current_time()
            # Its own process group: a Ctrl-C at the terminal reaches the
            # workers once, through the parent, not twice (twice = stop now).
            proc = await trio.lowlevel.open_process(  # noqa: S603  # nosec B603 - our own interpreter and module, argv list, no shell
                self.commands[index],
                env=env,
                process_group=0,
                stdout=subprocess.PIPE if self.prefix else None,
                stderr=subprocess.STDOUT if self.prefix else None,
            )
            self.procs[index] = proc
            log.info("worker w%d started: pid %d", index, proc.pid)
            try:
                async with trio.open_nursery() as nursery:
                    if proc.stdout is not None:
                        nursery.start_soon(_relay, proc.stdout, f"[w{index}] ".encode())
                    code = await proc.wait()
            finally:
                if proc.returncode is None:  # the parent itself is being cancelled
                    proc.kill()
            if self.stopping:
                log.info("worker w%d (pid %d) exited with %d", index, proc.pid, code)
                return
            if trio.current_time() - started >= STABLE_S:
                delay = RESTART_DELAY_S
            self.restarts += 1
            log.warning("worker w%d (pid %d) died with %d; restarting in %.1f s", index, proc.pid, code, delay)
            with trio.move_on_after(delay):
                while not self.stopping:
                    await trio.sleep(0.05)
            delay = min(delay * 2, MAX_RESTART_DELAY_S)


async def _relay(stream: trio.abc.ReceiveStream, prefix: bytes) -> None:
    """Copy a worker's output to ours, each line prefixed, until EOF."""
    pending = b""
    out = sys.stdout.buffer
    async for chunk in stream:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if lines:
            out.write(b"".join(prefix + line + b"\n" for line in lines))
            out.flush()
    if pending:
        out.write(prefix + pending + b"\n")
        out.flush()


def supervise(argv: list[str], config: ServerConfig, count: int) -> int:
    """Run ``count`` workers until a signal; the process exit code."""
    return trio.run(Supervisor(argv, config, count).run)
