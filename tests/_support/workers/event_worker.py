"""A separate process on an event store: ``append URL STREAM COUNT TAG`` stores COUNT events
and prints their ids, one a line; ``replay URL EVENT_ID`` prints the stream id, then each
replayed event as JSON ``[id, text]``. The store is opened by URL (env carries keys)."""

from __future__ import annotations

import asyncio
import json
import sys

from mcp_types import JSONRPCNotification

from fastmcp_sessions import open_store
from fastmcp_sessions.events import event_store
from fastmcp_sessions.stores.namespaced import NamespacedStore

NAMESPACE = "fastmcp/worker/events"


def note(text: str) -> JSONRPCNotification:
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params={"data": text})


async def main(command: str, url: str, *args: str) -> None:
    store = open_store(url)
    try:
        events = event_store(NamespacedStore(store, NAMESPACE), max_events_per_stream=10_000)
        if command == "append":
            stream, count, tag = args[0], int(args[1]), args[2]
            for i in range(count):
                print(await events.store_event(stream, note(f"{tag}-{i}")), flush=True)
        else:
            got: list[list[str]] = []

            async def send(event: object) -> None:
                got.append([event.event_id, event.message.params["data"]])  # type: ignore[attr-defined]

            print(json.dumps(await events.replay_events_after(args[0], send)))
            for row in got:
                print(json.dumps(row))
        close = getattr(events, "close", None)
        if close is not None:
            await close()
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
