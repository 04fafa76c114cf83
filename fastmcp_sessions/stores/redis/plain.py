"""Commands on connections of redis-py's own pool: ``pipelining=False``, and the store's
fallback when redis-py lacks what auto-pipelining relies on (``_seam.py``).

At most ``limit`` commands run at once; the rest wait their turn, up to ``timeout``
(redis-py's own pool would raise ``MaxConnectionsError`` at once instead).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import TimeoutError as RedisTimeoutError

from fastmcp_sessions.stores.redis import _seam
from fastmcp_sessions.stores.redis.errors import NoFreeConnection

RAW = _seam.raw_options()  # bytes back whatever decode_responses says
_SET_GET = _seam.raw_options(get=True)


class PlainCommands:
    """Runs the store's commands through a redis-py ``Redis`` or ``RedisCluster``."""

    def __init__(self, client: Any, timeout: float, limit: int) -> None:
        self.client = client
        self.timeout = timeout
        self.cluster = isinstance(client, RedisCluster)
        self.deadline = 2 * timeout
        self.gate = asyncio.Semaphore(limit)
        # redis-py's async RedisCluster routes commands issued before its first initialize()
        # to a random node (MOVED storms that close other tasks' connections), so it is
        # initialized once before the first command.
        self.pending_init = self.cluster

    async def send(self, args: tuple[Any, ...], key: str | None = None) -> Any:
        """One command on a connection of redis-py's pool ."""
        options = _SET_GET if args[0] == "SET" and args[-1] == "GET" else RAW
        await self._enter_gate()
        try:
            if self.cluster:
                return await self.bounded(self.client.execute_command(*args, **options))
            return await self.client.execute_command(*args, **options)
        finally:
            self.gate.release()

    async def send_all(self, commands: list[tuple[tuple[Any, ...], Any]]) -> list[Any]:
        """A batch as one redis-py pipeline ."""
        if len(commands) == 1:
            return [await self.send(*commands[0])]
        await self._enter_gate()
        try:
            pipe = self.client.pipeline(transaction=False)
            for args, _ in commands:
                pipe.execute_command(*args, **RAW)
            results: list[Any] = await (self.bounded(pipe.execute()) if self.cluster else pipe.execute())
            return results
        finally:
            self.gate.release()

    async def _enter_gate(self) -> None:
        if not self.gate.locked():
            await self.gate.acquire()
            return
        try:
            await asyncio.wait_for(self.gate.acquire(), self.timeout)
        except TimeoutError:
            raise NoFreeConnection(f"no connection came free within {self.timeout:g}s") from None

    async def bounded(self, awaitable: Awaitable[Any]) -> Any:
        """Await a cluster operation, at most ``2 * timeout`` seconds in all."""
        deadline = asyncio.timeout(self.deadline)
        try:
            async with deadline:
                if self.pending_init:
                    assert isinstance(self.client, RedisCluster)
                    await self.client.initialize()
                    self.pending_init = False
                return await awaitable
        except TimeoutError:
            if not deadline.expired():
                raise
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # not started when initialize() used up the time
            raise RedisTimeoutError(f"the cluster did not answer within {self.deadline:g}s") from None
