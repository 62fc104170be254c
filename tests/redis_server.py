"""A real redis-server process for the failover tests, on a free port in a
temp dir, without persistence. A missing redis-server fails the test loudly
(scripts/run-tests.sh installs it); it is never skipped."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

START_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def redis_server_process(port: int | None = None) -> Iterator[str]:
    """Start redis-server; yield its URL; stop it on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server; see scripts/run-tests.sh)")
    port = port or _free_port()
    with tempfile.TemporaryDirectory(prefix="tickroom-redis-") as tmp:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                try:
                    if client.ping():
                        break
                except redis.ConnectionError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {proc.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis-server did not answer PING in {START_TIMEOUT_S} s")
                time.sleep(0.02)
            client.close()
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
