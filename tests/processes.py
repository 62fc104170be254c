"""Real processes in tests: waiting for a condition with a deadline, and
leaving nothing running behind a test of ``tickroom serve --workers``."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any


def wait_for(predicate: Callable[[], Any], what: str, timeout: float, poll_s: float = 0.1) -> Any:
    """The first truthy value of ``predicate()``, polled every ``poll_s``;
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll_s)


def stop_supervisor(parent: subprocess.Popen, worker_pids: Iterable[int] = ()) -> None:
    """After a test of ``--workers``: the parent, if still running, and every
    worker it started (orphans included) are killed."""
    if parent.poll() is None:
        parent.kill()
        parent.wait()
    for pid in worker_pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
