"""Run by the session-layer tests in separate processes.

    python worker.py <command> <store url> [args...]

Each command opens the store with ``open_store(url)``, prints ``ready``, waits for a
line on stdin (so that all processes start their work at the same moment), does its
work and prints its results as JSON on the last line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from fastmcp_sessions import open_store
from fastmcp_sessions.errors import StaleFencingTokenError
from fastmcp_sessions.sessions import FlowNotFoundError, Lock, ServerRegistry, SessionStore


async def wait_for_go() -> None:
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def lock_loop(store: Any, name: str, iterations: int, lease: float) -> list[int]:
    """Take the lock ``iterations`` times; inside, do a deliberately non-atomic read-modify-write."""
    fences = []
    for _ in range(iterations):
        async with Lock(store, name, lease=lease, timeout=60, poll_interval=0.02) as held:
            fences.append(held.fencing_token)
            record = await store.get("shared", collection="lock-test") or {"n": 0, "fences": []}
            await asyncio.sleep(0.005)  # widen the window a broken lock would let others into
            await store.put(
                "shared",
                {"n": record["n"] + 1, "fences": [*record["fences"], held.fencing_token]},
                collection="lock-test",
            )
    return fences


async def main(command: str, url: str, args: list[str]) -> Any:
    store = open_store(url)
    async with store:
        if command == "lock":
            await wait_for_go()
            return await lock_loop(store, args[0], int(args[1]), float(args[2]))
        if command == "lock-crash":
            lock = Lock(store, args[0], lease=float(args[1]), timeout=30)
            fence = await lock.acquire()
            print(json.dumps(fence), flush=True)
            os._exit(0)  # die holding the lock: no release, no cleanup
        if command == "fenced-hold":
            # Take the lock, report the token, then wait (the test pauses us past the lease
            # with SIGSTOP meanwhile) and only then write what the lock protects.
            lock = Lock(store, args[0], lease=float(args[1]), timeout=30)
            fence = await lock.acquire()
            print(json.dumps(fence), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            try:
                await lock.put_fenced("resource", {"by": "first", "fence": fence}, collection="fenced")
            except StaleFencingTokenError as exc:
                return {"fence": fence, "refused": str(exc)}
            return {"fence": fence, "refused": None}
        if command == "fenced-take":
            async with Lock(store, args[0], lease=30, timeout=60) as held:
                fence = held.fencing_token
                await held.put_fenced("resource", {"by": "second", "fence": fence}, collection="fenced")
            return fence
        if command == "registry":
            registry = ServerRegistry(store, namespace=args[0] or None)
            await wait_for_go()
            return [await registry.add(url) for url in args[1:]]
        if command == "update":
            sessions = SessionStore(store)
            identity, session_id, field, count = args[0], args[1], args[2], int(args[3])
            await wait_for_go()
            for i in range(count):
                if field == "headers":
                    await sessions.update(identity, session_id, headers={"X-Worker": str(i)})
                else:
                    await sessions.update(
                        identity, session_id, callback_url=f"https://app.example.com/cb/{i}"
                    )
            return count
        if command == "consume":
            sessions = SessionStore(store)
            await wait_for_go()
            try:
                flow = await sessions.flows.consume(args[0], identity=args[1])
            except FlowNotFoundError:
                return None
            return flow.code_verifier.get_secret_value()
        if command == "create":
            sessions = SessionStore(store, max_sessions_per_identity=int(args[1]))
            await wait_for_go()
            made = 0
            for _ in range(int(args[2])):
                try:
                    await sessions.create(args[0], server_url="https://srv.example.com/mcp")
                    made += 1
                except Exception as exc:  # SessionLimitError expected once the cap is reached
                    if type(exc).__name__ != "SessionLimitError":
                        raise
            return made
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
    print(json.dumps(result), flush=True)
