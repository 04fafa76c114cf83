"""An MCP client app that keeps, per user, a session and OAuth tokens for each of several servers.

Think of a chat backend whose users connect their own MCP servers: for every
(user, server) the app keeps one ``Session`` record (server URL, headers, metadata,
OAuth client registration and tokens) in a fastmcp-sessions store, so any worker
process can pick up any user's connection, and a token refresh happens once even
when several workers find the token expired together.

    python examples/client_app.py --user alice http://127.0.0.1:8000/mcp http://127.0.0.1:8001/mcp
    python examples/client_app.py --user alice --oauth https://mcp.example.com/mcp   # servers needing OAuth

Each run connects the user to every server given (reusing the session a previous run
created), lists the server's tools and remembers them in the session's metadata, then
prints the user's sessions. The store is ``open_store()``'s (env
``FASTMCP_SESSIONS_URL``, else the encrypted disk store). Operators inspect it with
``fastmcp-sessions sessions list --identity alice`` and ``fastmcp-sessions tokens list
--identity alice`` (which never print a token).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from fastmcp import Client

from fastmcp_sessions import Store, open_store
from fastmcp_sessions.sessions import ServerRegistry, Session, SessionStore, normalize_url


class ClientApp:
    """Per-user MCP sessions over one store: connect, call, and keep OAuth tokens."""

    def __init__(self, store: Store, *, callback_url: str = "http://127.0.0.1:8765/oauth/callback") -> None:
        self.store = store
        self.callback_url = callback_url
        self.sessions = SessionStore(store, registry=ServerRegistry(store))

    async def connect(self, user: str, server_url: str, *, oauth: bool = False) -> tuple[Session, bool]:
        """The user's live session with ``server_url``, created if there is none; ``(session, created)``."""
        wanted = normalize_url(server_url)
        for session in await self.sessions.list(user):
            if session.server_url == wanted:
                return session, False
        session = await self.sessions.create(
            user, server_url=wanted, callback_url=self.callback_url if oauth else None, pending_auth=oauth
        )
        return session, True

    def auth(self, user: str, session: Session, *, oauth: bool) -> Any:
        """The httpx auth of this session: an OAuth client whose tokens live in the session record
        (refresh single-flight across processes), or ``None`` for servers without OAuth."""
        if not oauth and session.auth_status == "none":
            return None
        from mcp.shared.auth import OAuthClientMetadata

        from fastmcp_sessions.sessions import SingleFlightOAuthClientProvider

        async def redirect(url: str) -> None:
            # A web app would redirect the user's browser here; this demo prints the URL.
            print(f"open this URL to authorize {session.server_url}:\n  {url}", file=sys.stderr)

        async def callback() -> tuple[str, str | None]:
            # ...and its OAuth callback route would hand over ?code=...&state=... ; here: paste it.
            from urllib.parse import parse_qs, urlsplit

            redirected = await asyncio.to_thread(input, "paste the URL you were redirected to: ")
            query = parse_qs(urlsplit(redirected).query)
            return query["code"][0], query.get("state", [None])[0]

        return SingleFlightOAuthClientProvider(
            server_url=session.server_url,
            client_metadata=OAuthClientMetadata(
                client_name="fastmcp-sessions example client",
                redirect_uris=[self.callback_url],  # type: ignore[list-item]
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
            ),
            storage=self.sessions.token_storage(user, session.session_id),
            redirect_handler=redirect,
            callback_handler=callback,
            refresh_lock_store=self.store,
        )

    async def list_tools(self, user: str, server_url: str, *, oauth: bool = False) -> list[str]:
        """Connect ``user`` to ``server_url``, list its tools and remember them in the session's metadata."""
        session, _ = await self.connect(user, server_url, oauth=oauth)
        async with Client(session.server_url, auth=self.auth(user, session, oauth=oauth)) as client:
            names = sorted(tool.name for tool in await client.list_tools())
        await self.sessions.update(user, session.session_id, metadata={**session.metadata, "tools": names})
        return names

    async def call(self, user: str, server_url: str, tool: str, arguments: dict[str, Any]) -> Any:
        """Call ``tool`` on ``server_url`` as ``user`` (through the user's session)."""
        session, _ = await self.connect(user, server_url)
        async with Client(session.server_url, auth=self.auth(user, session, oauth=False)) as client:
            return (await client.call_tool(tool, arguments)).data


async def run(user: str, servers: list[str], *, oauth: bool) -> int:
    """Connect ``user`` to every server, list their tools, print the user's sessions."""
    store = open_store()
    try:
        app = ClientApp(store)
        for url in servers:
            session, created = await app.connect(user, url, oauth=oauth)
            tools = await app.list_tools(user, url, oauth=oauth)
            state = "new session" if created else "reused session"
            print(
                f"{user} -> {session.server_name or url}: {state} {session.session_id[:8]}..., tools: {tools}"
            )
        print(f"\n{user}'s sessions:")
        for session in await app.sessions.list(user):
            tokens = "tokens stored" if session.oauth.tokens is not None else "no tokens"
            name = session.server_name or "-"
            print(f"  {session.session_id[:8]}...  {name:<16} {session.server_url}  ({tokens})")
    finally:
        await store.close()
    return 0


def main() -> int:
    """Parse the command line and run the demo."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--user", default="alice", help="the app's user (identity)")
    parser.add_argument("--oauth", action="store_true", help="the servers require OAuth")
    parser.add_argument("servers", nargs="+", metavar="SERVER_URL")
    args = parser.parse_args()
    return asyncio.run(run(args.user, args.servers, oauth=args.oauth))


if __name__ == "__main__":
    sys.exit(main())
