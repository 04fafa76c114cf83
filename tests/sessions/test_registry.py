"""ServerRegistry on every backend: normalisation, naming, atomicity across processes."""

from __future__ import annotations

import asyncio

import pytest

from fastmcp_sessions import Store
from fastmcp_sessions.sessions import (
    InvalidServerNameError,
    InvalidServerURLError,
    ServerNameConflictError,
    ServerNotFoundError,
    ServerRegistry,
    normalize_url,
    server_id,
)
from tests._support.backends import Backend
from tests._support.session_procs import run_together


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("https://example.com/mcp", "https://example.com/mcp"),
        ("HTTPS://EXAMPLE.com/mcp", "https://example.com/mcp"),
        ("https://example.com:443/mcp", "https://example.com/mcp"),
        ("https://example.com/mcp/", "https://example.com/mcp"),
        ("https://example.com/mcp#frag", "https://example.com/mcp"),
        ("http://example.com:80/", "http://example.com"),
        ("https://example.com", "https://example.com"),
        ("http://localhost:8000/mcp/", "http://localhost:8000/mcp"),
        ("https://example.com:8443/mcp", "https://example.com:8443/mcp"),
        ("https://example.com/MCP?x=1", "https://example.com/MCP?x=1"),
        ("http://[::1]:80/mcp", "http://[::1]/mcp"),
    ],
)
def test_url_normalisation(spelling: str, canonical: str) -> None:
    assert normalize_url(spelling) == canonical
    assert server_id(spelling) == server_id(canonical)


@pytest.mark.parametrize(
    "bad", ["", "example.com/mcp", "ftp://example.com", "https://", "mailto:x@y", "http://h:99999"]
)
def test_invalid_urls_are_refused(bad: str) -> None:
    with pytest.raises(InvalidServerURLError):
        normalize_url(bad)


async def test_add_resolve_name_for_remove_list(store: Store) -> None:
    registry = ServerRegistry(store)
    name = await registry.add("https://api.github.com/mcp")
    assert name == "github"
    assert await registry.add("HTTPS://api.GitHub.com:443/mcp/") == "github"  # same server, same name
    assert await registry.resolve("github") == "https://api.github.com/mcp"
    assert await registry.name_for("https://api.github.com/mcp/") == "github"
    assert await registry.name_for("https://gitlab.com/mcp") is None
    assert await registry.get("nope") is None
    with pytest.raises(ServerNotFoundError, match=r"ServerRegistry\.add"):
        await registry.resolve("nope")

    assert await registry.add("https://github.com/other") == "github-2"
    assert await registry.add("https://gitlab.com/mcp", name="work-gitlab") == "work-gitlab"
    assert await registry.list() == {
        "github": "https://api.github.com/mcp",
        "github-2": "https://github.com/other",
        "work-gitlab": "https://gitlab.com/mcp",
    }
    assert await registry.remove("github") is True
    assert await registry.remove("github") is False
    assert await registry.name_for("https://api.github.com/mcp") is None
    assert await registry.add("https://mcp.notion.com/mcp") == "notion"
    assert set(await registry.list()) == {"github-2", "work-gitlab", "notion"}
    await registry.clear()
    assert await registry.list() == {}


async def test_auto_names(store: Store) -> None:
    registry = ServerRegistry(store)
    assert await registry.add("http://127.0.0.1:9000/mcp") == "server"
    assert await registry.add("http://localhost:8000/mcp") == "localhost"
    assert await registry.add("https://mcp.example.co.uk/mcp") == "example"


async def test_name_conflicts_are_typed_errors(store: Store) -> None:
    registry = ServerRegistry(store)
    await registry.add("https://a.example.com/mcp", name="a")
    with pytest.raises(ServerNameConflictError, match="another name"):
        await registry.add("https://b.example.com/mcp", name="a")
    with pytest.raises(ServerNameConflictError, match="already registered as 'a'"):
        await registry.add("https://a.example.com/mcp", name="other")
    assert await registry.add("https://a.example.com/mcp", name="a") == "a"
    for bad in ("", "Upper", "has space", "-dash", "x" * 65, "a/b"):
        with pytest.raises(InvalidServerNameError):
            await registry.add("https://c.example.com/mcp", name=bad)


async def test_namespaces_are_separate(store: Store) -> None:
    shared, alice, bob = (
        ServerRegistry(store),
        ServerRegistry(store, namespace="alice"),
        ServerRegistry(store, namespace="bob"),
    )
    await shared.add("https://a.example.com/mcp", name="a")
    await alice.add("https://private.example.com/mcp", name="mine")
    assert await bob.list() == {}
    assert await shared.list() == {"a": "https://a.example.com/mcp"}
    assert await alice.list() == {"mine": "https://private.example.com/mcp"}
    assert "alice" not in repr(alice)
    assert not any("alice" in k for k in await store.keys("fastmcp_sessions_registry"))


async def test_concurrent_adds_get_distinct_names(backend: Backend) -> None:
    stores = [backend.open() for _ in range(3)] if backend.shared_across_instances else [backend.open()] * 3
    try:
        urls = [f"https://p{i}.acme.com/mcp" for i in range(9)]
        names = await asyncio.gather(*(ServerRegistry(stores[i % 3]).add(url) for i, url in enumerate(urls)))
        assert len(set(names)) == 9
        listing = await ServerRegistry(stores[0]).list()
        assert {listing[n] for n in names} == set(urls)
    finally:
        for s in set(stores):
            await s.close()


async def test_processes_adding_at_once_never_collide(shared_backend: Backend) -> None:
    assert shared_backend.url is not None
    argvs = [
        ["registry", shared_backend.url, "", *(f"https://p{w}-{i}.acme.com/mcp" for i in range(4))]
        for w in range(3)
    ]
    results = await run_together(shared_backend, argvs)
    names = [n for result in results for n in result]
    assert len(names) == len(set(names)) == 12
    store = shared_backend.open()
    try:
        listing = await ServerRegistry(store).list()
    finally:
        await store.close()
    assert len(listing) == 12
    for argv, result in zip(argvs, results, strict=True):
        for url, name in zip(argv[3:], result, strict=True):
            assert listing[name] == url
