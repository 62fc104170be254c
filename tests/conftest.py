"""Suite-wide test settings, and the real redis-server of the failover tests."""

import pytest
import redis
from hypothesis import HealthCheck, settings

from tests.redis_server import redis_cluster_group, redis_server_process

# Deterministic property tests: the same examples on every run and machine,
# so CI never fails on a draw a developer could not reproduce; no per-example
# deadline or generation-speed check, which measure the machine, not the code.
settings.register_profile(
    "tickroom",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("tickroom")


@pytest.fixture(scope="session")
def redis_server():
    """One real redis-server for the session; tests get it empty (redis_url)."""
    with redis_server_process() as url:
        yield url


@pytest.fixture
def redis_url(redis_server):
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


@pytest.fixture(scope="session")
def redis_cluster():
    """One real Redis Cluster (three masters, one replica each) for the session."""
    with redis_cluster_group() as group:
        yield group


@pytest.fixture
def redis_cluster_url(redis_cluster):
    """The cluster's --redis-url, every master emptied."""
    for port in set(redis_cluster.masters().values()):
        client = redis.Redis(port=port)
        client.flushall()
        client.close()
    return redis_cluster.url
