"""One walk through a store's layers serves the bus, the event store and the key policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastmcp_sessions import Keyring
from fastmcp_sessions.buses.memory import MemoryBus
from fastmcp_sessions.buses.selection import bus_for_store
from fastmcp_sessions.buses.unix import HAVE_UNIX_SOCKETS, UnixSocketBus
from fastmcp_sessions.events import event_store
from fastmcp_sessions.events.memory import MemoryEventStore
from fastmcp_sessions.stores._layers import MAX_DEPTH, backend_of, layer_of, layers
from fastmcp_sessions.stores.disk import DiskStore
from fastmcp_sessions.stores.encrypted import EncryptedStore, shared_over_network
from fastmcp_sessions.stores.key_policy import local_disk_store, store_key_file
from fastmcp_sessions.stores.memory import MemoryStore
from fastmcp_sessions.stores.namespaced import NamespacedStore


def _chain() -> tuple[MemoryStore, NamespacedStore, EncryptedStore, NamespacedStore]:
    backend = MemoryStore()
    inner_view = NamespacedStore(backend, "fastmcp/notes")
    encrypted = EncryptedStore(inner_view, keys=[Keyring.generate_key()], key_check=False)
    outer_view = NamespacedStore(encrypted, "oauth", scope="key")
    return backend, inner_view, encrypted, outer_view


def test_layers_lists_every_wrapper_outermost_first_and_the_backend_last() -> None:
    backend, inner_view, encrypted, outer_view = _chain()
    assert list(layers(outer_view)) == [outer_view, encrypted, inner_view, backend]
    assert list(layers(backend)) == [backend]


def test_layer_of_finds_the_outermost_layer_of_a_kind_or_none() -> None:
    backend, inner_view, encrypted, outer_view = _chain()
    assert layer_of(outer_view, NamespacedStore) is outer_view
    assert layer_of(inner_view, NamespacedStore) is inner_view
    assert layer_of(outer_view, EncryptedStore) is encrypted
    assert layer_of(outer_view, MemoryStore) is backend
    assert layer_of(outer_view, DiskStore) is None
    assert layer_of(backend, EncryptedStore) is None


def test_backend_of_is_the_store_without_inner() -> None:
    backend, _, encrypted, outer_view = _chain()
    assert backend_of(outer_view) is backend
    assert backend_of(encrypted) is backend
    assert backend_of(backend) is backend


def test_a_chain_that_loops_back_ends_instead_of_hanging() -> None:
    backend = MemoryStore()
    a = NamespacedStore(backend, "a")
    b = NamespacedStore(a, "b")
    a.inner = b  # a wiring mistake: a view whose inner is its own outer view
    assert list(layers(b)) == [b, a]


def test_a_chain_deeper_than_the_bound_stops_at_the_bound() -> None:
    store: MemoryStore | NamespacedStore = MemoryStore()
    for i in range(MAX_DEPTH * 2):
        store = NamespacedStore(store, f"v{i}")
    assert len(list(layers(store))) == MAX_DEPTH + 1


def test_shared_over_network_reads_every_layer() -> None:
    _, _, _, outer_view = _chain()
    assert shared_over_network(outer_view) is False


def test_the_key_policy_finds_the_disk_store_under_views_and_encryption(tmp_path: Path) -> None:
    disk = DiskStore(tmp_path / "store.sqlite3", key_file=tmp_path / "store.key")
    view = NamespacedStore(NamespacedStore(disk, "fastmcp/notes"), "oauth")
    assert local_disk_store(view) is disk
    assert store_key_file(view, "fastmcp") == tmp_path / "store.key"


async def test_the_event_store_reads_the_namespace_and_keyring_through_the_layers() -> None:
    backend, _, encrypted, outer_view = _chain()
    events = event_store(outer_view)
    assert isinstance(events, MemoryEventStore)
    bare = event_store(backend)
    assert isinstance(bare, MemoryEventStore)
    # The views make a namespace of their own and the keyring is the encrypted layer's.
    assert events.namespace != bare.namespace
    assert events.keyring is encrypted.keyring
    assert bare.keyring is None


@pytest.mark.skipif(not HAVE_UNIX_SOCKETS, reason="Unix sockets only")
async def test_the_bus_is_the_backends_under_every_layer(tmp_path: Path) -> None:
    disk = DiskStore(tmp_path / "store.sqlite3", keys=[Keyring.generate_key()])
    try:
        view = NamespacedStore(NamespacedStore(disk, "fastmcp/notes"), "state")
        bus = bus_for_store(view, server_name="notes")
        try:
            assert isinstance(bus, UnixSocketBus)
        finally:
            await bus.close()
        memory_bus = bus_for_store(_chain()[3], server_name="notes")
        assert isinstance(memory_bus, MemoryBus)
        await memory_bus.close()
    finally:
        await disk.close()
