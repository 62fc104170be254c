"""Store URLs are printed without their secrets (issue 16, item 7): the
redaction itself, then what `tickroom status` and `tickroom serve` print for
a URL carrying a password both ways (real processes, a port nothing listens
on, so the store is unreachable)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tickroom.server.cluster.redaction import UNPARSABLE, redacted

SECRET = "hunter2-s3cret"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        (f"redis://:{SECRET}@db:6379/0", "redis://:***@db:6379/0"),
        (f"redis://app:{SECRET}@db/1", "redis://app:***@db/1"),
        (f"rediss://app:p@ss:{SECRET}@db:6380", "rediss://app:***@db:6380"),  # an unencoded "@" in the password
        (f"redis://db:6379?password={SECRET}", "redis://db:6379?password=***"),
        (f"redis://db?db=2&PASSWORD={SECRET}&socket_timeout=5", "redis://db?db=2&PASSWORD=***&socket_timeout=5"),
        (f"redis://db?p%61ssword={SECRET}", "redis://db?p%61ssword=***"),  # redis-py unquotes parameter names
        (f"redis://db?sentinel_password={SECRET}&ssl_password={SECRET}", "redis://db?sentinel_password=***&ssl_password=***"),
        (f"unix:///run/redis.sock?password={SECRET}&db=0", "unix:///run/redis.sock?password=***&db=0"),
        (f"redis://app@db#{SECRET}", "redis://app@db#***"),
        (f"redis://:{SECRET}@[::1:6379", UNPARSABLE),  # urlsplit refuses it: print nothing of it
    ],
)  # fmt: skip
def test_every_secret_of_a_store_url_is_hidden(url: str, shown: str) -> None:
    assert redacted(url) == shown
    assert SECRET not in redacted(url)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tickroom(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tickroom.server", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_status_names_the_unreachable_store_without_its_password() -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{_closed_port()}/0?password={SECRET}"
    done = _tickroom("status", "--redis-url", url, timeout=60)
    assert done.returncode == 1
    assert "cannot reach redis://:***@127.0.0.1" in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_serve_refuses_a_bad_store_url_without_printing_its_password() -> None:
    done = _tickroom("serve", "--port", "0", "--control-port", "0", "--redis-url", f"nosuch://:{SECRET}@db", timeout=60)
    assert done.returncode == 2
    assert "bad --redis-url nosuch://:***@db" in done.stderr
    assert SECRET not in done.stdout + done.stderr
