"""Two replicas of one FastMCP app (tests/_support/workers/replica_app.py), each its own uvicorn
process, on one PostgreSQL store through ``server_storage``: a client listening with the MCP
SDK's ``subscriptions/listen`` (2026-07-28, over ``fastmcp.Client``'s HTTP transport) on
replica A hears every update published on replica B, in the order B published them, and the
events went through the store's events table."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastmcp import Client
from mcp.client.subscriptions import listen
from mcp.shared.subscriptions import ResourceUpdated

from fastmcp_sessions import Keyring
from fastmcp_sessions.stores.postgresql import DEFAULT_TABLE
from tests._support import WORKERS
from tests._support.replicas import start_replicas
from tests._support.servers_postgresql import PostgresServer

APP = WORKERS / "replica_app.py"
UPDATES = 60
MARGIN = 30.0  # seconds; latency is measured in benchmarks/bench_bus.py, not asserted here


@dataclass
class Fleet:
    postgres: PostgresServer
    schema: str
    server_name: str
    urls: dict[str, str]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer) -> Iterator[Fleet]:
    schema = "replicas_" + secrets.token_hex(4)
    name = "pg-replicas-" + secrets.token_hex(4)
    env = {
        "FASTMCP_SESSIONS_KEYS": Keyring.generate_key(),
        "FASTMCP_SESSIONS_URL": f"{postgres_server.url}?schema={schema}",
        "SERVER_NAME": name,
    }
    home = tmp_path_factory.mktemp("pg-replicas")
    with start_replicas(APP, ("A", "B"), home=home, env=env) as replicas:
        yield Fleet(postgres_server, schema, name, {label: r.url for label, r in replicas.items()})


async def test_a_listener_on_a_gets_every_update_published_on_b_in_order(fleet: Fleet) -> None:
    uris = [f"res://doc/{i}" for i in range(UPDATES)]
    # Entering listen() returns once A acknowledged, and A acknowledges once its bus is listening.
    async with (
        Client(fleet.urls["A"]) as on_a,
        Client(fleet.urls["B"]) as on_b,
        listen(on_a.session, resource_subscriptions=uris) as subscription,
    ):

        async def collect() -> list[str]:
            got: list[str] = []
            async for event in subscription:
                assert isinstance(event, ResourceUpdated), event
                got.append(event.uri)
                if len(got) == UPDATES:
                    break
            return got

        collecting = asyncio.create_task(collect())
        for uri in uris:
            answered = await on_b.call_tool("update", {"uri": uri})
            assert answered.data == "B"  # published on B, not on A
        heard = await asyncio.wait_for(collecting, MARGIN)
    assert heard == uris

    # The updates crossed through PostgreSQL: B's bus wrote one row per update to the events table.
    rows = fleet.postgres.psql(
        f'SELECT count(*) FROM "{fleet.schema}"."{DEFAULT_TABLE}_events" WHERE server = \'{fleet.server_name}\''
    )
    assert int(rows) >= UPDATES
