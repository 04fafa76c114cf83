"""Redis store: a standalone server, TLS, ACL users, Unix sockets, Redis Cluster and Sentinel.

Built on redis-py's asyncio client (``pip install 'fastmcp-sessions[redis]'``). The
package, one module per job:

- ``store.py``: ``RedisStore``, the operations and how commands are run;
- ``connection.py``: redis-py clients for URLs (TLS, Cluster, Sentinel);
- ``encoding.py``: key layout, value format, ``glob_escape``;
- ``scripts.py`` and ``scripts/*.lua``: the Lua scripts, read once;
- ``pipelining.py``: automatic pipelining, one connection per server or node;
- ``plain.py``: commands through redis-py's own pool (``pipelining=False``, the fallback);
- ``errors.py``: redis-py errors to typed errors with advice;
- ``_seam.py``: every use of a redis-py internal, checked at first use.

See docs/redis.md.
"""

from fastmcp_sessions.stores.redis.store import DEFAULT_NAMESPACE, DEFAULT_TIMEOUT, RedisStore

__all__ = ["DEFAULT_NAMESPACE", "DEFAULT_TIMEOUT", "RedisStore"]
