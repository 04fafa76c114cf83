"""Session-scoped Redis servers for the Redis backends and tests/stores/test_redis.py.

Each server starts on first use (a run that selects no Redis test starts none) and is
stopped by PID at the end of the session. They bind 127.0.0.1 on free ports.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._support.servers import RedisCluster, RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A plain redis-server (no TLS, no password)."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_tls_server() -> Iterator[RedisServer]:
    """A TLS-only redis-server whose certificate the test setup generated (``ca_file``)."""
    with RedisServer(tls=True) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A Redis Cluster of three masters, no replicas."""
    with RedisCluster(masters=3) as cluster:
        yield cluster
