"""The FastMCP internals listed in fastmcp_sessions/fastmcp/_seam.py: the installed FastMCP has
each of them, a FastMCP that moved any one fails loudly naming it, and no other module of the
package touches a FastMCP private."""

from __future__ import annotations

import ast
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from fastmcp import FastMCP

from fastmcp_sessions.buses import MemoryBus
from fastmcp_sessions.errors import StoreSetupError
from fastmcp_sessions.fastmcp import enable_subscriptions
from fastmcp_sessions.fastmcp._seam import FastMCPSeamError, check_seam
from tests._support import REPO

PACKAGE = REPO / "fastmcp_sessions"
SEAM = PACKAGE / "fastmcp" / "_seam.py"


def test_the_installed_fastmcp_has_every_internal_the_wiring_uses() -> None:
    check_seam(FastMCP("seam"))  # raises FastMCPSeamError naming what changed otherwise


def _drop_method(owner_of: Any, name: str) -> Any:
    return lambda mcp: setattr(owner_of(mcp), name, None)


def _server(mcp: Any) -> Any:
    return mcp._mcp_server


def _provider(mcp: Any) -> Any:
    return mcp._local_provider


@pytest.mark.parametrize(
    ("breakage", "named"),
    [
        (lambda mcp: setattr(mcp, "_mcp_server", object()), "FastMCP._mcp_server"),
        (_drop_method(_server, "add_request_handler"), "Server.add_request_handler"),
        (lambda mcp: setattr(mcp._mcp_server, "_request_handlers", None), "Server._request_handlers"),
        (lambda mcp: setattr(mcp, "_local_provider", None), "FastMCP._local_provider"),
        (_drop_method(_provider, "_add_component"), "LocalProvider._add_component"),
        (
            lambda mcp: setattr(mcp._local_provider, "_remove_component", lambda k, v: None),
            "LocalProvider._remove",
        ),
        (_drop_method(_provider, "enable"), "LocalProvider.enable"),
        (_drop_method(_provider, "disable"), "LocalProvider.disable"),
        (lambda mcp: setattr(mcp, "enable", lambda: None), "FastMCP.enable"),
        (_drop_method(lambda mcp: mcp, "disable"), "FastMCP.disable"),
        (_drop_method(lambda mcp: mcp, "add_provider"), "FastMCP.add_provider"),
        (_drop_method(lambda mcp: mcp, "add_transform"), "FastMCP.add_transform"),
    ],
)
def test_a_fastmcp_that_moved_an_internal_fails_loudly_naming_it(breakage: Any, named: str) -> None:
    mcp = FastMCP("moved")
    breakage(mcp)
    with pytest.raises(
        FastMCPSeamError, match=r"pin fastmcp to 4\.2\.x or upgrade fastmcp-sessions"
    ) as caught:
        enable_subscriptions(mcp, MemoryBus(server_name="moved"))
    assert named in str(caught.value).replace("._remove_component", "._remove")
    assert f"FastMCP ({version('fastmcp')})" in str(caught.value)
    assert isinstance(caught.value, StoreSetupError)


def _private_touches(path: Path) -> list[str]:
    """``obj._name`` on anything but ``self``/``cls``/``super()``, and imports of ``_names`` from fastmcp or mcp."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            target = node.value
            if isinstance(target, ast.Name) and target.id in ("self", "cls"):
                continue
            if (
                isinstance(target, ast.Call)
                and isinstance(target.func, ast.Name)
                and target.func.id == "super"
            ):
                continue
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("fastmcp", "mcp"):
            found += [f"{path.name}:{node.lineno} {a.name}" for a in node.names if a.name.startswith("_")]
    return found


def test_no_module_but_the_seam_touches_a_fastmcp_private() -> None:
    # The FastMCP package handles FastMCP's objects: outside the seam it stays on their public API.
    glue = sorted(p for p in (PACKAGE / "fastmcp").glob("*.py") if p != SEAM)
    assert {p.name for p in glue} >= {"storage.py", "caching.py", "subscriptions.py"}
    assert {p.name: _private_touches(p) for p in glue} == {p.name: [] for p in glue}


def test_no_other_module_imports_a_fastmcp_private() -> None:
    outside = [p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE / "fastmcp"]
    imported = [
        f"{p.relative_to(PACKAGE)}:{n.lineno} {a.name}"
        for p in outside
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "fastmcp"
        for a in n.names
        if a.name.startswith("_") or any(part.startswith("_") for part in (n.module or "").split("."))
    ]
    assert imported == []


def test_the_seam_itself_is_seen_touching_privates() -> None:
    # The scan above would pass vacuously if it could not see a private access at all.
    assert any("._mcp_server" in t or "_mcp_server" in t for t in _private_touches(SEAM))


@pytest.mark.parametrize("jwt_signing_key", ["a-jwt-signing-key-of-some-length", None])
def test_the_oauth_proxy_default_storage_is_where_a_real_oauth_proxy_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jwt_signing_key: str | None
) -> None:
    # The CLI's fastmcp-oauth-proxy:// source finds FastMCP's own storage by this mirror of
    # OAuthProxy.__init__; a FastMCP that derives it otherwise must fail here, by name.
    import asyncio

    import fastmcp
    from mcp.shared.auth import OAuthClientInformationFull

    from fastmcp_sessions.fastmcp._seam import oauth_proxy_default_storage
    from tests._support.oauth_proxy import UPSTREAM_CLIENT_SECRET, fake_upstream_proxy

    monkeypatch.setattr(fastmcp.settings, "home", tmp_path)
    proxy = fake_upstream_proxy(jwt_signing_key=jwt_signing_key)
    client = OAuthClientInformationFull(client_id="seam-client", redirect_uris=["http://127.0.0.1:9/cb"])
    asyncio.run(proxy.register_client(client))

    _, directory = oauth_proxy_default_storage(
        jwt_signing_key=jwt_signing_key, upstream_client_secret=UPSTREAM_CLIENT_SECRET
    )
    written = sorted(p for p in (tmp_path / "oauth-proxy").iterdir())
    assert written == [directory], "oauth_proxy_default_storage no longer mirrors OAuthProxy.__init__"
