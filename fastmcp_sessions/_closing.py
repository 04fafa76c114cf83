"""``async with`` support: written once for stores, a server's storage and locks."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncClosing", "AsyncContext"]


class AsyncContext:
    """Mixin: ``async with obj as o`` gives ``obj`` itself; leaving the block, however it
    ends, awaits ``obj._leave(exc)`` with the exception that ended it (or ``None``)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._leave(exc)

    async def _leave(self, exc: BaseException | None) -> None:
        """What leaving the block does (subclasses implement it)."""
        raise NotImplementedError


class AsyncClosing(AsyncContext):
    """Mixin: leaving ``async with obj`` awaits ``obj.close()``."""

    async def close(self) -> None:
        """Release what the object holds (subclasses implement it)."""
        raise NotImplementedError

    async def _leave(self, exc: BaseException | None) -> None:
        await self.close()
