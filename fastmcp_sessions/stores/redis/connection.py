"""redis-py clients for the store's URLs: one server, TLS, Unix sockets, Cluster, Sentinel.

Every wait of the client is bounded by the store's ``timeout``. A bad URL or option
raises ``StoreOptionError`` naming it and what is accepted, before any I/O.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from fastmcp_sessions.errors import StoreOptionError
from fastmcp_sessions.stores._url import redact_url
from fastmcp_sessions.stores.redis import _seam
from fastmcp_sessions.stores.redis.encoding import SCHEMES


def describe_client(client: Any) -> str:
    """``client=<Redis 127.0.0.1:6379/0>`` without credentials, for repr and errors."""
    if isinstance(client, RedisCluster):
        nodes = ",".join(f"{n.host}:{n.port}" for n in client.get_nodes()) or "(not connected)"
        return f"client=<RedisCluster {nodes}>"
    kwargs = _seam.connection_settings(client)
    if kwargs.get("path"):
        return f"client=<Redis unix:{kwargs['path']}/{kwargs.get('db', 0)}>"
    return f"client=<Redis {kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}>"


def server_address(client: Any) -> tuple[str | None, int | None]:
    """``(host or socket path, port)`` of the server ``client`` talks to (first node of a cluster)."""
    if isinstance(client, RedisCluster):
        nodes = client.get_nodes() or list(client.startup_nodes)
        first = next(iter(nodes), None)
        return (first.host, int(first.port)) if first is not None else (None, None)
    kwargs = _seam.connection_settings(client)
    if kwargs.get("path"):
        return str(kwargs["path"]), None
    return kwargs.get("host"), kwargs.get("port")


def pool_size(client: Any) -> int:
    """How many commands redis-py's pool of ``client`` can run at once."""
    if isinstance(client, RedisCluster):
        return int(getattr(client, "max_connections", 0) or 1000)
    return int(getattr(client.connection_pool, "max_connections", 0) or 100)


def _userinfo(netloc: str) -> tuple[str | None, str | None, str]:
    """(username, password, hosts) of a URL's network location, percent-decoded."""
    if "@" not in netloc:
        return None, None, netloc
    userinfo, _, hosts = netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if sep else None), hosts


def _host_port(text: str, url: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    try:
        port = int(port_text) if port_text else 6379
    except ValueError:
        raise StoreOptionError(
            f"bad port {port_text!r} in {redact_url(url)}: the port is a number (default 6379)"
        ) from None
    if not host:
        raise StoreOptionError(f"missing host in {redact_url(url)}: write host:port")
    return host, port


def _db(text: str, db: int | None, what: str) -> int:
    try:
        url_db = int(text) if text else None
    except ValueError:
        raise StoreOptionError(f"{what} is the database number (0, 1, ...), got {text!r}") from None
    if url_db is not None and db is not None and url_db != db:
        raise StoreOptionError(f"the URL names database {url_db} but db={db} was given; name one of them")
    return url_db or db or 0


def make_client(
    url: str,
    timeout: float,
    db: int | None,
    max_connections: int | None,
    client_name: str | None,
    tls: dict[str, Any],
) -> tuple[Redis | RedisCluster, Any]:
    """A redis-py client for ``url`` whose every wait is bounded by ``timeout``, and the
    ``Sentinel`` it came from (``None`` for other URLs)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise StoreOptionError(
            f"RedisStore URLs start with {', '.join(s + '://' for s in SCHEMES)}; got {scheme!r}"
        )
    username, password, hosts = _userinfo(parts.netloc)
    common: dict[str, Any] = {
        "username": username,
        "password": password,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "decode_responses": False,
        "client_name": client_name,
    }
    use_tls = scheme.startswith("rediss")
    tls_options = {k: v for k, v in tls.items() if v is not None}
    if tls_options and not use_tls:
        raise StoreOptionError(
            f"{', '.join(sorted(tls_options))} need a rediss:// (TLS) URL, not {scheme}://; "
            "use rediss:// or drop the ssl_* options"
        )
    if use_tls:
        common["ssl"] = True
        common.update(tls_options)
    # Retry once, only when a connection broke: that replaces connections a restarted server
    # dropped. A timeout is not retried, so an operation waits at most about ``timeout``.
    retry = Retry(ExponentialWithJitterBackoff(cap=0.1, base=0.01), 1, (RedisConnectionError,))
    if scheme.endswith("+cluster"):
        if parts.path.strip("/") not in ("", "0") or db:
            raise StoreOptionError("Redis Cluster has only database 0; drop the /db from the URL and db=")
        nodes = [ClusterNode(*_host_port(h, url)) for h in hosts.split(",") if h.strip()]
        if not nodes:
            raise StoreOptionError(
                f"name at least one cluster node: redis+cluster://host:port,... (got {redact_url(url)})"
            )
        cluster = RedisCluster(
            startup_nodes=nodes,
            retry=Retry(ExponentialWithJitterBackoff(cap=0.25, base=0.05), 1),
            max_connections=max_connections or 1000,
            **common,
        )
        return cluster, None
    if max_connections is not None:
        common["max_connections"] = max_connections
    if scheme.endswith("+sentinel"):
        return _sentinel_client(url, hosts, parts.path, db, retry, common)
    if scheme == "unix":
        if not parts.path:
            raise StoreOptionError("unix URLs name the socket: unix:///path/to/redis.sock")
        return Redis(unix_socket_path=unquote(parts.path), db=db or 0, retry=retry, **common), None
    host, port = _host_port(hosts, url) if hosts else ("localhost", 6379)
    number = _db(parts.path.strip("/"), db, "the path of a redis:// URL")
    return Redis(host=host, port=port, db=number, retry=retry, **common), None


def _sentinel_client(
    url: str, hosts: str, path: str, db: int | None, retry: Any, common: dict[str, Any]
) -> tuple[Redis, Any]:
    """The primary of ``service_name`` as Sentinel reports it, on every new connection.

    Credentials and TLS settings apply to the primary and to the sentinels alike.
    """
    sentinels = [_host_port(h, url) for h in hosts.split(",") if h.strip()]
    if not sentinels:
        raise StoreOptionError(
            f"name at least one sentinel: redis+sentinel://host:port,.../service_name (got {redact_url(url)})"
        )
    service, _, db_text = path.strip("/").partition("/")
    if not service:
        raise StoreOptionError(
            "name the monitored service: redis+sentinel://host:port/service_name[/db] "
            f"(got {redact_url(url)})"
        )
    number = _db(db_text, db, "the part after the service name")
    sentinel_kwargs = {k: v for k, v in common.items() if k not in ("client_name", "max_connections")}
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        sentinels, sentinel_kwargs=sentinel_kwargs, **common
    )
    client = sentinel.master_for(unquote(service), db=number, retry=retry)
    return client, sentinel
