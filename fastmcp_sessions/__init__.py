"""Storage FastMCP servers and MCP client apps can trust in production."""

from fastmcp_sessions.encryption import Keyring
from fastmcp_sessions.sessions import Lock, ServerRegistry, SessionStore
from fastmcp_sessions.stores import (
    DiskStore,
    EncryptedStore,
    MemoryStore,
    Store,
    Versioned,
    open_store,
)

__all__ = [
    "DiskStore",
    "EncryptedStore",
    "Keyring",
    "Lock",
    "MemoryStore",
    "ServerRegistry",
    "SessionStore",
    "Store",
    "Versioned",
    "open_store",
]
__version__ = "0.1.0"
