"""The main job, end to end: a FastMCP server on the encrypted disk store survives a restart.

    python examples/demo.py

1. starts examples/notes_server.py as a real process (stdio), creates a session and
   stores notes in it; the process exits;
2. starts the server again (a new process over the same database file) and reads the
   notes back;
3. shows where the data and key live, their file modes, and that the database file
   holds no plaintext.

It uses its own app name (``fastmcp-sessions-demo``) so it never touches a real
server's data; set FASTMCP_SESSIONS_APP to point it elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import sys
from pathlib import Path

from fastmcp import Client
from fastmcp.client.transports import PythonStdioTransport

os.environ.setdefault("FASTMCP_SESSIONS_APP", "fastmcp-sessions-demo")
os.environ.setdefault("FASTMCP_CHECK_FOR_UPDATES", "off")

from fastmcp_sessions import DiskStore, open_store
from fastmcp_sessions.encryption import default_key_file

SERVER = Path(__file__).with_name("notes_server.py")


def server() -> Client:  # type: ignore[type-arg]
    transport = PythonStdioTransport(SERVER, python_cmd=sys.executable, env=dict(os.environ))
    return Client(transport)


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


async def main() -> int:
    marker = f"secret note {secrets.token_hex(4)}"
    print("1. starting the server (process #1) and writing session state")
    async with server() as client:
        session_id = (await client.call_tool("create_session", {})).data
        await client.call_tool("remember", {"session_id": session_id, "note": marker})
        await client.call_tool("remember", {"session_id": session_id, "note": "second note"})
    print(f"   session {session_id[:8]}... holds 2 notes; process #1 has exited")

    print("2. starting the server again (process #2) over the same file")
    async with server() as client:
        notes = (await client.call_tool("recall", {"session_id": session_id})).data
    print(f"   recalled: {notes}")

    store = open_store()
    assert isinstance(store, DiskStore)
    await store.close()
    db = store.path
    raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    plaintext_found = marker.encode() in raw
    key_file = default_key_file(os.environ["FASTMCP_SESSIONS_APP"])
    print("3. what is on disk")
    print(f"   database  {db}  mode {mode(db)}  (directory {mode(db.parent)})")
    if key_file.exists():
        print(f"   key file  {key_file}  mode {mode(key_file)}")
    print(f"   plaintext of the note in the database file: {'FOUND' if plaintext_found else 'none'}")

    ok = notes == [marker, "second note"] and not plaintext_found and mode(db) == "0o600"
    print("\nOK: state survived the restart, encrypted at rest" if ok else "\nFAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
