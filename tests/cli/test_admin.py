"""``sessions``, ``servers`` and ``tokens``: drive the session layer, never print a token."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, Context, FastMCP
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from fastmcp_sessions import Keyring, open_store
from fastmcp_sessions.fastmcp import server_storage
from fastmcp_sessions.sessions import ServerRegistry, SessionStore
from tests._support.cli_runner import CliRunner, assert_one_line_error

ACCESS, REFRESH, CLIENT_SECRET, HEADER = (
    "at-SECRET-1111",
    "rt-SECRET-2222",
    "cs-SECRET-3333",
    "hv-SECRET-4444",
)
FASTMCP_ACCESS = "at-SECRET-fastmcp-5555"
USER = "alice@example.com"


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", Keyring.generate_key())
    store_url = f"disk://{tmp_path / 'sessions.sqlite3'}"
    monkeypatch.setenv("FASTMCP_SESSIONS_URL", store_url)
    return store_url


def seed(url: str, identity_key: str | None = None) -> dict[str, str]:
    async def go() -> dict[str, str]:
        store = open_store(url)
        sessions = SessionStore(store, registry=ServerRegistry(store), identity_key=identity_key)
        a = await sessions.create(
            USER, server_url="https://mcp.example.com/mcp", headers={"X-Api-Key": HEADER}
        )
        b = await sessions.create(USER, server_url="https://other.example.org/mcp", metadata={"team": "blue"})
        await sessions.create("bob", server_url="https://mcp.example.com/mcp")
        storage = sessions.token_storage(USER, a.session_id)
        await storage.set_tokens(
            OAuthToken(access_token=ACCESS, refresh_token=REFRESH, expires_in=3600, scope="r")
        )
        await storage.set_client_info(
            OAuthClientInformationFull(
                client_id="client-a", client_secret=CLIENT_SECRET, redirect_uris=["http://127.0.0.1:9/cb"]
            )
        )
        # FastMCP's client OAuth(token_storage=identity view) layout, for a server not in any session.
        view = sessions.identity_store(USER)
        await view.put(
            "https://api.example.net/mcp/tokens",
            {"access_token": FASTMCP_ACCESS, "token_type": "Bearer", "expires_in": 60},
            collection="mcp-oauth-token",
            ttl=3600,
        )
        await view.put(
            "https://api.example.net/mcp/token_expiry",
            {"expires_at": time.time() + 60},
            collection="mcp-oauth-token-expiry",
        )
        await store.close()
        return {"a": a.session_id, "b": b.session_id}

    return asyncio.run(go())


def assert_no_secrets(*runs: Any) -> None:
    for run in runs:
        for secret in (ACCESS, REFRESH, CLIENT_SECRET, HEADER, FASTMCP_ACCESS):
            assert secret not in run.all, (secret, run.all)


def test_sessions_list_show_rm_purge(cli: CliRunner, url: str) -> None:
    ids = seed(url)
    listed = cli("sessions", "list", "--identity", USER, "--json")
    assert listed.code == 0, listed.all
    rows = {r["session_id"]: r for r in listed.json()["sessions"]}
    assert set(rows) == set(ids.values())
    assert rows[ids["a"]]["has_tokens"] and rows[ids["a"]]["header_names"] == ["X-Api-Key"]
    assert rows[ids["b"]]["metadata"] == {"team": "blue"}
    text = cli("sessions", "list", "--identity", USER)
    assert ids["a"] in text.out and "authorized" in text.out

    shown = cli("sessions", "show", "--identity", USER, ids["a"], "--json")
    assert shown.json()["session"]["client_id"] == "client-a"
    assert shown.json()["session"]["has_refresh_token"] is True
    shown_text = cli("sessions", "show", "--identity", USER, ids["a"])
    assert "X-Api-Key" in shown_text.out
    assert_no_secrets(listed, text, shown, shown_text)

    assert cli("sessions", "rm", "--identity", USER, ids["b"]).code == 0
    assert_one_line_error(cli("sessions", "rm", "--identity", USER, ids["b"]), 1)
    assert_one_line_error(cli("sessions", "show", "--identity", USER, "nope"), 1)
    assert_one_line_error(cli("sessions", "purge", "--identity", USER), 2)
    purged = cli("sessions", "purge", "--identity", USER, "--yes", "--json")
    assert purged.json()["deleted"] == 1
    assert cli("sessions", "list", "--identity", USER, "--json").json()["sessions"] == []
    assert len(cli("sessions", "list", "--identity", "bob", "--json").json()["sessions"]) == 1


def test_identity_key(cli: CliRunner, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(url, identity_key="app-identity-secret")
    assert cli("sessions", "list", "--identity", USER, "--json").json()["sessions"] == []
    monkeypatch.setenv("APP_ID_KEY", "app-identity-secret")
    found = cli("sessions", "list", "--identity", USER, "--identity-key-env", "APP_ID_KEY", "--json")
    assert len(found.json()["sessions"]) == 2
    assert_one_line_error(cli("sessions", "list", "--identity", USER, "--identity-key-env", "UNSET_VAR"), 2)


def test_tokens_list_and_revoke_never_print_tokens(cli: CliRunner, url: str) -> None:
    ids = seed(url)
    listed = cli("tokens", "list", "--identity", USER, "--json")
    assert listed.code == 0, listed.all
    rows = listed.json()["tokens"]
    assert {r["source"] for r in rows} == {"session", "fastmcp OAuth"}
    session_row = next(r for r in rows if r["source"] == "session")
    assert session_row["session_id"] == ids["a"] and session_row["has_refresh_token"]
    fastmcp_row = next(r for r in rows if r["source"] == "fastmcp OAuth")
    assert fastmcp_row["server"] == "https://api.example.net/mcp" and fastmcp_row["token_expires_at"]
    text = cli("tokens", "list", "--identity", USER)
    debug = cli("tokens", "list", "--identity", USER, "--debug")
    assert_no_secrets(listed, text, debug)

    revoked = cli("tokens", "revoke", "--identity", USER, f"--session={ids['a']}")
    assert revoked.code == 0 and ids["a"] in revoked.out
    assert [r["source"] for r in cli("tokens", "list", "--identity", USER, "--json").json()["tokens"]] == [
        "fastmcp OAuth"
    ]
    shown = cli("sessions", "show", "--identity", USER, ids["a"], "--json").json()["session"]
    assert shown["has_tokens"] is False and shown["client_id"] == "client-a", "--client not given: kept"

    assert_one_line_error(
        cli("tokens", "revoke", "--identity", USER, "--server", "https://nope.example/mcp"), 1
    )
    by_server = cli("tokens", "revoke", "--identity", USER, "--server", "https://api.example.net/mcp")
    assert by_server.code == 0
    assert cli("tokens", "list", "--identity", USER, "--json").json()["tokens"] == []
    assert_one_line_error(cli("tokens", "revoke", "--identity", USER), 2)
    assert_no_secrets(revoked, by_server)


def test_tokens_revoke_all_with_client(cli: CliRunner, url: str) -> None:
    ids = seed(url)
    result = cli("tokens", "revoke", "--identity", USER, "--all", "--client", "--json")
    assert result.code == 0, result.all
    assert len(result.json()["revoked"]) == 2
    shown = cli("sessions", "show", "--identity", USER, ids["a"], "--json").json()["session"]
    assert shown["has_tokens"] is False and shown["client_id"] is None


def test_servers_add_list_rm(cli: CliRunner, url: str) -> None:
    added = cli("servers", "add", "https://Docs.Example.com:443/mcp/", "--json")
    assert added.code == 0, added.all
    name = added.json()["name"]
    named = cli("servers", "add", "https://api.example.com/mcp", "--name", "api")
    assert named.code == 0 and "'api'" in named.out
    listed = cli("servers", "list", "--json").json()["servers"]
    assert {s["name"]: s["url"] for s in listed} == {
        name: "https://docs.example.com/mcp",
        "api": "https://api.example.com/mcp",
    }
    assert cli("servers", "list", "--namespace", USER, "--json").json()["servers"] == []
    private = cli("servers", "add", "https://mine.example.com/mcp", "--namespace", USER)
    assert private.code == 0
    assert len(cli("servers", "list", "--namespace", USER, "--json").json()["servers"]) == 1
    assert cli("servers", "rm", "api").code == 0
    assert_one_line_error(cli("servers", "rm", "api"), 1)
    assert_one_line_error(cli("servers", "add", "ftp://x"), 2)
    assert_one_line_error(cli("servers", "add", "https://x.example.com", "--name", "Bad Name!"), 2)


def test_server_url_credentials_are_redacted(cli: CliRunner, url: str) -> None:
    result = cli("servers", "add", "https://user:pa55word-xyz@secure.example.com/mcp", "--name", "sec")
    assert result.code == 0, result.all
    listed = cli("servers", "list")
    for run in (result, listed):
        assert "pa55word-xyz" not in run.all
    assert "***" in listed.out


def test_tokens_revoke_server_accepts_what_tokens_list_shows(cli: CliRunner, url: str) -> None:
    seed(url)
    rows = cli("tokens", "list", "--identity", USER, "--json").json()["tokens"]
    assert {r["source"] for r in rows} == {"session", "fastmcp OAuth"}
    for row in rows:
        # A session's tokens are listed under its server's name or URL: --server takes that as well.
        revoked = cli("tokens", "revoke", "--identity", USER, "--server", row["server"])
        assert revoked.code == 0, revoked.all
    assert cli("tokens", "list", "--identity", USER, "--json").json()["tokens"] == []


def test_sessions_list_for_fleets(cli: CliRunner, url: str) -> None:
    seed(url)

    async def serve() -> None:
        storage = server_storage(url, server_name="notes")
        mcp = FastMCP("notes", **storage.kwargs())

        @mcp.tool
        async def remember(text: str, ctx: Context) -> str:
            await ctx.set_state("last", text)
            return text

        async with Client(mcp) as client:
            await client.call_tool("remember", {"text": "hello"})
        await storage.close()

    asyncio.run(serve())

    everyone = cli("sessions", "list", "--json")
    assert everyone.code == 0, everyone.all
    people = everyone.json()["identities"]
    assert sorted(p["sessions"] for p in people) == [1, 2], "alice's two sessions and bob's one"
    assert all(len(p["identity_digest"]) == 64 for p in people), "identities only as digests"
    assert everyone.json()["servers"] == [{"server": "notes", "sessions": 1}]
    assert USER not in everyone.all and "bob" not in everyone.all

    notes = cli("sessions", "list", "--server", "notes", "--json")
    assert notes.code == 0, notes.all
    [row] = notes.json()["sessions"]
    assert row["kind"] == "request state" and row["keys"] == 1
    assert "hello" not in notes.all, "names and counts only, never a value"
    missing = cli("sessions", "list", "--server", "nope")
    assert_one_line_error(missing, missing.code)
    assert "servers found: notes" in missing.err

    shown = cli("sessions", "show", "--server", "notes", row["session_id"], "--json")
    assert shown.code == 0, shown.all
    assert [k["key"] for k in shown.json()["keys"]] == ["last"]
    assert "hello" not in shown.all, "key names and expiries only, never a value"
    assert_one_line_error(cli("sessions", "show", "--server", "notes", "no-such-session"), 1)
    assert_one_line_error(cli("sessions", "show", row["session_id"]), 2)  # neither --identity nor --server
    both = cli("sessions", "rm", "--server", "notes", "--identity", USER, row["session_id"])
    assert_one_line_error(both, 2)

    removed = cli("sessions", "rm", "--server", "notes", row["session_id"], "--json")
    assert removed.code == 0, removed.all
    assert removed.json() == {"server": "notes", "sessions": 1, "keys_deleted": 1}
    assert cli("sessions", "list", "--server", "notes", "--json").json()["sessions"] == []

    asyncio.run(serve())
    asyncio.run(serve())
    assert len(cli("sessions", "list", "--server", "notes", "--json").json()["sessions"]) == 2
    unconfirmed = cli("sessions", "purge", "--server", "notes")
    assert_one_line_error(unconfirmed, 2)
    assert "--yes" in unconfirmed.err
    purged = cli("sessions", "purge", "--server", "notes", "--yes", "--json")
    assert purged.code == 0, purged.all
    assert purged.json()["sessions"] == 2
    assert cli("sessions", "list", "--server", "notes", "--json").json()["sessions"] == []
    assert cli("sessions", "list", "--identity", USER, "--json").json()["sessions"], (
        "client sessions untouched"
    )


def test_top_help_tells_what_purge_needs(cli: CliRunner) -> None:
    import contextlib
    import io

    from fastmcp_sessions.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(["sessions", "--help"])
    assert "delete every session of one identity (--identity ID)" in " ".join(out.getvalue().split())
