"""Run by the contention test in separate processes: increments a shared counter."""

import asyncio
import sys

from fastmcp_sessions import open_store


async def main(url: str, increments: int) -> None:
    store = open_store(url)
    async with store:
        won = await store.put_if_absent("claims", {"pid": 1}, collection="contention")
        print(int(won))
        for _ in range(increments):
            await store.update(
                "counter",
                lambda v: {"n": (v or {"n": 0})["n"] + 1},
                collection="contention",
                max_attempts=1000,
            )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
