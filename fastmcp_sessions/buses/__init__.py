"""Change-notification buses: mcp's ``SubscriptionBus`` over the backends the stores use.

- ``MemoryBus``: one process.
- ``RedisBus``: every replica on one Redis (sharded pub/sub on a Cluster).
- ``PostgreSQLBus``: every replica on one PostgreSQL (an events table; NOTIFY wakes listeners).
- ``UnixSocketBus``: every process on one machine (the disk store's default; a SQLite journal
  beside the database, Unix datagrams only to wake listeners).
- ``bus_for_store(store, server_name=...)``: the right one for a store.
- ``bus_for_url(url, server_name=...)``: a Redis or PostgreSQL bus for any store.

Buses know stores only through what a store shares publicly (a Redis client, a file
path); stores know nothing of buses. See docs/replicas.md.
"""

from fastmcp_sessions.buses.base import Bus, BusStats, QueuedBus
from fastmcp_sessions.buses.memory import MemoryBus
from fastmcp_sessions.buses.selection import bus_for_store, bus_for_url

__all__ = [
    "Bus",
    "BusStats",
    "MemoryBus",
    "PostgreSQLBus",
    "QueuedBus",
    "RedisBus",
    "UnixSocketBus",
    "bus_for_store",
    "bus_for_url",
]


def __getattr__(name: str) -> object:
    # Imported on use, so the package loads without redis-py.
    if name == "RedisBus":
        from fastmcp_sessions.buses.redis import RedisBus

        return RedisBus
    if name == "PostgreSQLBus":
        from fastmcp_sessions.buses.postgresql import PostgreSQLBus

        return PostgreSQLBus
    if name == "UnixSocketBus":
        from fastmcp_sessions.buses.unix import UnixSocketBus

        return UnixSocketBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
