"""Session-scoped DynamoDB endpoints on 127.0.0.1 (see tests/_support/servers.py).

Each endpoint starts on first use and serves every test of the run; tests isolate
themselves with a table of their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._support.servers import DynamoDBServer


@pytest.fixture(scope="session")
def dynamodb_local_server() -> Iterator[DynamoDBServer]:
    """Amazon DynamoDB Local (Java, in memory)."""
    with DynamoDBServer(kind="local") as server:
        yield server


@pytest.fixture(scope="session")
def dynamodb_moto_server() -> Iterator[DynamoDBServer]:
    """moto_server."""
    with DynamoDBServer(kind="moto") as server:
        yield server
