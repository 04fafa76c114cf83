"""A bad store option raises ``StoreOptionError`` when the store is built, before any I/O, and
the message names the option and what it accepts. ``StoreOptionError`` is also a ``ValueError``,
so callers that catch ``ValueError`` keep working."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fastmcp_sessions.errors import StoreOptionError, StoreSetupError
from fastmcp_sessions.stores.disk import DiskStore
from fastmcp_sessions.stores.dynamodb import DynamoDBStore
from fastmcp_sessions.stores.memory import MemoryStore
from fastmcp_sessions.stores.mongodb import MongoDBStore
from fastmcp_sessions.stores.namespaced import NamespacedStore
from fastmcp_sessions.stores.postgresql import PostgreSQLStore
from fastmcp_sessions.stores.schemes import open_store

CASES: dict[str, tuple[Callable[[Path], Any], tuple[str, ...]]] = {
    "memory max_entries": (lambda _: MemoryStore(max_entries=0), ("max_entries", "positive int")),
    "disk synchronous": (
        lambda p: DiskStore(p / "s.sqlite3", encryption=False, synchronous="OFF"),  # type: ignore[arg-type]
        ("synchronous", "'NORMAL' or 'FULL'"),
    ),
    "disk URL host": (lambda _: DiskStore.from_url("disk://host/tmp/s.sqlite3"), ("absolute path",)),
    "postgresql nothing": (lambda _: PostgreSQLStore(), ("postgresql:// URL", "pool=")),
    "postgresql timeout": (
        lambda _: PostgreSQLStore("postgresql://127.0.0.1:1/db", timeout=0),
        ("timeout", "positive number"),
    ),
    "postgresql table": (
        lambda _: PostgreSQLStore("postgresql://127.0.0.1:1/db", table="1-bad"),
        ("table", "letters, digits and '_'"),
    ),
    "postgresql URL option": (
        lambda _: PostgreSQLStore.from_url("postgresql://127.0.0.1:1/db?create_table=maybe"),
        ("create_table", "true or false"),
    ),
    "dynamodb billing_mode": (
        lambda _: DynamoDBStore("sessions", billing_mode="FREE"),
        ("billing_mode", "PAY_PER_REQUEST", "PROVISIONED"),
    ),
    "dynamodb max_attempts": (
        lambda _: DynamoDBStore("sessions", max_attempts=0),
        ("max_attempts", "positive int"),
    ),
    "dynamodb URL credentials": (
        lambda _: DynamoDBStore.from_url("dynamodb://key:secret@sessions"),
        ("no credentials", "AWS_PROFILE"),
    ),
    "mongodb nothing": (lambda _: MongoDBStore(), ("mongodb:// URL", "client=")),
    "mongodb timeout": (
        lambda _: MongoDBStore("mongodb://127.0.0.1:1/db", timeout=-1),
        ("timeout", "positive number"),
    ),
    "namespaced scope": (
        lambda _: NamespacedStore(MemoryStore(), "ns", scope="tenant"),  # type: ignore[arg-type]
        ("scope", "'collection' or 'key'"),
    ),
    "unknown scheme": (lambda _: open_store("nosuch://x"), ("nosuch", "supported:", "memory://")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_option_raises_store_option_error(case: str, tmp_path: Path) -> None:
    build, words = CASES[case]
    with pytest.raises(StoreOptionError) as caught:
        build(tmp_path)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, StoreSetupError)
    for word in words:
        assert word in str(caught.value), str(caught.value)
    assert "secret" not in str(caught.value)
