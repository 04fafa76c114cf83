"""Session-scoped MongoDB wire-protocol servers on 127.0.0.1 (see tests/servers.py).

Each server starts on first use and serves every test of the run; tests isolate
themselves with a database of their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers import MongoServer


def _serve(kind: str) -> Iterator[MongoServer]:
    server = MongoServer(kind=kind)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo_nx_server() -> Iterator[MongoServer]:
    """nx-27017 (NeoSQLite in memory)."""
    yield from _serve("nx")


@pytest.fixture(scope="session")
def mongo_mongoeco_server() -> Iterator[MongoServer]:
    """mongoeco's wire proxy (only where Python >= 3.13 is installed)."""
    yield from _serve("mongoeco")
