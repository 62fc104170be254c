import pytest

from tests.integration.harness import running_server


@pytest.fixture(scope="module")
def server():
    """One real server process (game port and web port) per module."""
    with running_server() as proc:
        assert proc.web_url, proc.log()
        yield proc
