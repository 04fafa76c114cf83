"""The CLI on PostgreSQL: ``doctor`` knows the backend and its schema version without creating
anything; ``migrate`` copies to and from it, and from py-key-value-aio's ``PostgreSQLStore``."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fastmcp_sessions import Keyring, Store, open_store
from fastmcp_sessions.cli.doctor import Report, _check_transport
from tests._support.cli_runner import CliRunner, assert_one_line_error
from tests._support.servers import free_port
from tests._support.servers_postgresql import PostgresServer

KEY = Keyring.generate_key()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def findings(result: Any, level: str) -> list[str]:
    return [f["message"] for f in result.json()["findings"] if f["level"] == level]


@pytest.fixture
def schema(postgres_server: PostgresServer) -> Iterator[str]:
    name = "t" + secrets.token_hex(6)
    yield name
    postgres_server.psql(f"DROP SCHEMA IF EXISTS {name} CASCADE")


async def fill(store: Store, n: int) -> None:
    for i in range(n):
        await store.put(
            f"key {i}\x00" if i == 7 else f"key {i}",
            {"i": i, "s": "\x00é" * (i % 3)},
            collection=("a", "b/c", "x::y")[i % 3],
            ttl=None if i % 2 else 600 + i,
        )
    await store.close()


async def dump(store: Store) -> dict[tuple[str, str], tuple[Any, float | None]]:
    out = {}
    for collection in await store.collections():
        keys = await store.keys(collection)
        for key, row in zip(keys, await store.ttl_many(keys, collection=collection), strict=True):
            out[(collection, key)] = row
    await store.close()
    return out


def test_doctor_reports_the_schema_version_and_creates_nothing(
    cli: CliRunner, postgres_server: PostgresServer, schema: str
) -> None:
    url = f"{postgres_server.url}?schema={schema}"
    fresh = cli("doctor", "--url", url, "--json")
    assert fresh.code == 0, fresh.all
    report = fresh.json()
    assert report["backend"] == "PostgreSQLStore" and report["reachable"] is True
    assert any("does not exist yet" in m for m in findings(fresh, "info"))
    assert postgres_server.psql(f"SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'") == "0"

    async def make() -> None:
        store = open_store(url)
        await store.put("k", {"v": 1})
        await store.close()

    run(make())
    ready = cli("doctor", "--url", url, "--json")
    assert ready.code == 0, ready.all
    assert ready.json()["latency_ms"] is not None
    assert any("schema version 1 (current)" in m for m in findings(ready, "info"))

    postgres_server.psql(f"UPDATE {schema}.fastmcp_sessions_meta SET schema_version = 99")
    newer = cli("doctor", "--url", url, "--json")
    assert newer.code == 1 and any("upgrade fastmcp-sessions" in m for m in findings(newer, "error"))


def test_doctor_on_an_unreachable_server_hides_the_password(cli: CliRunner) -> None:
    result = cli("doctor", "--url", f"postgresql://app:s3cret-pass@127.0.0.1:{free_port()}/db?timeout=1")
    assert_one_line_error(result, 1)
    assert "unreachable" in result.out and "s3cret-pass" not in result.all


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("postgresql://u:p@db.internal/app", {"TLS"}),
        ("postgresql://u:p@db.internal/app?sslmode=require", {"host name"}),
        ("postgresql://u:p@db.internal/app?sslmode=verify-full&sslrootcert=/ca.pem", set()),
        ("postgres://u:p@127.0.0.1:5432/app", set()),
        ("postgresql:///app?host=/var/run/postgresql", set()),
    ],
)
def test_doctor_transport_warnings(url: str, expect: set[str]) -> None:
    from urllib.parse import parse_qsl, urlsplit

    report = Report(url=url, chosen_by="--url")
    _check_transport(report, url, url.split("://", 1)[0], dict(parse_qsl(urlsplit(url).query)))
    warnings = [m for level, m in report.findings if level == "warning"]
    got = {word for m in warnings for word in ("TLS", "host name") if word in m}
    assert got == expect, report.findings


def test_migrate_to_and_from_postgresql_keeps_names_values_and_ttls(
    cli: CliRunner,
    postgres_server: PostgresServer,
    schema: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    src = f"disk://{tmp_path / 'src.sqlite3'}"
    run(fill(open_store(src), 60))
    pg = f"{postgres_server.url}?schema={schema}&encryption=true"
    to_pg = cli("migrate", src, pg, "--json")
    assert to_pg.code == 0, to_pg.all
    assert to_pg.json()["count_check"] == {"source": 60, "destination": 60, "missing": 0}
    back = f"disk://{tmp_path / 'back.sqlite3'}"
    from_pg = cli("migrate", pg, back, "--json")
    assert from_pg.code == 0, from_pg.all
    before, after = run(dump(open_store(src))), run(dump(open_store(back)))
    assert before.keys() == after.keys() and ("b/c", "key 7\x00") in after
    for name, (value, ttl) in before.items():
        new_value, new_ttl = after[name]
        assert new_value == value
        assert (ttl is None) == (new_ttl is None)
        if ttl is not None and new_ttl is not None:
            assert ttl - 30 < new_ttl <= ttl + 1.0
    assert cli("migrate", src, pg, "--json").json()["total"]["copied"] == 0, "a second run writes nothing"


def test_migrate_from_py_key_value_postgresql(
    cli: CliRunner,
    postgres_server: PostgresServer,
    schema: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from key_value.aio.stores.postgresql import PostgreSQLStore as KvPostgreSQLStore

    table = f"kv_{schema}"

    async def prepare() -> None:
        kv = KvPostgreSQLStore(url=postgres_server.url, table_name=table)
        for i in range(30):
            await kv.put(f"s{i}", {"i": i}, collection="fastmcp_state", ttl=None if i % 2 else 700)
        await kv.put("https://host/mcp/tokens", {"token": "x"}, collection="mcp-oauth-token")
        await kv.put("gone", {"v": 1}, collection="fastmcp_state", ttl=0.05)
        await kv.close()

    run(prepare())
    time.sleep(1.5)  # "gone" has expired for certain, however the peer rounds its TTL
    try:
        monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
        dst = f"{postgres_server.url}?schema={schema}"
        url = postgres_server.url.replace("postgresql://", "kv+postgresql://") + f"?table={table}"
        result = cli("migrate", url, dst, "--json")
        assert result.code == 0, result.all
        assert result.json()["total"]["copied"] == 31
        data = run(dump(open_store(dst)))
        value, ttl = data[("fastmcp_state", "s0")]
        assert value == {"i": 0} and ttl is not None and 650 < ttl <= 700
        assert data[("fastmcp_state", "s1")] == ({"i": 1}, None)
        assert data[("mcp-oauth-token", "https://host/mcp/tokens")] == ({"token": "x"}, None)
        assert ("fastmcp_state", "gone") not in data

        missing = cli("migrate", url.replace(f"table={table}", "table=nope"), dst)
        assert_one_line_error(missing, 1)
        assert "table" in missing.err
    finally:
        postgres_server.psql(f"DROP TABLE IF EXISTS {table}")
