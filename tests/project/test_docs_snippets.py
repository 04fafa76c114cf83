"""Docs that run: every ```python snippet in README.md and docs/*.md, executed against memory,
disk and a real Redis.

The convention (also in docs/index.md, "Snippets that run"):

* The snippets of one page run in page order in one namespace, as a reader types them
  into one session: a later snippet may use what an earlier one defined (``store``).
* A snippet with a top-level ``await`` is compiled as a coroutine and run with
  ``asyncio.run`` semantics; all snippets of a page share one event loop (a Runner), so
  a store opened in one snippet still works in the next.
* Store URLs are the reader's, not ours: every ``open_store(url)`` (directly, through
  ``server_storage(url)``, or ``open_store()`` through env ``FASTMCP_SESSIONS_URL``) opens
  the backend under test instead. A URL of the same backend keeps its query options; of
  another backend only ``encryption=``. Every other line runs as written.
* The environment has a Fernet key (``FASTMCP_SESSIONS_KEYS``), fake GitHub OAuth app
  settings (``GITHUB_CLIENT_ID``...; nothing contacts GitHub), HOME and the working
  directory in a temporary directory, and ``__name__`` is not ``"__main__"`` (so
  ``if __name__ == "__main__": mcp.run()`` does not serve).
* A snippet that cannot run as is (it needs an external OAuth provider's login, a remote
  MCP server, cloud credentials) has ``<!-- snippet: no-run (the reason) -->`` on the
  line before its fence. The reason is required; such a snippet must still compile.
  Any other ``<!-- snippet: ... -->`` comment is an error, so a typo cannot silently
  skip a snippet.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

import fastmcp_sessions
import fastmcp_sessions.fastmcp.storage
import fastmcp_sessions.stores
import fastmcp_sessions.stores.schemes as registry
from fastmcp_sessions import Keyring, Store
from tests._support import REPO

ROOT = REPO
BACKENDS = ("memory", "disk", "redis")
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]+)[ \t]*$")
CLOSE = re.compile(r"^[ \t]*```[ \t]*$")
DIRECTIVE = re.compile(r"^\s*<!--\s*snippet\s*:(?P<body>.*?)-->\s*$", re.IGNORECASE)
NO_RUN = re.compile(r"^\s*no-run\s*\((?P<reason>[^()]*)\)\s*$")
FAMILIES = {"memory": "memory", "disk": "disk", "redis": "redis", "rediss": "redis"}


@dataclass(frozen=True)
class Snippet:
    """One ```python fence of a page."""

    page: str
    line: int
    """Line number of the first line of code (1-based) in the page."""
    code: str
    no_run: str | None
    """The reason given by a no-run marker, or ``None`` when the snippet runs."""
    directive_error: str | None = None


def pages() -> list[Path]:
    """README.md and every docs/*.md present now (pages added later are picked up too)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def snippets(page: Path, root: Path = ROOT) -> list[Snippet]:
    """The ```python snippets of ``page``, with the marker (if any) on the line before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    name = str(page.relative_to(root))
    found: list[Snippet] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, lang, start = match["indent"], match["lang"].lower(), i
        i += 1
        body: list[str] = []
        while i < len(lines) and not CLOSE.match(lines[i]):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        i += 1
        if lang != "python":
            continue
        no_run, error = _marker(lines, start)
        found.append(Snippet(name, start + 2, "\n".join(body) + "\n", no_run, error))
    return found


def _marker(lines: list[str], fence: int) -> tuple[str | None, str | None]:
    previous = fence - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    if previous < 0:
        return None, None
    directive = DIRECTIVE.match(lines[previous])
    if directive is None:
        return None, None
    body = directive["body"]
    no_run = NO_RUN.match(body)
    if no_run is None:
        return (
            None,
            f"unknown snippet directive {lines[previous].strip()!r}; write <!-- snippet: no-run (reason) -->",
        )
    reason = no_run["reason"].strip()
    if not reason:
        return (
            None,
            "<!-- snippet: no-run () --> needs a reason: say what the snippet needs that a test cannot give",
        )
    return reason, None


def all_snippets() -> list[Snippet]:
    return [s for page in pages() for s in snippets(page)]


def compiled(snippet: Snippet) -> Any:
    # Pad so tracebacks point at the page's own line numbers.
    source = "\n" * (snippet.line - 1) + snippet.code
    return compile(source, snippet.page, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)


# -- the checks of the convention itself ----------------------------------------------------


def test_every_page_has_its_snippets_found() -> None:
    found = all_snippets()
    assert {s.page for s in found} >= {"README.md", "docs/fastmcp.md", "docs/sessions.md"}
    assert len(found) >= 15, [f"{s.page}:{s.line}" for s in found]


@pytest.mark.parametrize("snippet", all_snippets(), ids=lambda s: f"{s.page}:{s.line}")
def test_snippet_markers_are_well_formed_and_every_snippet_compiles(snippet: Snippet) -> None:
    assert snippet.directive_error is None, f"{snippet.page}:{snippet.line - 1}: {snippet.directive_error}"
    compiled(snippet)


def test_no_run_is_the_exception() -> None:
    found = all_snippets()
    skipped = [f"{s.page}:{s.line} ({s.no_run})" for s in found if s.no_run]
    assert len(skipped) * 5 <= len(found), f"at most one snippet in five may be no-run: {skipped}"


def test_the_parser_sees_markers_and_refuses_bad_ones(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "\n".join(
            [
                "```python",
                "a = 1",
                "```",
                "<!-- snippet: no-run (needs a real GitHub login) -->",
                "",
                "```python",
                "b = 2",
                "```",
                "<!-- snippet: no-run -->",
                "```python",
                "c = 3",
                "```",
                "<!-- snippet: no-run () -->",
                "```python",
                "d = 4",
                "```",
                "<!-- snippet: skip (typo) -->",
                "```python",
                "e = 5",
                "```",
                "```bash",
                "echo not python",
                "```",
                "- a list item:",
                "",
                "  ```python",
                "  f = 6",
                "  ```",
            ]
        ),
        encoding="utf-8",
    )
    found = snippets(page, root=tmp_path)
    assert [s.code for s in found] == ["a = 1\n", "b = 2\n", "c = 3\n", "d = 4\n", "e = 5\n", "f = 6\n"]
    assert [s.line for s in found] == [2, 7, 11, 15, 19, 27]
    assert found[0].no_run is None and found[0].directive_error is None
    assert found[1].no_run == "needs a real GitHub login"
    assert found[2].directive_error and "reason" in found[2].directive_error
    assert found[3].directive_error and "reason" in found[3].directive_error
    assert found[4].directive_error and "unknown snippet directive" in found[4].directive_error


# -- running them ---------------------------------------------------------------------------


class Backends:
    """Maps the URLs of the snippets onto the backend under test and closes what was opened."""

    def __init__(self, backend: str, tmp: Path, redis_url: str | None) -> None:
        self.backend = backend
        self.tmp = tmp
        self.redis_url = redis_url
        self.opened: list[Store] = []
        self._disk_files: dict[str, Path] = {}
        self._real_open = registry.open_store
        self.namespace = f"docs-{secrets.token_hex(4)}"

    def base_url(self) -> str:
        """The backend's URL for ``FASTMCP_SESSIONS_URL`` (what ``open_store()`` opens)."""
        return self.url_for(None)

    def url_for(self, url: str | None) -> str:
        """The backend under test in place of ``url`` (the snippet's)."""
        parts = urlsplit(url) if url else None
        same = parts is not None and FAMILIES.get(parts.scheme.lower()) == self.backend
        query = parse_qsl(parts.query, keep_blank_values=True) if parts else []
        kept = query if same else [(k, v) for k, v in query if k == "encryption"]
        if self.backend == "redis":
            # One Redis serves every test: a namespace of its own keeps this run's data apart.
            theirs = dict(kept).get("namespace")
            kept = [(k, v) for k, v in kept if k != "namespace"]
            kept.append(("namespace", self.namespace + (f"-{theirs}" if theirs else "")))
        if self.backend == "memory":
            base = "memory://"
        elif self.backend == "disk":
            path = self._disk_files.setdefault(url or "", self.tmp / f"store-{len(self._disk_files)}.sqlite3")
            base = f"disk://{path}"
        else:
            assert self.redis_url is not None
            base = self.redis_url
        return f"{base}?{urlencode(kept)}" if kept else base

    def open_store(self, url: str | None = None, **options: Any) -> Store:
        """``open_store`` as the snippets call it, on the backend under test."""
        store = self._real_open(self.url_for(url) if url is not None else self.base_url(), **options)
        self.opened.append(store)
        return store

    async def close(self, namespace: dict[str, Any]) -> None:
        stores = {id(s): s for s in [*self.opened, *(v for v in namespace.values() if isinstance(v, Store))]}
        for store in stores.values():
            await store.close()


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backends]:
    redis_url = None
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        redis_url = f"{server.url.rstrip('/')}"
        if not urlsplit(redis_url).path.strip("/"):
            redis_url += "/0"
    home = tmp_path / "home"
    home.mkdir()
    backends = Backends(request.param, tmp_path, redis_url)
    for variable, value in {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "FASTMCP_SESSIONS_KEYS": Keyring.generate_key(),
        "FASTMCP_SESSIONS_OAUTH_KEYS": Keyring.generate_key(),
        "FASTMCP_SESSIONS_URL": backends.base_url(),
        "FASTMCP_CHECK_FOR_UPDATES": "off",
        "GITHUB_CLIENT_ID": "docs-test-client-id",
        "GITHUB_CLIENT_SECRET": "docs-test-client-secret",
        "BASE_URL": "http://127.0.0.1:8000",
        "JWT_SIGNING_KEY": "docs-test-jwt-signing-key-" + "x" * 16,
    }.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.chdir(tmp_path)
    for module in (fastmcp_sessions, fastmcp_sessions.stores, registry, fastmcp_sessions.fastmcp.storage):
        monkeypatch.setattr(module, "open_store", backends.open_store)
    yield backends


def runnable_pages() -> list[str]:
    return [str(p.relative_to(ROOT)) for p in pages() if any(not s.no_run for s in snippets(p))]


def check_auth_is_used(snippet: Snippet, namespace: dict[str, Any]) -> None:
    """An auth provider a snippet builds is some server's ``auth``: one built and never passed
    in leaves the server open while the reader believes it is protected."""
    from fastmcp import FastMCP
    from fastmcp.server.auth.auth import AuthProvider

    servers = [v for v in namespace.values() if isinstance(v, FastMCP)]
    for name, value in namespace.items():
        if isinstance(value, AuthProvider) and servers and not any(s.auth is value for s in servers):
            raise AssertionError(f"`{name}` is an auth provider that no FastMCP server in the snippet uses")


@pytest.mark.parametrize("page", runnable_pages())
def test_page_snippets_run(page: str, backend: Backends) -> None:
    namespace: dict[str, Any] = {"__name__": "docs_snippet"}
    with asyncio.Runner() as runner:
        try:
            for snippet in snippets(ROOT / page):
                if snippet.no_run:
                    continue
                try:
                    # The docs are the code under test: run them as a reader would.
                    result = eval(compiled(snippet), namespace)
                    if inspect.iscoroutine(result):
                        runner.run(result)
                    check_auth_is_used(snippet, namespace)
                except Exception as exc:
                    raise AssertionError(
                        f"{snippet.page}:{snippet.line}: the snippet fails on {backend.backend}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
        finally:
            runner.run(backend.close(namespace))


def run_page_text(text: str, tmp_path: Path) -> None:
    """Write ``text`` as a page and run its snippets as ``test_page_snippets_run`` does."""
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    namespace: dict[str, Any] = {"__name__": "docs_snippet"}
    with asyncio.Runner() as runner:
        for snippet in snippets(page, root=tmp_path):
            result = eval(compiled(snippet), namespace)
            if inspect.iscoroutine(result):
                runner.run(result)
            check_auth_is_used(snippet, namespace)


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_the_runner_catches_what_the_docs_got_wrong(backend: Backends, tmp_path: Path) -> None:
    """The two snippets that failed as written: they fail here too (so the page tests mean something)."""
    atomic = """```python
from fastmcp_sessions import open_store
store = open_store("memory://")
entry = await store.get_versioned("cfg")
await store.compare_and_set("cfg", {"n": 2}, version=entry.version)
```
"""
    with pytest.raises(AttributeError, match="version"):
        run_page_text(atomic, tmp_path)
    server = """```python
import os
from fastmcp import FastMCP
from fastmcp.server.auth.providers.github import GitHubProvider
from fastmcp_sessions.fastmcp import server_storage

storage = server_storage("redis://cache:6379/0", server_name="billing")
mcp = FastMCP("billing", **storage.kwargs())
auth = GitHubProvider(client_id=os.environ["GITHUB_CLIENT_ID"], client_secret=os.environ["GITHUB_CLIENT_SECRET"],
                      base_url=os.environ["BASE_URL"], jwt_signing_key=os.environ["JWT_SIGNING_KEY"],
                      **storage.oauth_proxy_kwargs())
```
"""
    with pytest.raises(AssertionError, match="no FastMCP server in the snippet uses"):
        run_page_text(server, tmp_path)
