"""Stores: one module per backend under one abstract base (``Store``)."""

from fastmcp_sessions.stores.base import Store, Versioned, register_backend
from fastmcp_sessions.stores.disk import DiskStore
from fastmcp_sessions.stores.encrypted import EncryptedStore
from fastmcp_sessions.stores.memory import MemoryStore
from fastmcp_sessions.stores.namespaced import NamespacedStore
from fastmcp_sessions.stores.schemes import open_store, supported_schemes

__all__ = [
    "DiskStore",
    "EncryptedStore",
    "MemoryStore",
    "NamespacedStore",
    "Store",
    "Versioned",
    "open_store",
    "register_backend",
    "supported_schemes",
]
