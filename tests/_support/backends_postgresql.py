"""PostgreSQL backends for the conformance and session-layer suites: plain and encrypted.

Every test gets a schema of its own (the ``schema=`` URL option), so tests share the
session's server without seeing each other's data, and every table is schema-qualified.
"""

from __future__ import annotations

import contextlib

import pytest

from fastmcp_sessions import open_store
from tests._support.backends import TEST_KEY, Backend, backend
from tests._support.servers_postgresql import PostgresServer


def _postgresql(request: pytest.FixtureRequest, namespace: str, name: str, query: str) -> Backend:
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = f"{server.url}?schema={namespace}{query}"

    def drop() -> None:
        with contextlib.suppress(RuntimeError):
            server.psql(f"DROP SCHEMA IF EXISTS {namespace} CASCADE")

    request.addfinalizer(drop)
    env = {"FASTMCP_SESSIONS_KEYS": TEST_KEY} if "encryption" in query else {}
    return Backend(name, lambda: open_store(url, **({"keys": [TEST_KEY]} if env else {})), url=url, env=env)


@backend("postgresql")
def _plain(request: pytest.FixtureRequest, namespace: str) -> Backend:
    return _postgresql(request, namespace, "postgresql", "")


@backend("postgresql+encrypted")
def _encrypted(request: pytest.FixtureRequest, namespace: str) -> Backend:
    return _postgresql(request, namespace, "postgresql+encrypted", "&encryption=true")
