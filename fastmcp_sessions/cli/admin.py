"""Session-level commands: ``sessions``, ``servers`` and ``tokens``, over the session layer.

    sessions list                               every identity (as digests) and FastMCP server in the store
    sessions list  --identity ID                list an identity's live sessions
    sessions list  --server NAME                a FastMCP server's sessions (server_storage(server_name=NAME))
    sessions show  --identity ID SESSION_ID     one session in detail (no token, no header value)
    sessions show  --server NAME SESSION_ID     a FastMCP server's session: key names and expiries
    sessions rm    --identity ID SESSION_ID     delete one session with its OAuth data
    sessions rm    --server NAME SESSION_ID     delete one session of a FastMCP server
    sessions purge --identity ID --yes          delete every session of one identity
    sessions purge --server NAME --yes          delete every session of a FastMCP server
    servers  list  [--namespace NS]             the server registry (global, or an identity's)
    servers  add   URL [--name NAME]            register a server (prints the name it got)
    servers  rm    NAME                         forget a server name
    tokens   list  --identity ID                which sessions / servers hold OAuth tokens
    tokens   revoke --identity ID (--session SESSION_ID | --server URL | --all)

Tokens are never printed: only whether they exist, their type, scope and expiry.
``tokens revoke`` forgets tokens locally (the next use starts a new OAuth flow); it does
not call the authorization server's revocation endpoint. Identities appear in storage
only as digests; an application that passes ``identity_key=`` to ``SessionStore`` must
give the same secret here (``--identity-key-env VAR``).
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastmcp_sessions.cli._common import (
    AlreadyExistsError,
    Console,
    NotFoundError,
    Result,
    UsageError,
    format_table,
    format_ttl,
)
from fastmcp_sessions.cli._stores import chosen_url, open_cli_store
from fastmcp_sessions.stores._url import redact_url
from fastmcp_sessions.stores.base import Store

TOKEN_COLLECTION = "mcp-oauth-token"  # noqa: S105 - a collection name, not a secret
CLIENT_INFO_COLLECTION = "mcp-oauth-client-info"
EXPIRY_COLLECTION = "mcp-oauth-token-expiry"
"""The collections of FastMCP's client ``OAuth(token_storage=...)``, kept per identity."""


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``sessions``, ``servers`` and ``tokens`` command groups to ``commands``."""
    identity = _identity_options(required=True)

    sessions = commands.add_parser(
        "sessions",
        parents=[common],
        help="list identities, FastMCP servers and their sessions; show, delete, purge one identity's or "
        "server's",
    )
    session_commands = sessions.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = session_commands.add_parser(
        "list",
        parents=[common, _identity_options(required=False)],
        help="an identity's live sessions; without --identity, every identity (digests) and FastMCP server",
    )
    p.add_argument(
        "--server",
        metavar="NAME",
        help="the sessions of the FastMCP server that server_storage(..., server_name=NAME) serves",
    )
    p.set_defaults(handler=_sessions_list)
    whose = _identity_options(required=False)
    whose.add_argument(
        "--server",
        metavar="NAME",
        help="instead of --identity: the FastMCP server that server_storage(..., server_name=NAME) serves",
    )
    p = session_commands.add_parser(
        "show", parents=[common, whose], help="one session in detail (--identity ID or --server NAME)"
    )
    p.add_argument("session_id", metavar="SESSION_ID")
    p.set_defaults(handler=_sessions_show)
    p = session_commands.add_parser(
        "rm", parents=[common, whose], help="delete one session (--identity ID or --server NAME)"
    )
    p.add_argument("session_id", metavar="SESSION_ID")
    p.set_defaults(handler=_sessions_rm)
    p = session_commands.add_parser(
        "purge",
        parents=[common, whose],
        help="delete every session of one identity (--identity ID) or FastMCP server (--server NAME)",
    )
    p.add_argument("--yes", action="store_true", help="confirm: delete every session it names")
    p.set_defaults(handler=_sessions_purge)

    namespace = argparse.ArgumentParser(add_help=False)
    namespace.add_argument(
        "--namespace",
        metavar="NS",
        default=None,
        help="a private registry (e.g. an identity); default: global",
    )
    namespace.add_argument(
        "--identity-key-env",
        metavar="VAR",
        help="environment variable holding the application's identity_key",
    )
    servers = commands.add_parser("servers", parents=[common], help="the registry of MCP server names")
    server_commands = servers.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = server_commands.add_parser("list", parents=[common, namespace], help="registered servers")
    p.set_defaults(handler=_servers_list)
    p = server_commands.add_parser("add", parents=[common, namespace], help="register a server URL")
    p.add_argument("server_url", metavar="URL")
    p.add_argument("--name", default=None, help="the short name (default: derived from the URL)")
    p.set_defaults(handler=_servers_add)
    p = server_commands.add_parser("rm", parents=[common, namespace], help="forget a server name")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=_servers_rm)

    tokens = commands.add_parser(
        "tokens", parents=[common], help="which OAuth tokens are stored; revoke them"
    )
    token_commands = tokens.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = token_commands.add_parser("list", parents=[common, identity], help="stored tokens (never printed)")
    p.set_defaults(handler=_tokens_list)
    p = token_commands.add_parser("revoke", parents=[common, identity], help="forget stored tokens")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--session", metavar="SESSION_ID", help="the tokens of this session")
    which.add_argument(
        "--server",
        metavar="URL",
        help="the tokens of this server, named as tokens list shows it (name or URL)",
    )
    which.add_argument("--all", action="store_true", help="every token of the identity")
    p.add_argument(
        "--client",
        action="store_true",
        help="also forget the OAuth client registration (re-register next time)",
    )
    p.set_defaults(handler=_tokens_revoke)


# -- plumbing ----------------------------------------------------------------------------


def _identity_options(*, required: bool) -> argparse.ArgumentParser:
    identity = argparse.ArgumentParser(add_help=False)
    identity.add_argument(
        "--identity",
        required=required,
        metavar="ID",
        help="the user the sessions belong to" + ("" if required else " (default: every identity)"),
    )
    identity.add_argument(
        "--identity-key-env",
        metavar="VAR",
        help="environment variable holding the identity_key the application gives SessionStore, if any",
    )
    identity.add_argument(
        "--collection",
        default=None,
        metavar="NAME",
        help="the sessions collection (default fastmcp_sessions)",
    )
    return identity


def _identity_key(args: argparse.Namespace, console: Console) -> str | None:
    name = getattr(args, "identity_key_env", None)
    if not name:
        return None
    value = os.environ.get(name, "")
    if not value:
        raise UsageError(f"--identity-key-env: environment variable {name} is not set or empty")
    console.redactor.add(value)
    return value


@asynccontextmanager
async def _store(
    console: Console, args: argparse.Namespace, *, read_only: bool = False
) -> AsyncIterator[Store]:
    url, _ = chosen_url(args.url)
    console.redactor.add_url(url)
    store = open_cli_store(url, read_only=read_only)
    try:
        yield store
    finally:
        await store.close()


def _session_store(store: Store, console: Console, args: argparse.Namespace) -> Any:
    from fastmcp_sessions.sessions import SessionStore

    options: dict[str, Any] = {"identity_key": _identity_key(args, console)}
    if args.collection:
        options["collection"] = args.collection
    return SessionStore(store, **options)


def _server(url: str) -> str:
    return redact_url(url)


def _when(value: Any) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


def _session_row(session: Any) -> dict[str, Any]:
    tokens = session.oauth.tokens
    client = session.oauth.client
    return {
        "session_id": session.session_id,
        "server_name": session.server_name,
        "server_url": _server(session.server_url),
        "transport": session.transport,
        "active": session.active,
        "auth_status": session.auth_status,
        "has_tokens": tokens is not None,
        "token_expires_at": None if tokens is None else _when(tokens.expires_at),
        "has_refresh_token": tokens is not None and tokens.refresh_token is not None,
        "client_id": None if client is None else client.client_id,
        "created_at": _when(session.created_at),
        "last_used_at": _when(session.last_used_at),
        "expires_at": _when(session.expires_at),
        "header_names": sorted(session.headers),
        "metadata": session.metadata,
    }


# -- sessions --------------------------------------------------------------------------


def _identity_or_server(args: argparse.Namespace, *, required: bool) -> None:
    if args.server is not None and args.identity is not None:
        raise UsageError(
            "give --identity (a client app's sessions) or --server (a FastMCP server's), not both"
        )
    if required and args.server is None and args.identity is None:
        raise UsageError(
            f"sessions {args.action} needs --identity ID (a client app's sessions) or --server NAME "
            "(a FastMCP server's); list both with: fastmcp-sessions sessions list"
        )


async def _sessions_list(console: Console, args: argparse.Namespace) -> Result:
    _identity_or_server(args, required=False)
    if args.server is not None:
        from fastmcp_sessions.cli.fleet import server_sessions

        async with _store(console, args, read_only=True) as store:
            return await server_sessions(store, args.server)
    if args.identity is None:
        from fastmcp_sessions.cli.fleet import everyone

        async with _store(console, args, read_only=True) as store:
            return await everyone(_session_store(store, console, args), store)
    async with _store(console, args, read_only=True) as store:
        sessions = await _session_store(store, console, args).list(args.identity)
    rows = [_session_row(s) for s in sessions]
    table = format_table(
        ["session id", "server", "status", "active", "tokens", "last used", "expires"],
        [
            [
                r["session_id"],
                r["server_name"] or r["server_url"],
                r["auth_status"],
                "yes" if r["active"] else "no",
                "yes" if r["has_tokens"] else "no",
                r["last_used_at"],
                r["expires_at"],
            ]
            for r in rows
        ],
    )
    text = table if rows else f"no live sessions for identity {args.identity!r}"
    return Result({"identity": args.identity, "sessions": rows}, text)


async def _sessions_show(console: Console, args: argparse.Namespace) -> Result:
    _identity_or_server(args, required=True)
    if args.server is not None:
        from fastmcp_sessions.cli.fleet import server_session

        async with _store(console, args, read_only=True) as store:
            return await server_session(store, args.server, args.session_id)
    async with _store(console, args, read_only=True) as store:
        session = await _session_store(store, console, args).get(args.identity, args.session_id, touch=False)
    if session is None:
        raise NotFoundError(
            f"no live session {args.session_id!r} for identity {args.identity!r}; list them with: "
            f"fastmcp-sessions sessions list --identity {args.identity!r}"
        )
    row = _session_row(session)
    tokens = session.oauth.tokens
    lines = [f"{name:<18} {_plain(value)}" for name, value in row.items() if name != "metadata"]
    if tokens is not None:
        lines.append(f"{'token_type':<18} {tokens.token_type}")
        lines.append(f"{'scope':<18} {tokens.scope or '-'}")
    lines.append(f"{'metadata':<18} {_plain(row['metadata'])}")
    if tokens is not None:
        row["token_type"] = tokens.token_type
        row["scope"] = tokens.scope
    return Result({"identity": args.identity, "session": row}, "\n".join(lines))


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        import json

        return json.dumps(value, sort_keys=True) if value else "-"
    return str(value)


async def _sessions_rm(console: Console, args: argparse.Namespace) -> Result:
    _identity_or_server(args, required=True)
    if args.server is not None:
        from fastmcp_sessions.cli.fleet import delete_server_sessions

        async with _store(console, args) as store:
            return await delete_server_sessions(store, args.server, args.session_id)
    async with _store(console, args) as store:
        deleted = await _session_store(store, console, args).delete(args.identity, args.session_id)
    if not deleted:
        raise NotFoundError(
            f"no live session {args.session_id!r} for identity {args.identity!r}; nothing deleted"
        )
    return Result(
        {"identity": args.identity, "session_id": args.session_id, "deleted": True},
        f"deleted session {args.session_id} of identity {args.identity!r} (with its OAuth data)",
    )


async def _sessions_purge(console: Console, args: argparse.Namespace) -> Result:
    _identity_or_server(args, required=True)
    if args.server is not None:
        if not args.yes:
            raise UsageError(
                f"purge deletes every session of FastMCP server {args.server!r}: add --yes to confirm"
            )
        from fastmcp_sessions.cli.fleet import delete_server_sessions

        async with _store(console, args) as store:
            return await delete_server_sessions(store, args.server, None)
    if not args.yes:
        raise UsageError(f"purge deletes every session of identity {args.identity!r}: add --yes to confirm")
    async with _store(console, args) as store:
        count = await _session_store(store, console, args).purge(args.identity)
    return Result(
        {"identity": args.identity, "deleted": count},
        f"deleted {count} session(s) of identity {args.identity!r}",
    )


# -- servers ---------------------------------------------------------------------------


def _registry(store: Store, console: Console, args: argparse.Namespace) -> Any:
    from fastmcp_sessions.sessions import ServerRegistry

    return ServerRegistry(store, namespace=args.namespace, identity_key=_identity_key(args, console))


def _scope(args: argparse.Namespace) -> str:
    return "global" if args.namespace is None else f"namespace {args.namespace!r}"


async def _servers_list(console: Console, args: argparse.Namespace) -> Result:
    async with _store(console, args, read_only=True) as store:
        servers: dict[str, str] = await _registry(store, console, args).list()
    rows = sorted((name, _server(url)) for name, url in servers.items())
    data = {"namespace": args.namespace, "servers": [{"name": n, "url": u} for n, u in rows]}
    text = format_table(["name", "url"], rows) if rows else f"no servers registered ({_scope(args)})"
    return Result(data, text)


async def _servers_add(console: Console, args: argparse.Namespace) -> Result:
    from fastmcp_sessions.sessions import SessionError
    from fastmcp_sessions.sessions.errors import ServerNameConflictError

    async with _store(console, args) as store:
        registry = _registry(store, console, args)
        try:
            name = await registry.add(args.server_url, name=args.name)
        except ServerNameConflictError as exc:
            raise await _conflict(registry, args) from exc
        except SessionError as exc:
            raise UsageError(str(exc)) from exc
    url = _server(args.server_url)
    return Result(
        {"namespace": args.namespace, "name": name, "url": url},
        f"registered {url} as {name!r} ({_scope(args)})",
    )


async def _conflict(registry: Any, args: argparse.Namespace) -> AlreadyExistsError:
    """What ``servers add`` clashed with, in the command's own terms."""
    namespace = "" if args.namespace is None else f" --namespace {shlex.quote(args.namespace)}"
    url = _server(args.server_url)
    existing = await registry.name_for(args.server_url)
    if existing is not None and existing != args.name:
        return AlreadyExistsError(
            f"{url} is already registered as {existing!r} ({_scope(args)}); to rename it, run "
            f"`fastmcp-sessions servers rm {shlex.quote(existing)}{namespace}`, then add it again with "
            f"--name {shlex.quote(args.name)}"
        )
    taken_by = await registry.get(args.name)
    other = f" by {_server(taken_by)}" if taken_by else ""
    return AlreadyExistsError(
        f"the name {args.name!r} is already taken{other} ({_scope(args)}); pick another --name, or free it "
        f"with `fastmcp-sessions servers rm {shlex.quote(args.name)}{namespace}` first"
    )


async def _servers_rm(console: Console, args: argparse.Namespace) -> Result:
    async with _store(console, args) as store:
        removed = await _registry(store, console, args).remove(args.name)
    if not removed:
        raise NotFoundError(
            f"no server named {args.name!r} ({_scope(args)}); list them with: fastmcp-sessions servers list"
        )
    return Result({"namespace": args.namespace, "name": args.name, "removed": True}, f"removed {args.name!r}")


# -- tokens ----------------------------------------------------------------------------


def _names_server(given: str, name: str | None, url: str) -> bool:
    """Whether ``--server`` names this server as ``tokens list`` shows it: its name, its URL (as
    stored or as shown, with any password redacted), or a URL prefix of it."""
    wanted = given.rstrip("/")
    if name is not None and given == name:
        return True
    return any(u.rstrip("/") == wanted or u.startswith(wanted + "/") for u in (url, _server(url)))


async def _fastmcp_tokens(view: Store) -> list[dict[str, Any]]:
    """Tokens FastMCP's client ``OAuth(token_storage=identity view)`` keeps: one per server URL."""
    rows = []
    for key in await view.keys(TOKEN_COLLECTION):
        if not key.endswith("/tokens"):
            continue
        prefix = key[: -len("/tokens")]
        value, ttl = await view.ttl(key, collection=TOKEN_COLLECTION)
        if value is None:
            continue
        expiry = await view.get(f"{prefix}/token_expiry", collection=EXPIRY_COLLECTION)
        expires_at = None if not expiry else expiry.get("expires_at")
        rows.append(
            {
                "source": "fastmcp OAuth",
                "session_id": None,
                "server": _server(prefix),
                "token_type": value.get("token_type"),
                "scope": value.get("scope"),
                "has_refresh_token": bool(value.get("refresh_token")),
                "token_expires_at": None if expires_at is None else _epoch(float(expires_at)),
                "stored_for": format_ttl(ttl),
            }
        )
    return rows


def _epoch(value: float) -> str:
    from fastmcp_sessions.cli._common import format_time

    return format_time(value)


async def _tokens_list(console: Console, args: argparse.Namespace) -> Result:
    async with _store(console, args, read_only=True) as store:
        sessions_store = _session_store(store, console, args)
        rows: list[dict[str, Any]] = []
        for session in await sessions_store.list(args.identity):
            tokens = session.oauth.tokens
            if tokens is None:
                continue
            rows.append(
                {
                    "source": "session",
                    "session_id": session.session_id,
                    "server": session.server_name or _server(session.server_url),
                    "token_type": tokens.token_type,
                    "scope": tokens.scope,
                    "has_refresh_token": tokens.refresh_token is not None,
                    "token_expires_at": _when(tokens.expires_at),
                    "stored_for": None,
                }
            )
        rows += await _fastmcp_tokens(sessions_store.identity_store(args.identity))
    table = format_table(
        ["source", "session id", "server", "type", "scope", "refresh", "expires"],
        [
            [
                r["source"],
                r["session_id"],
                r["server"],
                r["token_type"],
                r["scope"],
                "yes" if r["has_refresh_token"] else "no",
                r["token_expires_at"],
            ]
            for r in rows
        ],
    )
    text = table if rows else f"no stored tokens for identity {args.identity!r}"
    return Result({"identity": args.identity, "tokens": rows}, text)


async def _tokens_revoke(console: Console, args: argparse.Namespace) -> Result:
    revoked: list[str] = []
    async with _store(console, args) as store:
        sessions_store = _session_store(store, console, args)
        if args.session or args.all or args.server:
            sessions = await sessions_store.list(args.identity)
            chosen = [
                s
                for s in sessions
                if args.all
                or s.session_id == args.session
                or (args.server and _names_server(args.server, s.server_name, s.server_url))
            ]
            if args.session and not chosen:
                raise NotFoundError(
                    f"no live session {args.session!r} for identity {args.identity!r}; list them with: "
                    f"fastmcp-sessions tokens list --identity {args.identity!r}"
                )
            for session in chosen:
                if session.oauth.tokens is None and not (args.client and session.oauth.client is not None):
                    continue
                storage = sessions_store.token_storage(args.identity, session.session_id)
                await (storage.clear() if args.client else storage.clear_tokens())
                revoked.append(f"session {session.session_id}")
        if args.server or args.all:
            view = sessions_store.identity_store(args.identity)
            prefixes = [
                k[: -len("/tokens")] for k in await view.keys(TOKEN_COLLECTION) if k.endswith("/tokens")
            ]
            if args.server:
                prefixes = [p for p in prefixes if _names_server(args.server, None, p)]
                if not prefixes and not revoked:
                    raise NotFoundError(
                        f"no stored tokens (of a session or of FastMCP's OAuth) for {_server(args.server)} "
                        f"and identity {args.identity!r}; list them with: fastmcp-sessions tokens list "
                        "--identity ..."
                    )
            for prefix in prefixes:
                await view.delete(f"{prefix}/tokens", collection=TOKEN_COLLECTION)
                await view.delete(f"{prefix}/token_expiry", collection=EXPIRY_COLLECTION)
                if args.client:
                    await view.delete(f"{prefix}/client_info", collection=CLIENT_INFO_COLLECTION)
                revoked.append(f"server {_server(prefix)}")
    what = "tokens and client registrations" if args.client else "tokens"
    text = (
        f"forgot the {what} of: " + ", ".join(revoked) + "; the next use starts a new OAuth flow"
        if revoked
        else "no stored tokens matched; nothing changed"
    )
    return Result({"identity": args.identity, "revoked": revoked, "client_too": args.client}, text)
