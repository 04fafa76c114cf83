"""The store's Lua scripts, one ``.lua`` file each in ``scripts/``, read once at import.

A script runs by ``EVALSHA`` under the SHA1 of its source; a server that does not know
it yet answers ``NOSCRIPT`` and the store loads it there (``SCRIPT LOAD``) and runs the
command again. Versions are compared by the header (format tag and version) at the
start of the stored string.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files


class Script:
    """A Lua script: its source and the SHA1 that ``EVALSHA`` names it by."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str, source: str | None = None) -> None:
        self.name = name
        if source is None:
            source = files(__package__).joinpath("scripts", f"{name}.lua").read_text(encoding="utf-8")
        self.source = source
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    def __repr__(self) -> str:
        return f"Script({self.name!r}, sha={self.sha[:12]})"


READ = Script("read")
GET_MANY = Script("get_many")
READ_MANY = Script("read_many")
COMPARE_AND_SET = Script("compare_and_set")
DELETE_IF_VERSION = Script("delete_if_version")
PUT_MANY_PX = Script("put_many_px")
EVENT_APPEND = Script("event_append")
"""For the Redis event store: ``XADD … MAXLEN ~`` and the stream's TTL in one step."""
EVENT_READ = Script("event_read")
"""For the Redis event store: a stream's entries from one id on, as a flat list."""

ALL = (READ, GET_MANY, READ_MANY, COMPARE_AND_SET, DELETE_IF_VERSION, PUT_MANY_PX, EVENT_APPEND, EVENT_READ)
"""Every script, once: what the package ships and a test checks."""
