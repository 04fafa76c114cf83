"""``async with`` for anything released by ``await close()`` (stores, a server's storage)."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncClosing"]


class AsyncClosing:
    """Mixin: ``async with obj as o`` gives ``obj`` itself and awaits ``obj.close()`` when the
    block ends, however it ends."""

    async def close(self) -> None:
        """Release what the object holds (subclasses implement it)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
