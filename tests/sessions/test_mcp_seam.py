"""The MCP SDK internals listed in fastmcp_sessions/sessions/_seam.py: the installed SDK has each
of them, an SDK that moved any one fails loudly naming it (when the provider is built), the
single-flight refresh touches no private the seam does not list, and no module of the
package imports an SDK private."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.oauth2 import OAuthContext
from mcp.shared.auth import OAuthClientMetadata
from pydantic import AnyUrl

from fastmcp_sessions.errors import StoreSetupError
from fastmcp_sessions.sessions import SingleFlightOAuthClientProvider
from fastmcp_sessions.sessions._seam import (
    CONTEXT_FIELDS,
    CONTEXT_METHODS,
    INITIALIZED_FLAG,
    OVERRIDDEN,
    MCPSeamError,
    check_seam,
)
from tests._support import REPO

PACKAGE = REPO / "fastmcp_sessions"
REFRESH = PACKAGE / "sessions" / "refresh.py"


@pytest.fixture(autouse=True)
def fresh_check() -> Iterator[None]:
    check_seam.cache_clear()
    yield
    check_seam.cache_clear()


def test_the_installed_sdk_has_every_internal_the_refresh_uses() -> None:
    check_seam()  # raises MCPSeamError naming what changed otherwise


async def _not_a_generator(self: Any, request: Any) -> None:
    return None


async def _two_params(self: Any, response: Any, extra: Any) -> bool:
    return True


def _sync(self: Any) -> None:
    return None


async def _flow_without_flag(self: Any, request: Any) -> Any:
    yield request


@pytest.mark.parametrize(
    ("owner", "name", "replacement", "named"),
    [
        (OAuthClientProvider, "_initialize", None, "OAuthClientProvider._initialize"),
        (OAuthClientProvider, "_initialize", _sync, "OAuthClientProvider._initialize"),
        (OAuthClientProvider, "_handle_refresh_response", _two_params, "_handle_refresh_response's"),
        (OAuthClientProvider, "_auth_flow", _not_a_generator, "OAuthClientProvider._auth_flow"),
        (OAuthClientProvider, "_auth_flow", _flow_without_flag, f"no longer reads self.{INITIALIZED_FLAG}"),
        (OAuthContext, "clear_tokens", None, "OAuthContext.clear_tokens()"),
        (OAuthContext, "is_token_valid", None, "OAuthContext.is_token_valid()"),
        (OAuthContext, "can_refresh_token", None, "OAuthContext.can_refresh_token()"),
    ],
)
def test_an_sdk_that_moved_an_internal_fails_loudly_naming_it(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, replacement: Any, named: str
) -> None:
    monkeypatch.setattr(owner, name, replacement)
    with pytest.raises(MCPSeamError) as caught:
        check_seam()
    assert named in str(caught.value)
    assert f"mcp ({version('mcp')})" in str(caught.value)
    assert "upgrade fastmcp-sessions" in str(caught.value)
    assert isinstance(caught.value, StoreSetupError)


def test_a_context_field_that_is_gone_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    kept = {n: f for n, f in OAuthContext.__dataclass_fields__.items() if n != "token_expiry_time"}
    monkeypatch.setattr(OAuthContext, "__dataclass_fields__", kept)
    with pytest.raises(MCPSeamError, match=r"OAuthContext\.token_expiry_time"):
        check_seam()


def test_building_the_provider_on_a_changed_sdk_fails_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(OAuthClientProvider, "_handle_refresh_response", None)
    with pytest.raises(MCPSeamError, match="_handle_refresh_response"):
        SingleFlightOAuthClientProvider(
            server_url="http://127.0.0.1:1/mcp",
            client_metadata=OAuthClientMetadata(redirect_uris=[AnyUrl("http://127.0.0.1/cb")]),
            storage=None,  # type: ignore[arg-type]  # never reached: the check comes first
        )


def _refresh_touches() -> tuple[set[str], set[str], set[str]]:
    """The SDK privates refresh.py overrides or calls on ``super()``, and the context members it uses."""
    tree = ast.parse(REFRESH.read_text())
    overridden: set[str] = set()
    called: set[str] = set()
    context: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "SingleFlightOAuthClientProvider":
            overridden |= {
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and item.name.startswith("_")
                and not item.name.startswith(("_sf_", "__"))
            }
        if isinstance(node, ast.Attribute):
            base = node.value
            on_super = (
                isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super"
            )
            if on_super and node.attr.startswith("_") and not node.attr.startswith("__"):
                called.add(node.attr)
            is_context = (isinstance(base, ast.Name) and base.id == "context") or (
                isinstance(base, ast.Attribute) and base.attr == "context"
            )
            if is_context:
                context.add(node.attr)
    return overridden, called, context


def test_the_refresh_touches_only_what_the_seam_lists() -> None:
    overridden, called, context = _refresh_touches()
    assert overridden == set(OVERRIDDEN) | {INITIALIZED_FLAG}
    assert called <= set(OVERRIDDEN)
    assert called, "the scan must see the super() calls, or it checks nothing"
    assert context <= set(CONTEXT_FIELDS) | set(CONTEXT_METHODS)
    assert context, "the scan must see the context members, or it checks nothing"


def test_no_module_imports_an_sdk_private() -> None:
    imported = [
        f"{p.relative_to(PACKAGE)}:{n.lineno} {a.name}"
        for p in PACKAGE.rglob("*.py")
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "mcp"
        for a in n.names
        if a.name.startswith("_") or any(part.startswith("_") for part in (n.module or "").split("."))
    ]
    assert imported == []
