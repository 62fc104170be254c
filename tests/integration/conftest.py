import pytest

from .harness import running_server

ACK_TIMEOUT_S = "2"


@pytest.fixture(scope="module")
def server():
    """One real server process per test module (rooms keep tests apart)."""
    with running_server("--ack-timeout", ACK_TIMEOUT_S, "--idle-close", "5") as proc:
        yield proc
