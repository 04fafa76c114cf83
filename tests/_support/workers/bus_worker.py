"""One process of a cross-process bus test: a listener or a publisher on the bus of a store.

    python bus_worker.py listen  STORE_URL SERVER_NAME [BUS_URL]
    python bus_worker.py publish STORE_URL SERVER_NAME [FIRST:]LAST [BUS_URL]

The listener prints ``READY`` once subscribed, then ``R <uri>`` for every
``ResourceUpdated`` and ``L <event>`` for every list-changed event it receives. The publisher
publishes ``ResourceUpdated("test://<i>")`` for i = FIRST (default 1)..LAST, one at a time, waits until
``flush()`` confirms each (retrying while the backend is down) and prints ``C <uri>``; then
``DONE``. Both stop on SIGTERM, closing the bus and the store. Plain stdout lines, flushed,
so the test reads them as they happen.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from mcp.server.subscriptions import ResourceUpdated, ServerEvent

from fastmcp_sessions import open_store
from fastmcp_sessions.buses import Bus, QueuedBus, bus_for_store


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def open_bus(store_url: str, server_name: str, bus_url: str | None) -> tuple[object, Bus]:
    store = open_store(store_url)
    bus = bus_for_store(open_store(bus_url) if bus_url else store, server_name=server_name)
    return store, bus


async def listen(bus: Bus, stop: asyncio.Event) -> None:
    def on_event(event: ServerEvent) -> None:
        if isinstance(event, ResourceUpdated):
            say(f"R {event.uri}")
        else:
            say(f"L {type(event).__name__}")

    unsubscribe = bus.subscribe(on_event)
    while not await bus.ready(5.0):
        pass
    say("READY")
    await stop.wait()
    unsubscribe()
    say(f"STATS {bus.stats}")


async def publish(bus: Bus, numbers: str, stop: asyncio.Event) -> None:
    assert isinstance(bus, QueuedBus)
    first, _, last = numbers.rpartition(":")
    for i in range(int(first or 1), int(last) + 1):
        uri = f"test://{i}"
        await bus.publish(ResourceUpdated(uri=uri))
        while not await bus.flush(1.0):
            if stop.is_set():
                return
        say(f"C {uri}")
        await asyncio.sleep(0.005)
    say("DONE")
    await stop.wait()


async def main(argv: list[str]) -> None:
    mode, store_url, server_name = argv[:3]
    rest = argv[3:]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if mode == "listen":
        store, bus = open_bus(store_url, server_name, rest[0] if rest else None)
        work = listen(bus, stop)
    else:
        store, bus = open_bus(store_url, server_name, rest[1] if len(rest) > 1 else None)
        work = publish(bus, rest[0], stop)
    try:
        await work
    finally:
        await bus.close()
        close = getattr(store, "close", None)
        if close is not None:
            await close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
