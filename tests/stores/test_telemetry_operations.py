"""Telemetry's table of store operations and the public operations of ``Store`` are the same set."""

from __future__ import annotations

import inspect

from fastmcp_sessions import telemetry
from fastmcp_sessions.stores.base import Store


def _public_operations() -> set[str]:
    # Every public coroutine method of Store is a store operation, except closing the store.
    return {
        name
        for name, member in vars(Store).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(member) and name != "close"
    }


def test_every_public_store_operation_has_a_telemetry_entry_and_vice_versa() -> None:
    assert _public_operations() == set(telemetry.STORE_OPERATIONS)


def test_every_public_store_operation_is_instrumented_under_its_own_name() -> None:
    for name in telemetry.STORE_OPERATIONS:
        assert getattr(vars(Store)[name], telemetry.OPERATION_SPEC, None) == name, name


def test_the_table_says_where_each_operation_takes_its_collection() -> None:
    for name, (batch, collection_at) in telemetry.STORE_OPERATIONS.items():
        parameters = list(inspect.signature(vars(Store)[name]).parameters.values())[1:]
        if batch:
            assert parameters[0].name == "keys", name
        if collection_at is None:
            assert all(p.name != "collection" or p.kind is p.KEYWORD_ONLY for p in parameters), name
        else:
            assert parameters[collection_at].name == "collection", name
