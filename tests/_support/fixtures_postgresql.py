"""A session-scoped PostgreSQL on 127.0.0.1 (see tests/_support/servers_postgresql.py).

It starts on first use and serves every test of the run; tests isolate themselves
with a schema of their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._support.servers_postgresql import PostgresServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL cluster (fsync on), stopped by PID at the end of the run."""
    with PostgresServer() as server:
        yield server
