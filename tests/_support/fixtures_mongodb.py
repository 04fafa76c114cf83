"""Session-scoped MongoDB wire-protocol servers on 127.0.0.1 (see tests/_support/servers.py).

Each server starts on first use and serves every test of the run; tests isolate
themselves with a database of their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._support.servers import MongoServer


@pytest.fixture(scope="session")
def mongo_nx_server() -> Iterator[MongoServer]:
    """nx-27017 (NeoSQLite in memory)."""
    with MongoServer(kind="nx") as server:
        yield server


@pytest.fixture(scope="session")
def mongo_mongoeco_server() -> Iterator[MongoServer]:
    """mongoeco's wire proxy (only where Python >= 3.13 is installed)."""
    with MongoServer(kind="mongoeco") as server:
        yield server
