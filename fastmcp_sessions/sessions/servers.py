"""Server registry: short names for remote MCP server URLs, per namespace.

A namespace (the global one, or one per identity) is one record holding its whole
``name -> URL`` map, changed only with ``Store.update``. That makes every change
atomic across processes on every backend: two processes adding different URLs at
once both land (one retries on top of the other), they never get the same name, and
``remove`` leaves no half entry, because there is no second record to keep in step.
A namespace holds a handful to a few hundred servers, so one record stays small.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastmcp_sessions import telemetry
from fastmcp_sessions.sessions._keys import IdentityHasher, short_digest
from fastmcp_sessions.sessions.errors import (
    InvalidServerNameError,
    InvalidServerURLError,
    ServerNameConflictError,
    ServerNotFoundError,
)
from fastmcp_sessions.stores.base import Store

__all__ = ["DEFAULT_REGISTRY_COLLECTION", "ServerRegistry", "normalize_url", "server_id"]

DEFAULT_REGISTRY_COLLECTION = "fastmcp_sessions_registry"
GLOBAL_NAMESPACE = "global"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?")
_NAME_RULES = (
    "1-64 characters of lowercase letters, digits, '.', '_' and '-', starting and ending with a "
    "letter or digit"
)
_GENERIC_LABELS = frozenset({"www", "api", "mcp", "app", "com", "net", "org", "io", "dev", "ai", "co"})


def normalize_url(url: str) -> str:
    """The canonical spelling of an http(s) server URL.

    Lowercases the scheme and host, drops the default port (80 for http, 443 for
    https), an empty query, the fragment and any trailing slash of the path, so
    ``HTTPS://Example.com:443/mcp/`` and ``https://example.com/mcp`` are the same
    server. Raises ``InvalidServerURLError`` for anything but an absolute http(s) URL.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidServerURLError("a server URL must be a non-empty str, e.g. 'https://example.com/mcp'")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidServerURLError(f"invalid server URL ({exc}); pass an absolute http(s) URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidServerURLError(
            "a server URL must be an absolute http:// or https:// URL with a host, e.g. 'https://example.com/mcp'"
        )
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def server_id(url: str) -> str:
    """A stable 32-hex-digit id of a server URL (of its normalised form)."""
    return short_digest(normalize_url(url))


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidServerNameError(f"invalid server name {name!r}: use {_NAME_RULES}")
    return name


def _base_name(normalized: str) -> str:
    """A readable name for a URL: the telling label of its host (``api.github.com`` -> ``github``)."""
    host = urlsplit(normalized).hostname or ""
    labels = [label for label in re.split(r"[^a-z0-9]+", host) if label]
    if not labels or all(label.isdigit() for label in labels) or ":" in host:
        return "server"  # an IP address says nothing
    if len(labels) > 1:
        labels = labels[:-1]  # the top-level domain
    meaningful = [label for label in labels if label not in _GENERIC_LABELS]
    return (meaningful or labels)[-1][:48]


class ServerRegistry:
    """Name <-> URL mapping of remote MCP servers in one namespace, atomic across processes.

    Args:
        store: Any fastmcp-sessions store.
        namespace: ``None`` for the global namespace, or any string (e.g. an
            identity) for a private one; it is hashed into the storage key.
        collection: The collection holding registry records.
        identity_key: Secret for HMAC-hashing namespaces in keys (see ``SessionStore``).
    """

    def __init__(
        self,
        store: Store,
        *,
        namespace: str | None = None,
        collection: str = DEFAULT_REGISTRY_COLLECTION,
        identity_key: str | bytes | None = None,
    ) -> None:
        self.store = store
        self.namespace = GLOBAL_NAMESPACE if namespace is None else namespace
        self.collection = collection
        self._key = "ns:" + IdentityHasher(identity_key)(self.namespace)

    def __repr__(self) -> str:
        scope = "global" if self.namespace == GLOBAL_NAMESPACE else "private"
        return f"ServerRegistry({self.store!r}, namespace={scope})"

    async def _servers(self) -> dict[str, str]:
        record = await self.store.get(self._key, collection=self.collection)
        servers = (record or {}).get("servers", {})
        return dict(servers) if isinstance(servers, dict) else {}

    @telemetry.traced("fastmcp_sessions.servers.add")
    async def add(self, url: str, name: str | None = None) -> str:
        """Register ``url`` and return its name.

        A URL already registered (in any trivially different spelling) returns its
        existing name. Without ``name`` a unique name is derived from the host
        (``github``, ``github-2``...). Raises ``ServerNameConflictError`` when ``name``
        is taken by another URL or the URL is registered under a different name.
        """
        normalized = normalize_url(url)
        wanted = None if name is None else _check_name(name)
        servers = await self._servers()
        existing = _name_of(servers, normalized)
        if existing is not None and wanted in (None, existing):
            return existing  # already there: no write
        chosen: list[str] = []

        def add_entry(current: dict[str, Any] | None) -> dict[str, Any]:
            chosen.clear()
            table: dict[str, str] = dict((current or {}).get("servers", {}))
            found = _name_of(table, normalized)
            if found is not None:
                if wanted not in (None, found):
                    raise ServerNameConflictError(
                        f"this URL is already registered as {found!r}; remove({found!r}) first to rename it"
                    )
                chosen.append(found)
                return {"servers": table}
            if wanted is not None:
                if wanted in table:
                    raise ServerNameConflictError(
                        f"the name {wanted!r} is already used by another server URL; pick another name or "
                        f"remove({wanted!r}) first"
                    )
                new_name = wanted
            else:
                new_name = _unique_name(table, _base_name(normalized))
            table[new_name] = normalized
            chosen.append(new_name)
            return {"servers": table}

        await self.store.update(self._key, add_entry, collection=self.collection)
        return chosen[0]

    @telemetry.traced("fastmcp_sessions.servers.resolve")
    async def resolve(self, name: str) -> str:
        """Return the URL registered as ``name``; raise ``ServerNotFoundError`` if there is none."""
        url = (await self._servers()).get(name)
        if url is None:
            raise ServerNotFoundError(name)
        return url

    async def get(self, name: str) -> str | None:
        """Return the URL registered as ``name``, or ``None``."""
        return (await self._servers()).get(name)

    async def name_for(self, url: str) -> str | None:
        """Return the name ``url`` is registered under (any spelling of it), or ``None``."""
        return _name_of(await self._servers(), normalize_url(url))

    @telemetry.traced("fastmcp_sessions.servers.remove")
    async def remove(self, name: str) -> bool:
        """Unregister ``name``; return whether it was registered."""
        removed: list[bool] = []

        def drop(current: dict[str, Any] | None) -> dict[str, Any] | None:
            removed.clear()
            table: dict[str, str] = dict((current or {}).get("servers", {}))
            removed.append(table.pop(name, None) is not None)
            return {"servers": table} if table else None

        if name not in await self._servers():
            return False
        await self.store.update(self._key, drop, collection=self.collection)
        return removed[0]

    async def list(self) -> dict[str, str]:
        """Return every registered server as ``{name: url}``."""
        return dict(sorted((await self._servers()).items()))

    async def clear(self) -> None:
        """Unregister every server of this namespace."""
        await self.store.delete(self._key, collection=self.collection)


def _name_of(table: Mapping[str, str], normalized: str) -> str | None:
    for name, url in table.items():
        if url == normalized:
            return name
    return None


def _unique_name(table: Mapping[str, str], base: str) -> str:
    if base not in table:
        return base
    n = 2
    while f"{base}-{n}" in table:
        n += 1
    return f"{base}-{n}"
