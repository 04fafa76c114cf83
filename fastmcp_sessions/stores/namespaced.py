"""A namespaced view of another store: prefixed collections, or prefixed keys.

``scope="collection"`` (the default) stores collection ``c`` of the view as
``<namespace>/<c>`` in the inner store: several FastMCP servers (or apps) share one
Redis without seeing each other's data, and listing a view's keys costs what it
costs on the inner store.

``scope="key"`` keeps collections and stores key ``k`` as ``<namespace>/<k>``: the
number of collections does not grow with namespaces, which suits many small
namespaces such as one per user. Listing keys or collections of such a view scans
the inner collection(s) and filters, so it is for housekeeping, not hot paths;
get/put/delete and the atomic operations are one inner call each either way.

Namespaces are prefix-free: in the view's part of the name ``%`` is written ``%25``
and ``/`` is written ``%2F``, so the last ``/`` of an inner name always ends the
namespace. View ``t`` therefore never sees, lists or destroys the data of view
``t/x`` (its collection ``x/c`` is stored as ``t/x%2Fc``, view ``t/x``'s ``c`` as
``t/x/c``). Names without ``/`` or ``%`` are stored exactly as before.

Versions, TTLs and atomicity are the inner store's: every operation is passed
straight through with the name rewritten.
"""

from __future__ import annotations

from typing import Literal

from fastmcp_sessions._values import check_collection
from fastmcp_sessions.errors import StoreOptionError
from fastmcp_sessions.stores.base import Store, Value, Versioned

__all__ = ["NamespacedStore"]

Scope = Literal["collection", "key"]


def escape(name: str) -> str:
    """``name`` with ``%`` and ``/`` percent-encoded, so it holds no ``/`` (reversible)."""
    return name.replace("%", "%25").replace("/", "%2F")


def unescape(name: str) -> str:
    """The inverse of ``escape``."""
    return name.replace("%2F", "/").replace("%25", "%")


class NamespacedStore(Store):
    """A view of ``inner`` confined to ``namespace``.

    Args:
        inner: Any fastmcp-sessions store.
        namespace: A non-empty name; it becomes the prefix ``<namespace>/``.
        scope: ``"collection"`` to prefix collection names, ``"key"`` to prefix keys.
        owns_inner: Whether ``close()`` also closes ``inner`` (default ``False``: a
            view usually shares its store with other views).
    """

    def __init__(
        self,
        inner: Store,
        namespace: str,
        *,
        scope: Scope = "collection",
        owns_inner: bool = False,
    ) -> None:
        super().__init__(default_collection=inner.default_collection)
        check_collection(namespace)
        if scope not in ("collection", "key"):
            raise StoreOptionError(f"scope must be 'collection' or 'key', got {scope!r}")
        self.inner = inner
        self.namespace = namespace
        self.scope: Scope = scope
        self.owns_inner = owns_inner
        self._prefix = namespace + "/"

    def __repr__(self) -> str:
        return f"NamespacedStore({self.inner!r}, namespace={self.namespace!r}, scope={self.scope!r})"

    # -- name mapping -------------------------------------------------------------------

    def _c(self, collection: str) -> str:
        return self._prefix + escape(collection) if self.scope == "collection" else collection

    def _k(self, key: str) -> str:
        return self._prefix + escape(key) if self.scope == "key" else key

    def _ks(self, keys: list[str]) -> list[str]:
        return [self._prefix + escape(k) for k in keys] if self.scope == "key" else keys

    def _own(self, inner_name: str) -> str | None:
        """The view's name for ``inner_name``, or ``None`` when it belongs to another namespace."""
        if not inner_name.startswith(self._prefix):
            return None
        rest = inner_name[len(self._prefix) :]
        # A "/" in the rest means a longer namespace ("t/x/..." seen from view "t").
        return unescape(rest) if rest and "/" not in rest else None

    async def _own_keys(self, collection: str, limit: int | None) -> list[str]:
        """Keys of this view in ``collection`` (key scope), without the prefix."""
        found = [k for k in map(self._own, await self.inner.keys(collection)) if k is not None]
        return found if limit is None else found[:limit]

    # -- the backend interface ----------------------------------------------------------

    async def _get_versioned(self, collection: str, key: str) -> Versioned | None:
        return await self.inner.get_versioned(self._k(key), collection=self._c(collection))

    async def _get_versioned_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        pairs = await self.inner.ttl_many(self._ks(keys), collection=self._c(collection))
        # ttl_many carries no version; versions are only needed by the atomic paths, which use _get_versioned.
        return [None if value is None else Versioned(value, "", ttl) for value, ttl in pairs]

    async def _put(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        await self.inner.put(self._k(key), value, collection=self._c(collection), ttl=ttl)

    async def _put_many(
        self, collection: str, keys: list[str], values: list[Value], ttl: float | None
    ) -> None:
        await self.inner.put_many(self._ks(keys), values, collection=self._c(collection), ttl=ttl)

    async def _delete(self, collection: str, key: str) -> bool:
        return await self.inner.delete(self._k(key), collection=self._c(collection))

    async def _delete_many(self, collection: str, keys: list[str]) -> int:
        return await self.inner.delete_many(self._ks(keys), collection=self._c(collection))

    async def _put_if_absent(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        return await self.inner.put_if_absent(self._k(key), value, collection=self._c(collection), ttl=ttl)

    async def _compare_and_set(
        self, collection: str, key: str, value: Value, version: str, ttl: float | None
    ) -> bool:
        return await self.inner.compare_and_set(
            self._k(key), value, version=version, collection=self._c(collection), ttl=ttl
        )

    async def _delete_if_version(self, collection: str, key: str, version: str) -> bool:
        return await self.inner.delete_if_version(self._k(key), version, collection=self._c(collection))

    async def _keys(self, collection: str, limit: int | None) -> list[str]:
        if self.scope == "collection":
            return await self.inner.keys(self._c(collection), limit=limit)
        return await self._own_keys(collection, limit)

    async def _collections(self, limit: int | None) -> list[str]:
        names: list[str] = []
        for name in await self.inner.collections():
            if limit is not None and len(names) >= limit:
                break
            if self.scope == "collection":
                own = self._own(name)
                if own is not None:
                    names.append(own)
            elif await self._own_keys(name, 1):
                names.append(name)
        return names

    async def _destroy_collection(self, collection: str) -> bool:
        if self.scope == "collection":
            return await self.inner.destroy_collection(self._c(collection))
        keys = await self._own_keys(collection, None)
        if not keys:
            return False
        await self.inner.delete_many(self._ks(keys), collection=collection)
        return True

    async def _cull(self) -> None:
        await self.inner.cull()

    async def _close(self) -> None:
        if self.owns_inner:
            await self.inner.close()
