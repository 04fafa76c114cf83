"""A store wrapper that counts the calls reaching its inner store (one per round trip on a
networked backend); used by the round-trip tests and the session benchmarks."""

from __future__ import annotations

from fastmcp_sessions.stores.base import Store, Value, Versioned


class CountingStore(Store):
    """Counts the calls that reach ``inner`` (each is one round trip on a networked backend)."""

    def __init__(self, inner: Store) -> None:
        super().__init__(default_collection=inner.default_collection)
        self.inner = inner
        self.calls = 0

    async def _get_versioned(self, collection: str, key: str) -> Versioned | None:
        self.calls += 1
        return await self.inner.get_versioned(key, collection=collection)

    async def _get_versioned_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        self.calls += 1
        return [
            None if v is None else Versioned(v, "", t)
            for v, t in await self.inner.ttl_many(keys, collection=collection)
        ]

    async def _put(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        self.calls += 1
        await self.inner.put(key, value, collection=collection, ttl=ttl)

    async def _delete(self, collection: str, key: str) -> bool:
        self.calls += 1
        return await self.inner.delete(key, collection=collection)

    async def _put_if_absent(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        self.calls += 1
        return await self.inner.put_if_absent(key, value, collection=collection, ttl=ttl)

    async def _compare_and_set(
        self, collection: str, key: str, value: Value, version: str, ttl: float | None
    ) -> bool:
        self.calls += 1
        return await self.inner.compare_and_set(key, value, version=version, collection=collection, ttl=ttl)

    async def _delete_if_version(self, collection: str, key: str, version: str) -> bool:
        self.calls += 1
        return await self.inner.delete_if_version(key, version, collection=collection)

    async def _keys(self, collection: str, limit: int | None) -> list[str]:
        self.calls += 1
        return await self.inner.keys(collection, limit=limit)

    async def _collections(self, limit: int | None) -> list[str]:
        self.calls += 1
        return await self.inner.collections(limit=limit)

    async def _destroy_collection(self, collection: str) -> bool:
        self.calls += 1
        return await self.inner.destroy_collection(collection)
