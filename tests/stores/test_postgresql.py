"""PostgreSQLStore beyond the shared contract, against a real PostgreSQL started by the tests.

The conformance and session suites already run on it (tests/_support/backends_postgresql.py).
These tests cover what is PostgreSQL's own: the table layout and schema version, NUL in
names and values, exact JSON, pools passed in, the purge, statements per batch, contention
between processes racing the table's creation, and a crash mid-stream.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from fastmcp_sessions import EncryptedStore, Keyring, open_store
from fastmcp_sessions.errors import (
    DeserializationError,
    EntryTooLargeError,
    StoreConnectionError,
    StoreSetupError,
    ValueTooLargeError,
    key_ref,
)
from fastmcp_sessions.stores import postgresql
from fastmcp_sessions.stores.postgresql import SCHEMA_VERSION, PostgreSQLStore, digest
from tests._support import WORKERS
from tests._support.servers_postgresql import PostgresServer

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def schema(postgres_server: PostgresServer) -> Iterator[str]:
    name = "t" + secrets.token_hex(6)
    yield name
    postgres_server.psql(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
async def raw(postgres_server: PostgresServer) -> AsyncIterator[asyncpg.Connection]:
    """A plain asyncpg connection, to look under the store."""
    conn = await asyncpg.connect(postgres_server.url)
    yield conn
    await conn.close()


@pytest.fixture
async def pstore(postgres_server: PostgresServer, schema: str) -> AsyncIterator[PostgreSQLStore]:
    s = PostgreSQLStore(f"{postgres_server.url}?schema={schema}")
    yield s
    await s.close()


async def _row(raw: asyncpg.Connection, schema: str, collection: str, key: str) -> asyncpg.Record | None:
    return await raw.fetchrow(
        f"SELECT * FROM {schema}.fastmcp_sessions WHERE cid = $1 AND kid = $2",
        digest(collection),
        digest(key),
    )


# -- layout -------------------------------------------------------------------------------


async def test_one_row_per_entry_keyed_by_digests_with_the_names_beside_them(
    pstore: PostgreSQLStore, raw: asyncpg.Connection, schema: str
) -> None:
    before = await raw.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8")
    await pstore.put("user-42", {"b": 1, "a": [1.5, None]}, collection="users", ttl=100.0005)
    row = await _row(raw, schema, "users", "user-42")
    assert row is not None
    assert (row["collection"], row["key"], row["escaped"]) == ("users", "user-42", 0)
    assert len(row["cid"]) == len(row["kid"]) == 32
    assert row["value"] == '{"b":1,"a":[1.5,null]}', "the JSON text is kept exactly, key order included"
    assert before + 100 < row["expires"] < before + 101, "expiry on the server's clock, sub-second"
    await pstore.put("user-42", {"v": 2}, collection="users")
    row2 = await _row(raw, schema, "users", "user-42")
    assert row2 is not None and row2["expires"] is None and row2["version"] != row["version"]
    # The primary key holds digests only: no name of any length can overflow a B-tree entry.
    key_columns = await raw.fetch(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY a.attnum",
        f"{schema}.fastmcp_sessions",
    )
    assert [(r["attname"], r["type"]) for r in key_columns] == [("cid", "bytea"), ("kid", "bytea")]
    indexes = await raw.fetch("SELECT indexdef FROM pg_indexes WHERE schemaname = $1", schema)
    assert any("(expires) WHERE (expires IS NOT NULL)" in r["indexdef"] for r in indexes), indexes
    assert await raw.fetchval(f"SELECT schema_version FROM {schema}.fastmcp_sessions_meta") == SCHEMA_VERSION


async def test_a_schema_qualified_table_beside_a_same_named_one_elsewhere(
    postgres_server: PostgresServer, raw: asyncpg.Connection, schema: str
) -> None:
    # A table of the same name in another schema (here "public", someone else's) must not
    # make the store believe its own exists.
    await raw.execute("CREATE TABLE IF NOT EXISTS public.kv_other (x int)")
    await raw.execute(f"CREATE SCHEMA {schema}")
    await raw.execute(f"CREATE TABLE {schema}.kv_other (x int)")
    other = f"{schema}_b"
    try:
        async with PostgreSQLStore(f"{postgres_server.url}?schema={other}&table=kv_other") as s:
            await s.put("k", {"v": 1})
            assert await s.get("k") == {"v": 1}
            assert s.qualified_table == f'"{other}"."kv_other"'
        assert await raw.fetchval(f"SELECT count(*) FROM {other}.kv_other") == 1
        assert await raw.fetchval(f"SELECT count(*) FROM {schema}.kv_other") == 0
        # ... and a foreign table with our name but no _meta table is refused, not used.
        async with PostgreSQLStore(f"{postgres_server.url}?schema={schema}&table=kv_other") as s:
            with pytest.raises(StoreSetupError, match="did not create it"):
                await s.get("k")
    finally:
        await raw.execute(f"DROP SCHEMA IF EXISTS {other} CASCADE")
        await raw.execute("DROP TABLE IF EXISTS public.kv_other")


async def test_create_table_false_refuses_a_missing_table(
    postgres_server: PostgresServer, schema: str
) -> None:
    async with PostgreSQLStore(f"{postgres_server.url}?schema={schema}&create_table=false") as s:
        with pytest.raises(StoreSetupError, match="does not exist"):
            await s.put("k", {"v": 1})
        assert await s.schema_version() is None


async def test_schema_versions_migrate_forward_only_when_asked(
    postgres_server: PostgresServer,
    raw: asyncpg.Connection,
    schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"{postgres_server.url}?schema={schema}"
    async with PostgreSQLStore(url) as s:
        await s.put("k", {"v": 1})
        assert await s.schema_version() == SCHEMA_VERSION
        assert await s.migrate_schema() == (SCHEMA_VERSION, SCHEMA_VERSION)  # idempotent
    # A table left at an older version, and a step that brings it forward.
    meta = f"{schema}.fastmcp_sessions_meta"
    await raw.execute(f"UPDATE {meta} SET schema_version = $1", SCHEMA_VERSION - 1)
    monkeypatch.setitem(
        postgresql._MIGRATIONS, SCHEMA_VERSION - 1, ["COMMENT ON TABLE {table} IS 'migrated'"]
    )
    async with PostgreSQLStore(url) as s:
        with pytest.raises(StoreSetupError, match="migrate_schema"):
            await s.get("k")
        assert await s.migrate_schema() == (SCHEMA_VERSION - 1, SCHEMA_VERSION)
        assert await s.get("k") == {"v": 1}
    comment = await raw.fetchval(
        "SELECT obj_description($1::regclass, 'pg_class')", f"{schema}.fastmcp_sessions"
    )
    assert comment == "migrated"
    assert await raw.fetchval(f"SELECT schema_version FROM {meta}") == SCHEMA_VERSION
    # ?migrate=true does it on first use
    await raw.execute(f"UPDATE {meta} SET schema_version = $1", SCHEMA_VERSION - 1)
    async with PostgreSQLStore(url + "&migrate=true") as s:
        assert await s.get("k") == {"v": 1}
    assert await raw.fetchval(f"SELECT schema_version FROM {meta}") == SCHEMA_VERSION
    # A newer table than this code knows is never touched.
    await raw.execute(f"UPDATE {meta} SET schema_version = $1", SCHEMA_VERSION + 1)
    async with PostgreSQLStore(url + "&migrate=true") as s:
        with pytest.raises(StoreSetupError, match="upgrade fastmcp-sessions"):
            await s.get("k")
    # ... and a _meta table emptied by hand is reported, not taken for a missing table.
    await raw.execute(f"DELETE FROM {meta}")
    async with PostgreSQLStore(url) as s:
        with pytest.raises(StoreSetupError, match="holds no schema version"):
            await s.get("k")


# -- values and names ---------------------------------------------------------------------

NUL_VALUES = [
    {"s": "a\x00b"},
    {"nul\x00key": 1},
    {"deep": [1, {"x": ["\x00"]}]},
    {"\x00": "\x00\x00"},
]


@pytest.mark.parametrize("value", NUL_VALUES, ids=range(len(NUL_VALUES)))
async def test_values_jsonb_cannot_hold_round_trip_exactly(
    pstore: PostgreSQLStore, value: dict[str, Any]
) -> None:
    await pstore.put("k", value)
    assert await pstore.get("k") == value
    assert await pstore.get_many(["k", "missing"]) == [value, None]
    await pstore.put_many(["m1", "m2"], [value, value], ttl=60)
    assert await pstore.get_many(["m1", "m2"]) == [value, value]
    assert await pstore.update("k", lambda v: {**(v or {}), "n\x00": "\x00"}) == {**value, "n\x00": "\x00"}
    assert await pstore.put_if_absent("k2", value) is True
    assert await pstore.get("k2") == value


async def test_names_with_nul_are_stored_listed_and_kept_apart(
    pstore: PostgreSQLStore, raw: asyncpg.Connection, schema: str
) -> None:
    pairs = [
        ("c\x00", "k"),
        ("c", "\x00k"),
        ("c", '"\\u0000k"'),
        ("\x00", "\x00"),
        ('"\\u0000"', '"\\u0000"'),
    ]
    for i, (c, k) in enumerate(pairs):
        await pstore.put(k, {"i": i}, collection=c)
    for i, (c, k) in enumerate(pairs):
        assert await pstore.get(k, collection=c) == {"i": i}
    assert sorted(await pstore.keys("c")) == sorted(["\x00k", '"\\u0000k"'])
    assert set(await pstore.collections()) == {"c\x00", "c", "\x00", '"\\u0000"'}
    row = await _row(raw, schema, "c\x00", "k")
    assert row is not None and row["collection"] == '"c\\u0000"' and row["escaped"] == 1
    await pstore.put_many(["a\x00", "b"], [{"v": 1}, {"v": 2}], collection="\x00")
    assert sorted(await pstore.keys("\x00")) == ["\x00", "a\x00", "b"]
    assert await pstore.delete_many(["a\x00", "b", "zz"], collection="\x00") == 2
    assert await pstore.destroy_collection("c\x00") is True
    assert await pstore.get("k", collection="c\x00") is None


async def test_json_the_way_python_wrote_it(pstore: PostgreSQLStore) -> None:
    # jsonb would turn 1e16 into an int, drop the sign of -0.0 and reorder keys.
    value = {"z": 1e16, "neg0": -0.0, "a": 2**70, "tiny": 5e-324, "sum": 0.1 + 0.2, "é": "鍵"}
    await pstore.put("k", value)
    got = await pstore.get("k")
    assert got == value and got is not None
    assert list(got) == list(value)
    assert type(got["z"]) is float and str(got["neg0"]) == "-0.0" and type(got["a"]) is int


async def test_longest_names_and_a_large_value(pstore: PostgreSQLStore) -> None:
    collection, key = "c" * 255, "é" * 512
    big = {"blob": "x" * (4 * 1024 * 1024)}
    await pstore.put(key, big, collection=collection)
    assert await pstore.get(key, collection=collection) == big
    assert await pstore.keys(collection) == [key]


async def test_too_large_values_are_refused_before_anything_is_sent(
    pstore: PostgreSQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgresql._sql, "MAX_VALUE_BYTES", 1000)  # where values are encoded
    with pytest.raises(EntryTooLargeError) as info:
        await pstore.put("big", {"x": "y" * 2000})
    assert (
        isinstance(info.value, ValueTooLargeError)
        and key_ref("big") in str(info.value)
        and "'big'" not in str(info.value)
    )
    with pytest.raises(ValueTooLargeError):
        await pstore.put_many(["small", "big"], [{"v": 1}, {"x": "y" * 2000}])
    assert await pstore.get_many(["small", "big"]) == [None, None]


async def test_foreign_rows_are_a_deserialization_error(
    pstore: PostgreSQLStore, raw: asyncpg.Connection, schema: str
) -> None:
    await pstore.put("k", {"v": 1})
    await raw.execute(f"UPDATE {schema}.fastmcp_sessions SET value = '[1, 2]'")
    with pytest.raises(DeserializationError, match="another program"):
        await pstore.get("k")


# -- expiry and purge ---------------------------------------------------------------------


async def test_expired_rows_are_filtered_in_sql_and_purged_through_the_index(
    pstore: PostgreSQLStore, raw: asyncpg.Connection, schema: str
) -> None:
    table = f"{schema}.fastmcp_sessions"
    keys = [f"k{i}" for i in range(1234)]
    await pstore.put_many(keys, [{"i": i} for i in range(1234)], ttl=0.2)
    await pstore.put("kept", {"v": 1})
    await pstore.put("later", {"v": 2}, ttl=300)
    await asyncio.sleep(0.4)
    assert await raw.fetchval(f"SELECT count(*) FROM {table}") == 1236, "still there, but expired"
    assert await pstore.get_many(keys[:3]) == [None, None, None]
    assert sorted(await pstore.keys()) == ["kept", "later"]
    assert await pstore.delete_many(keys) == 0
    await raw.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in await raw.fetch("EXPLAIN " + pstore._sql["purge"].replace("$1", "500")))
    assert "fastmcp_sessions_expires" in plan, plan
    await pstore.cull()  # several batches of PURGE_BATCH
    assert await raw.fetchval(f"SELECT count(*) FROM {table}") == 2
    assert sorted(await pstore.keys()) == ["kept", "later"]


async def test_the_background_purge_runs_on_its_own(postgres_server: PostgresServer, schema: str) -> None:
    s = PostgreSQLStore(f"{postgres_server.url}?schema={schema}&purge_interval=0.2")
    try:
        await s.put_many([f"k{i}" for i in range(50)], [{"i": i} for i in range(50)], ttl=0.1)
        await s.put("kept", {"v": 1})
        table = f"{schema}.fastmcp_sessions"
        deadline = time.monotonic() + 10
        while postgres_server.psql(f"SELECT count(*) FROM {table}") != "1":
            assert time.monotonic() < deadline, "the background purge never ran"
            await asyncio.sleep(0.1)
        assert await s.get("kept") == {"v": 1}
    finally:
        await s.close()
    assert s._purger is None


# -- pools, URLs, statements --------------------------------------------------------------


async def test_a_pool_passed_in_is_used_and_never_closed(
    postgres_server: PostgresServer, schema: str
) -> None:
    pool = await asyncpg.create_pool(postgres_server.url, min_size=1, max_size=2)
    try:
        async with PostgreSQLStore(pool=pool, schema=schema, table="given") as s:
            await s.put("k", {"v": 1})
            assert s.pool is pool and "pool=<given>" in repr(s)
        assert not pool._closed
        assert await pool.fetchval(f"SELECT count(*) FROM {schema}.given") == 1
    finally:
        await pool.close()


async def test_url_options_are_ours_or_libpq_s(postgres_server: PostgresServer, schema: str) -> None:
    url = (
        f"postgres://postgres:hunter2@127.0.0.1:{postgres_server.port}/postgres?sslmode=disable"
        f"&application_name=myapp&schema={schema}&table=kv&timeout=2.5&max_connections=3&default_collection=dc"
    )
    s = open_store(url)
    assert isinstance(s, PostgreSQLStore)
    try:
        assert (s.schema, s.table, s.timeout, s.max_connections, s.default_collection) == (
            schema,
            "kv",
            2.5,
            3,
            "dc",
        )
        assert "hunter2" not in repr(s) and "kv" in repr(s)
        await s.put("k", {"v": 1})
        assert s.pool is not None
        assert await s.pool.fetchval("SHOW application_name") == "myapp"
        assert s.pool.get_max_size() == 3
    finally:
        await s.close()
    with pytest.raises(ValueError, match="timeout"):
        open_store(f"{postgres_server.url}?timeout=soon")
    with pytest.raises(ValueError, match="table name"):
        PostgreSQLStore(postgres_server.url, table='x"; DROP TABLE y; --')
    with pytest.raises(ValueError, match="URL or pool="):
        PostgreSQLStore()
    async with PostgreSQLStore(f"{postgres_server.url}?schema={schema}&tabel=kv") as typo:
        with pytest.raises(StoreSetupError, match="neither this store's nor a PostgreSQL setting"):
            await typo.get("k")


async def test_encryption_over_it(
    postgres_server: PostgresServer, raw: asyncpg.Connection, schema: str
) -> None:
    key = Keyring.generate_key()
    s = open_store(f"{postgres_server.url}?schema={schema}&encryption=true", keys=[key])
    assert isinstance(s, EncryptedStore) and isinstance(s.inner, PostgreSQLStore)
    async with s:
        await s.put("k", {"secret": "s3cr3t\x00"})
        assert await s.get("k") == {"secret": "s3cr3t\x00"}
    stored = await raw.fetchval(f"SELECT value FROM {schema}.fastmcp_sessions WHERE key = 'k'")
    assert "s3cr3t" not in stored and "__encrypted__" in stored


class Statements:
    """Counts statements asyncpg sends (each is one round trip once prepared): prepared ones,
    and simple queries such as the reset query a pool may send when a connection is released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        prepared, simple = asyncpg.Connection._execute, asyncpg.Connection.execute

        async def counting(conn: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await prepared(conn, *args, **kwargs)

        async def counting_simple(conn: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
            if not args:  # with arguments, execute() goes through _execute, counted there
                self.count += 1
            return await simple(conn, query, *args, **kwargs)

        monkeypatch.setattr(asyncpg.Connection, "_execute", counting)
        monkeypatch.setattr(asyncpg.Connection, "execute", counting_simple)


async def test_every_batch_is_one_statement(pstore: PostgreSQLStore, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [f"k{i}" for i in range(2000)]
    values = [{"i": i} for i in range(2000)]
    calls = (
        lambda: pstore.put_many(keys, values),
        lambda: pstore.put_many(keys, values, ttl=60),
        lambda: pstore.get_many(keys),
        lambda: pstore.ttl_many(keys),
        lambda: pstore.delete_many(keys),
    )
    for call in calls:  # statements prepared and cached
        await call()
    counter = Statements(monkeypatch)
    for call in calls:
        counter.count = 0
        await call()
        assert counter.count == 1
    counter.count = 0
    await pstore.put("k", {"v": 1})
    assert await pstore.get("k") == {"v": 1}
    assert await pstore.put_if_absent("k", {"v": 2}) is False
    assert counter.count == 3
    assert await pstore.get_many(keys[:5]) == [None] * 5


def test_the_module_imports_without_asyncpg() -> None:
    code = (
        "import sys; sys.modules['asyncpg'] = None\n"
        "from fastmcp_sessions import open_store\n"
        "try:\n"
        "    open_store('postgresql://127.0.0.1:1/db')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert out.returncode == 0, out.stderr
    assert "pip install 'fastmcp-sessions[postgresql]'" in out.stdout


# -- processes ------------------------------------------------------------------------------

WORKER = WORKERS / "contention_worker.py"


async def test_four_processes_race_the_table_creation_and_every_update(
    postgres_server: PostgresServer, schema: str
) -> None:
    # The table does not exist yet: the four processes also race to create it.
    url = f"{postgres_server.url}?schema={schema}"
    processes, increments = 4, 40
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), url, str(increments), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(processes)
    ]
    outputs = [await p.communicate() for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
    assert sum(int(out.decode().split()[0]) for out, _ in outputs) == 1, "put_if_absent had two winners"
    async with PostgreSQLStore(url) as s:
        assert await s.get("counter", collection="contention") == {"n": processes * increments}


# -- outages ------------------------------------------------------------------------------


@pytest.fixture
def crash_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


async def test_an_immediate_stop_mid_stream_loses_no_acknowledged_write(crash_server: PostgresServer) -> None:
    timeout = 2.0
    s = PostgreSQLStore(f"{crash_server.url}?schema=outage&purge_interval=0.5", timeout=timeout)
    acked: dict[str, int] = {}
    failed: set[str] = set()
    errors: Counter[str] = Counter()
    slowest_failure = 0.0
    phase = "before"
    counts: Counter[str] = Counter()
    stop = asyncio.Event()

    async def writer(w: int) -> None:
        nonlocal slowest_failure
        i = 0
        while not stop.is_set():
            key = f"w{w}-{i}"
            i += 1
            started = time.monotonic()
            try:
                if i % 3 == 0:
                    await s.put_many([key], [{"w": w, "i": i}])
                elif i % 3 == 1:
                    await s.put(key, {"w": w, "i": i}, ttl=3600)
                else:
                    assert await s.put_if_absent(key, {"w": w, "i": i}) is True
            except StoreConnectionError as exc:
                slowest_failure = max(slowest_failure, time.monotonic() - started)
                failed.add(key)
                errors[type(exc.__cause__).__name__] += 1
                counts[f"failed {phase}"] += 1
                await asyncio.sleep(0.01)
            else:
                acked[key] = i
                counts[f"acked {phase}"] += 1

    writers = [asyncio.create_task(writer(w)) for w in range(4)]
    try:
        await asyncio.sleep(1.0)
        phase = "during"
        await asyncio.to_thread(crash_server.crash)  # pg_ctl stop -m immediate
        await asyncio.sleep(0.5)
        await asyncio.to_thread(crash_server.start)  # same port and data directory: crash recovery
        phase = "after"
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        results = await asyncio.gather(*writers, return_exceptions=True)
    assert not [r for r in results if r is not None], results  # only typed errors, all caught
    assert counts["acked before"] > 0 and counts["failed during"] > 0 and counts["acked after"] > 0, counts
    assert slowest_failure < timeout + 1.0, f"an operation took {slowest_failure:.2f}s to fail ({errors})"
    # The same store object, never reopened, reads back every acknowledged write.
    keys = sorted(acked)
    got = await s.get_many(keys)
    lost = [k for k, v in zip(keys, got, strict=True) if v is None or v["i"] != acked[k]]
    assert not lost, f"{len(lost)} of {len(keys)} acknowledged writes lost, e.g. {lost[:5]}"
    for key, value in zip(sorted(failed), await s.get_many(sorted(failed)), strict=True):
        assert value is None or value["i"] == int(key.rsplit("-", 1)[1]) + 1  # either way, never garbage
    await s.close()


async def test_an_unreachable_server_fails_fast_with_advice() -> None:
    s = PostgreSQLStore("postgresql://postgres@127.0.0.1:1/postgres", timeout=1)
    started = time.monotonic()
    for call in (s.get("k"), s.put("k", {"v": 1}), s.keys(), s.put_if_absent("k", {"v": 1})):
        with pytest.raises(StoreConnectionError, match="reconnects on its own"):
            await call
    assert time.monotonic() - started < 4
    await s.close()


async def test_a_hung_server_fails_within_the_timeout_and_recovers(
    postgres_server: PostgresServer, schema: str
) -> None:
    timeout = 0.5
    async with PostgreSQLStore(f"{postgres_server.url}?schema={schema}", timeout=timeout) as s:
        await s.put("k", {"v": 1})
        pid = postgres_server.pid
        assert pid is not None
        # Hold the row's lock in another session: the store's write waits, then gives up in time.
        conn = await asyncpg.connect(postgres_server.url)
        try:
            tx = conn.transaction()
            await tx.start()
            await conn.execute(f"SELECT * FROM {schema}.fastmcp_sessions FOR UPDATE")
            started = time.monotonic()
            with pytest.raises(StoreConnectionError, match=r"timeout=0\.5s"):
                await s.put("k", {"v": 2})
            assert time.monotonic() - started < timeout + 1.0
            await tx.rollback()
        finally:
            await conn.close()
        await s.put("k", {"v": 3})  # the same store carries on
        assert await s.get("k") == {"v": 3}


async def test_a_missing_database_and_a_wrong_password_are_setup_errors(
    postgres_server: PostgresServer,
) -> None:
    async with PostgreSQLStore(f"postgresql://postgres@127.0.0.1:{postgres_server.port}/nope") as s:
        with pytest.raises(StoreSetupError, match="createdb"):
            await s.get("k")
    # One role that must log in with a password (every other login stays trusted).
    role = "pw_" + secrets.token_hex(4)
    postgres_server.psql(f"CREATE ROLE {role} LOGIN PASSWORD 'right-pass'")
    hba = postgres_server.data_dir / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + original)
    postgres_server.psql("SELECT pg_reload_conf()")
    try:
        base = f"127.0.0.1:{postgres_server.port}/postgres"
        async with PostgreSQLStore(f"postgresql://{role}:wrong-pass@{base}?schema=pw") as bad:
            with pytest.raises(StoreSetupError, match="user and password") as info:
                await bad.get("k")
        assert "wrong-pass" not in str(info.value), "the password leaked into the message"
        async with PostgreSQLStore(f"postgresql://{role}:right-pass@{base}?schema=pw") as good:
            with pytest.raises(StoreSetupError, match="grant"):
                await good.put("k", {"v": 1})  # may log in, but not create a schema
    finally:
        hba.write_text(original)
        postgres_server.psql("SELECT pg_reload_conf()")
        postgres_server.psql(f"DROP ROLE {role}")
