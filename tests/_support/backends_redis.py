"""Redis backends for the conformance suite: a plain server (pipelined, the default, and
with pipelining=false), a TLS-only server and a three-master Redis Cluster, all real and
started by tests/_support/fixtures_redis.py.

Every test gets its own key namespace (the ``namespace=`` URL option), so tests share
the session's servers without seeing each other's data.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from fastmcp_sessions import open_store
from tests._support.backends import Backend, backend


def _redis_backend(name: str, url: str) -> Backend:
    return Backend(name, lambda: open_store(url), url=url)


@backend("redis")
def _redis(request: pytest.FixtureRequest, namespace: str) -> Backend:
    server = request.getfixturevalue("redis_server")
    return _redis_backend("redis", f"{server.url}?namespace={namespace}")


@backend("redis-unpipelined")
def _redis_unpipelined(request: pytest.FixtureRequest, namespace: str) -> Backend:
    # pipelining=false: one pooled redis-py connection per command in flight.
    server = request.getfixturevalue("redis_server")
    return _redis_backend("redis-unpipelined", f"{server.url}?namespace={namespace}&pipelining=false")


@backend("redis-tls")
def _redis_tls(request: pytest.FixtureRequest, namespace: str) -> Backend:
    server = request.getfixturevalue("redis_tls_server")
    ca = quote(str(server.ca_file), safe="")
    return _redis_backend("redis-tls", f"{server.url}?namespace={namespace}&ssl_ca_certs={ca}")


@backend("redis-cluster")
def _redis_cluster(request: pytest.FixtureRequest, namespace: str) -> Backend:
    cluster = request.getfixturevalue("redis_cluster")
    return _redis_backend("redis-cluster", f"{cluster.url}?namespace={namespace}")


@backend("redis-cluster-spread")
def _redis_cluster_spread(request: pytest.FixtureRequest, namespace: str) -> Backend:
    # colocate=false: a collection's keys spread over all three masters, so every batch
    # really is split by slot and node.
    cluster = request.getfixturevalue("redis_cluster")
    return _redis_backend("redis-cluster-spread", f"{cluster.url}?namespace={namespace}&colocate=false")
