"""Moving from the plain recipe to ``server_storage`` keeps the data: adoption at start-up.

The plain recipe (``FastMCP(session_state_store=open_store())``,
``OAuthProxy(client_storage=store)``) writes FastMCP's collections at the top of the
store (``fastmcp_state``...); ``server_storage(server_name=...)`` reads them under
``fastmcp/<server_name>/<part>/``. At start-up each durable collection (session state,
the OAuth proxy's clients and tokens) that this server's part does not hold yet is copied
from the top of the store with its remaining TTL, so sessions and logins stay valid.

The originals are left in place (going back to the plain recipe still works); a later
start copies nothing, because the part is no longer empty. Writes use ``put_if_absent``,
so replicas starting together copy each entry once and never overwrite newer data.
Resumable streams and the response cache are short-lived and not copied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastmcp_sessions.layout import OAUTH_PROXY_COLLECTIONS, STATE_COLLECTIONS
from fastmcp_sessions.stores.base import Store

__all__ = ["DURABLE_COLLECTIONS", "adopt_plain_layout"]

logger = logging.getLogger("fastmcp_sessions")

DURABLE_COLLECTIONS: tuple[str, ...] = (*STATE_COLLECTIONS, *OAUTH_PROXY_COLLECTIONS)
"""The collections of the plain recipe that outlive a restart, copied on adoption."""

_BATCH = 200


async def adopt_plain_layout(
    base: Store, route: Callable[[str], Store | None], server_name: str
) -> dict[str, int]:
    """Copy the plain recipe's durable collections of ``base`` into this server's empty parts.

    ``route`` gives the part each collection goes to. Returns how many entries were copied
    per collection (only collections where something was copied).
    """
    copied: dict[str, int] = {}
    for collection in DURABLE_COLLECTIONS:
        target = route(collection)
        if target is None or not await base.keys(collection, limit=1):
            continue
        if await target.keys(collection, limit=1):
            continue  # adopted on an earlier start, or written since: the part is the truth
        count = 0
        keys = await base.keys(collection)
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            for key, (value, ttl) in zip(
                batch, await base.ttl_many(batch, collection=collection), strict=True
            ):
                if value is not None and await target.put_if_absent(
                    key, value, collection=collection, ttl=ttl
                ):
                    count += 1
        if count:
            copied[collection] = count
    if copied:
        logger.info(
            "server_storage(server_name=%r) adopted the plain recipe's data: %s; the originals are left "
            "in place, so switching back to the plain recipe still finds them",
            server_name,
            ", ".join(f"{n} entries of {c!r}" for c, n in copied.items()),
        )
    return copied
