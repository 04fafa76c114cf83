"""Every private FastMCP internal this package relies on, in one place.

Written against FastMCP 4.0 (the floor in pyproject.toml) through 4.2. Only the
subscription wiring touches internals; the storage wiring and the response cache use
FastMCP's public API alone (constructor arguments, ``Lifespan``, ``EventStore``,
``ResponseCachingMiddleware`` and its settings).

- ``FastMCP._mcp_server``: the mcp low-level ``Server`` FastMCP runs. ``subscriptions/listen``
  is registered on it through mcp's public ``add_request_handler``, and mcp then derives
  the 2026-07-28 capabilities (``listChanged``, ``resources.subscribe``) from it.
- ``FastMCP._local_provider._add_component`` / ``._remove_component``: the two methods
  every local add and remove goes through (decorators, ``add_tool``, ``remove_tool``...).
- ``enable``, ``disable``, ``add_provider``, ``add_transform`` on the server and
  ``enable``/``disable`` on its local provider (public; wrapped on the instance).
- Behaviour mirrored, not called: where ``OAuthProxy`` keeps its clients and tokens when
  it gets no ``client_storage`` (``oauth_proxy_default_storage``, read by the CLI's
  ``fastmcp-oauth-proxy://`` source). tests/fastmcp/test_fastmcp_seam.py checks it
  against a real ``OAuthProxy``.

``check_seam`` verifies all of it and raises ``FastMCPSeamError`` with what changed, so a
FastMCP release that moves any of it fails at ``enable_subscriptions`` (and in
tests/fastmcp/test_fastmcp_seam.py, one test per internal), never by silently dropping notifications.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp.server.lowlevel.server import Server

from fastmcp_sessions._versions import installed_version
from fastmcp_sessions.errors import InvalidArgumentError, StoreSetupError

__all__ = [
    "COMPONENT_KINDS",
    "FastMCPSeamError",
    "check_seam",
    "lowlevel_server",
    "oauth_proxy_default_storage",
    "watch_components",
]

COMPONENT_KINDS = frozenset({"tool", "resource", "prompt"})

_KEY_KINDS = {"tool": "tool", "resource": "resource", "template": "resource", "prompt": "prompt"}
_VISIBILITY_KINDS = {"tool": "tool", "resource": "resource", "template": "resource", "prompt": "prompt"}
_WRAPPED = "__fastmcp_sessions_watch__"


class FastMCPSeamError(StoreSetupError):
    """The installed FastMCP no longer has an internal the subscription wiring needs."""

    def __init__(self, what: str) -> None:
        found = installed_version("fastmcp") or "unknown version"
        super().__init__(
            f"fastmcp-sessions' subscription wiring supports FastMCP 4.0 to 4.2, and this FastMCP "
            f"({found}) changed {what}; pin fastmcp to 4.2.x or upgrade fastmcp-sessions"
        )


def _method(owner: object, name: str, where: str, params: tuple[str, ...] = ()) -> Callable[..., Any]:
    attr: Callable[..., Any] | None = getattr(owner, name, None)
    if attr is None or not callable(attr):
        raise FastMCPSeamError(f"{where}.{name} (no longer a method)")
    try:
        signature = inspect.signature(attr)
    except (TypeError, ValueError):
        return attr
    missing = [p for p in params if p not in signature.parameters]
    if missing:
        raise FastMCPSeamError(f"the parameters of {where}.{name} (missing {', '.join(missing)})")
    return attr


def check_seam(mcp: Any) -> None:
    """Raise ``FastMCPSeamError`` unless ``mcp`` has every internal listed in this module."""
    from fastmcp import FastMCP

    if not isinstance(mcp, FastMCP):
        raise TypeError(f"expected a fastmcp.FastMCP server, got {type(mcp).__name__}")
    server = getattr(mcp, "_mcp_server", None)
    if not isinstance(server, Server):
        raise FastMCPSeamError("FastMCP._mcp_server (no longer the mcp low-level Server)")
    _method(server, "add_request_handler", "Server", ("method", "params_type", "handler"))
    if not isinstance(getattr(server, "_request_handlers", None), dict):
        raise FastMCPSeamError("mcp's Server._request_handlers, from which capabilities are derived")
    provider = getattr(mcp, "_local_provider", None)
    if provider is None:
        raise FastMCPSeamError("FastMCP._local_provider")
    _method(provider, "_add_component", "LocalProvider", ("component",))
    _method(provider, "_remove_component", "LocalProvider", ("key",))
    for owner, where in ((mcp, "FastMCP"), (provider, "LocalProvider")):
        _method(owner, "enable", where, ("components",))
        _method(owner, "disable", where, ("components",))
    _method(mcp, "add_provider", "FastMCP", ("provider",))
    _method(mcp, "add_transform", "FastMCP", ("transform",))


def lowlevel_server(mcp: Any) -> Server[Any]:
    """The mcp low-level ``Server`` under ``mcp`` (after ``check_seam``)."""
    server: Server[Any] = mcp._mcp_server
    return server


def _component_kind(component: object) -> set[str]:
    key = getattr(component, "key", None)
    return _kinds_of_key(key) if isinstance(key, str) else set(COMPONENT_KINDS)


def _kinds_of_key(key: str) -> set[str]:
    kind = _KEY_KINDS.get(key.split(":", 1)[0])
    return {kind} if kind else set(COMPONENT_KINDS)


def _visibility_kinds(components: Any) -> set[str]:
    if not components:
        return set(COMPONENT_KINDS)
    return {_VISIBILITY_KINDS[c] for c in components if c in _VISIBILITY_KINDS} or set(COMPONENT_KINDS)


def _wrap(owner: object, name: str, after: Callable[[tuple[Any, ...], dict[str, Any], Any], None]) -> None:
    original = getattr(owner, name)
    if getattr(original, _WRAPPED, False):
        return  # already watched (enable_subscriptions called twice)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        after(args, kwargs, result)
        return result

    setattr(wrapper, _WRAPPED, True)
    # An instance attribute shadows the class's method for this server only.
    setattr(owner, name, wrapper)


def watch_components(mcp: Any, on_change: Callable[[set[str]], None]) -> None:
    """Call ``on_change(kinds)`` (kinds from ``COMPONENT_KINDS``) after every add, remove,
    enable or disable of ``mcp``'s components, and after providers or transforms are added."""
    provider = mcp._local_provider

    def added(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        component = args[0] if args else kwargs.get("component")
        if result is component:  # on_duplicate="ignore" returns the existing one: no change
            on_change(_component_kind(component))

    def removed(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        key = args[0] if args else kwargs.get("key")
        on_change(_kinds_of_key(key) if isinstance(key, str) else set(COMPONENT_KINDS))

    def visibility(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        on_change(_visibility_kinds(kwargs.get("components")))

    def everything(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        on_change(set(COMPONENT_KINDS))

    _wrap(provider, "_add_component", added)
    _wrap(provider, "_remove_component", removed)
    for owner in (mcp, provider):
        _wrap(owner, "enable", visibility)
        _wrap(owner, "disable", visibility)
    _wrap(mcp, "add_provider", everything)
    _wrap(mcp, "add_transform", everything)


def oauth_proxy_default_storage(
    *, jwt_signing_key: str | None, upstream_client_secret: str | None, home: str | None = None
) -> tuple[bytes, Path]:
    """The Fernet key and directory FastMCP's ``OAuthProxy`` uses when it gets no ``client_storage``.

    Mirrors ``fastmcp.server.auth.oauth_proxy.OAuthProxy.__init__``: a string
    ``jwt_signing_key`` is stretched with PBKDF2, else the upstream client secret with
    HKDF; the storage key is HKDF of that; the directory is
    ``settings.home/oauth-proxy/<sha256(storage key)[:12]>``.
    """
    import fastmcp
    from fastmcp.server.auth.jwt_issuer import derive_jwt_key

    if jwt_signing_key:
        signing = derive_jwt_key(low_entropy_material=jwt_signing_key, salt="fastmcp-jwt-signing-key")
    elif upstream_client_secret:
        signing = derive_jwt_key(high_entropy_material=upstream_client_secret, salt="fastmcp-jwt-signing-key")
    else:
        raise InvalidArgumentError("give the JWT signing key or the upstream client secret")
    storage_key = derive_jwt_key(
        high_entropy_material=signing.decode(), salt="fastmcp-storage-encryption-key"
    )
    base = Path(home).expanduser() if home else Path(fastmcp.settings.home)
    return storage_key, base / "oauth-proxy" / hashlib.sha256(storage_key).hexdigest()[:12]
