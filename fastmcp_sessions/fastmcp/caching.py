"""A response cache that is safe to share between replicas: lists, and only what the author names.

FastMCP's ``ResponseCachingMiddleware`` caches every ``tools/call`` for an hour by
default. Shared by every replica through one store, that returns stale results for
any tool that reads changing state; this subclass caches list operations and only the
tools, resource URIs and prompts named as safe to cache.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastmcp.prompts.base import PromptResult
from fastmcp.resources.base import ResourceResult
from fastmcp.server.middleware.caching import (
    CallToolSettings,
    GetPromptSettings,
    ReadResourceSettings,
    ResponseCachingMiddleware,
)
from fastmcp.server.middleware.middleware import CallNext, MiddlewareContext

from fastmcp_sessions.stores.base import Store

__all__ = ["SafeResponseCachingMiddleware"]


class SafeResponseCachingMiddleware(ResponseCachingMiddleware):
    """FastMCP's ``ResponseCachingMiddleware`` that caches only what is safe to share.

    FastMCP's defaults cache every ``tools/call``, ``resources/read`` and ``prompts/get``
    for an hour. With a cache shared by replicas that serves stale answers to any tool
    that reads state (``remember`` then ``recall`` keeps returning the first answer).
    Here list operations (``tools/list``, ``resources/list``, ``prompts/list``) are
    cached for FastMCP's 5 minutes, and calls, reads and prompts only when named in
    ``cacheable_tools`` (tool names), ``cacheable_resources`` (exact resource URIs) or
    ``cacheable_prompts`` (prompt names), for FastMCP's hour. Name only what depends on
    its arguments alone. An explicit FastMCP setting (``call_tool_settings=``,
    ``read_resource_settings=``, ``get_prompt_settings=``, ``list_*_settings=``) replaces
    the corresponding default, with FastMCP's meaning.
    """

    def __init__(
        self,
        cache_storage: Store,
        *,
        cacheable_tools: Iterable[str] = (),
        cacheable_resources: Iterable[str] = (),
        cacheable_prompts: Iterable[str] = (),
        **settings: Any,
    ) -> None:
        tools = _names("cacheable_tools", cacheable_tools)
        resources = _names("cacheable_resources", cacheable_resources)
        prompts = _names("cacheable_prompts", cacheable_prompts)
        # FastMCP reads an empty included_tools as "every tool": switch the method off instead.
        settings.setdefault(
            "call_tool_settings",
            CallToolSettings(included_tools=sorted(tools)) if tools else CallToolSettings(enabled=False),
        )
        # FastMCP has no per-URI or per-name switch for reads and prompts: filter them here,
        # unless the caller chose FastMCP's own settings for them.
        self._cacheable_resources = None if "read_resource_settings" in settings else resources
        self._cacheable_prompts = None if "get_prompt_settings" in settings else prompts
        settings.setdefault("read_resource_settings", ReadResourceSettings(enabled=bool(resources)))
        settings.setdefault("get_prompt_settings", GetPromptSettings(enabled=bool(prompts)))
        super().__init__(cache_storage=cache_storage, **settings)
        self.cacheable_tools = tools
        self.cacheable_resources = resources
        self.cacheable_prompts = prompts

    async def on_read_resource(
        self,
        context: MiddlewareContext[Any],
        call_next: CallNext[Any, ResourceResult],
    ) -> ResourceResult:
        """Read through the cache only when the resource's URI was named as cacheable."""
        allowed = self._cacheable_resources
        if allowed is not None and str(context.message.uri) not in allowed:
            return await call_next(context)
        return await super().on_read_resource(context, call_next)

    async def on_get_prompt(
        self,
        context: MiddlewareContext[Any],
        call_next: CallNext[Any, PromptResult],
    ) -> PromptResult:
        """Render through the cache only when the prompt was named as cacheable."""
        allowed = self._cacheable_prompts
        if allowed is not None and context.message.name not in allowed:
            return await call_next(context)
        return await super().on_get_prompt(context, call_next)


def _names(argument: str, names: Iterable[str]) -> frozenset[str]:
    if isinstance(names, str):
        raise TypeError(f"{argument} takes a list of names, got the string {names!r}; write [{names!r}]")
    chosen = frozenset(names)
    if not all(isinstance(n, str) and n for n in chosen):
        raise TypeError(f"{argument} takes non-empty names (str), got {sorted(map(repr, chosen))}")
    return chosen
