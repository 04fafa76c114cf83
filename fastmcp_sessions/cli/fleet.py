"""``sessions list`` for fleets: every identity and FastMCP server in a store, and one server's sessions.

A FastMCP server on ``server_storage(url, server_name=NAME)`` keeps its session state in
collection ``fastmcp_state`` of the view ``fastmcp/NAME/state``: ``session:<principal
digest or anon>:<session id>`` for ``UserSession`` state, ``<session id>:<key>`` for
``ctx.set_state``. Only names, counts and expiries are shown, never a value.
"""

from __future__ import annotations

from typing import Any

from fastmcp_sessions.cli._common import NotFoundError, Result, format_table, format_ttl
from fastmcp_sessions.stores.base import Store
from fastmcp_sessions.stores.namespaced import NamespacedStore

STATE_COLLECTION = "fastmcp_state"
"""The collection FastMCP writes session state to (``FastMCP(session_state_store=)``)."""


def _server_names(collections: list[str]) -> list[str]:
    return sorted({c.split("/")[1] for c in collections if c.startswith("fastmcp/") and c.count("/") >= 2})


async def server_sessions(store: Store, server_name: str) -> Result:
    """The sessions of the FastMCP server ``server_name``: one row per session id."""
    view = NamespacedStore(store, f"fastmcp/{server_name}/state")
    rows = await _sessions_of(view)
    if not rows:
        known = _server_names(await store.collections())
        if server_name not in known:
            others = ", ".join(known) or "none"
            raise NotFoundError(
                f"no FastMCP server named {server_name!r} in this store (servers found: {others}); list "
                "them with: fastmcp-sessions sessions list"
            )
    table = format_table(
        ["session id", "kind", "principal", "keys", "expires in"],
        [[r["session_id"], r["kind"], r["principal"], str(r["keys"]), r["expires_in"]] for r in rows],
    )
    text = table if rows else f"no live sessions for FastMCP server {server_name!r}"
    return Result({"server": server_name, "sessions": rows}, text)


async def _sessions_of(view: Store) -> list[dict[str, Any]]:
    sessions: dict[tuple[str, str], dict[str, Any]] = {}
    for key in sorted(await view.keys(STATE_COLLECTION)):
        if key.startswith("session:") and key.count(":") >= 2:
            _, principal, session_id = key.split(":", 2)
            kind = "session"
        else:
            session_id, principal, kind = key.partition(":")[0], "-", "request state"
        _, ttl = await view.ttl(key, collection=STATE_COLLECTION)
        row = sessions.setdefault(
            (kind, session_id),
            {
                "session_id": session_id,
                "kind": kind,
                "principal": principal[:12] if principal not in ("-", "anon") else principal,
                "keys": 0,
                "ttl": ttl,
            },
        )
        row["keys"] += 1
        if ttl is None or (row["ttl"] is not None and ttl > row["ttl"]):
            row["ttl"] = ttl
    rows = list(sessions.values())
    for row in rows:
        row["expires_in"] = format_ttl(row.pop("ttl"))
    return rows


async def everyone(sessions: Any, store: Store) -> Result:
    """Every identity with live client-app sessions (as digests) and every FastMCP server in ``store``."""
    identities = await sessions.identities()
    servers = []
    for name in _server_names(await store.collections()):
        count = len(await _sessions_of(NamespacedStore(store, f"fastmcp/{name}/state")))
        servers.append({"server": name, "sessions": count})
    people = [
        {
            "identity_digest": digest,
            "sessions": len(found),
            "servers": sorted({s.server_name or s.server_url for s in found}),
            "last_used_at": max(s.last_used_at for s in found).strftime("%Y-%m-%d %H:%M:%SZ"),
        }
        for digest, found in sorted(identities.items())
    ]
    parts = []
    if people:
        parts.append(
            format_table(
                ["identity (digest)", "sessions", "servers", "last used"],
                [
                    [
                        p["identity_digest"][:16],
                        str(p["sessions"]),
                        ", ".join(p["servers"]),
                        p["last_used_at"],
                    ]
                    for p in people
                ],
            )
            + "\nidentities are stored only as digests: see one with sessions list --identity ID"
        )
    if servers:
        parts.append(
            format_table(["fastmcp server", "sessions"], [[s["server"], str(s["sessions"])] for s in servers])
            + "\nsee one with: fastmcp-sessions sessions list --server NAME"
        )
    text = "\n\n".join(parts) or "no client-app identities and no FastMCP servers with sessions in this store"
    return Result({"identities": people, "servers": servers}, text)
