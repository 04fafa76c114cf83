"""``sessions`` for fleets: every identity and FastMCP server in a store; one server's
sessions listed, shown, deleted or purged.

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
    rows = await _sessions_of(_server_view(store, server_name))
    if not rows:
        await _known_server(store, server_name)
    table = format_table(
        ["session id", "kind", "principal", "keys", "expires in"],
        [[r["session_id"], r["kind"], r["principal"], str(r["keys"]), r["expires_in"]] for r in rows],
    )
    text = table if rows else f"no live sessions for FastMCP server {server_name!r}"
    return Result({"server": server_name, "sessions": rows}, text)


def _server_view(store: Store, server_name: str) -> Store:
    return NamespacedStore(store, f"fastmcp/{server_name}/state")


def _parse_state_key(key: str) -> tuple[str, str, str]:
    """``(kind, principal, session id)`` of one key FastMCP wrote to ``fastmcp_state``."""
    if key.startswith("session:") and key.count(":") >= 2:
        _, principal, session_id = key.split(":", 2)
        return "session", principal, session_id
    return "request state", "-", key.partition(":")[0]


async def _keys_of_session(view: Store, session_id: str) -> list[str]:
    return sorted(k for k in await view.keys(STATE_COLLECTION) if _parse_state_key(k)[2] == session_id)


async def _known_server(store: Store, server_name: str) -> None:
    known = _server_names(await store.collections())
    if server_name not in known:
        others = ", ".join(known) or "none"
        raise NotFoundError(
            f"no FastMCP server named {server_name!r} in this store (servers found: {others}); list "
            "them with: fastmcp-sessions sessions list"
        )


async def server_session(store: Store, server_name: str, session_id: str) -> Result:
    """One session of the FastMCP server ``server_name``: the names and expiries of its keys
    (never a value)."""
    view = _server_view(store, server_name)
    keys = await _keys_of_session(view, session_id)
    if not keys:
        await _known_server(store, server_name)
        raise NotFoundError(
            f"no live session {session_id!r} for FastMCP server {server_name!r}; list them with: "
            f"fastmcp-sessions sessions list --server {server_name}"
        )
    rows = []
    for key in keys:
        kind, principal, _ = _parse_state_key(key)
        _, ttl = await view.ttl(key, collection=STATE_COLLECTION)
        name = "(session)" if kind == "session" else key.partition(":")[2]
        expires_in = format_ttl(ttl)
        rows.append({"key": name, "kind": kind, "principal": _short(principal), "expires_in": expires_in})
    table = format_table(
        ["key", "kind", "principal", "expires in"],
        [[r["key"], r["kind"], r["principal"], r["expires_in"]] for r in rows],
    )
    return Result({"server": server_name, "session_id": session_id, "keys": rows}, table)


async def delete_server_sessions(store: Store, server_name: str, session_id: str | None) -> Result:
    """Delete one session (``session_id``) or every session of the FastMCP server ``server_name``;
    the server's other parts (its OAuth proxy state, cache, events) are left alone."""
    view = _server_view(store, server_name)
    if session_id is None:
        keys = sorted(await view.keys(STATE_COLLECTION))
        if not keys:
            await _known_server(store, server_name)
    else:
        keys = await _keys_of_session(view, session_id)
        if not keys:
            await _known_server(store, server_name)
            raise NotFoundError(
                f"no live session {session_id!r} for FastMCP server {server_name!r}; nothing deleted"
            )
    sessions = {_parse_state_key(k)[2] for k in keys}
    deleted = await view.delete_many(keys, collection=STATE_COLLECTION) if keys else 0
    what = f"session {session_id}" if session_id is not None else f"{len(sessions)} session(s)"
    return Result(
        {"server": server_name, "sessions": len(sessions), "keys_deleted": deleted},
        f"deleted {what} of FastMCP server {server_name!r} ({deleted} key(s))",
    )


def _short(principal: str) -> str:
    return principal[:12] if principal not in ("-", "anon") else principal


async def _sessions_of(view: Store) -> list[dict[str, Any]]:
    sessions: dict[tuple[str, str], dict[str, Any]] = {}
    for key in sorted(await view.keys(STATE_COLLECTION)):
        kind, principal, session_id = _parse_state_key(key)
        _, ttl = await view.ttl(key, collection=STATE_COLLECTION)
        row = sessions.setdefault(
            (kind, session_id),
            {
                "session_id": session_id,
                "kind": kind,
                "principal": _short(principal),
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
        count = len(await _sessions_of(_server_view(store, name)))
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
