"""Docs that run: every ```python snippet in README.md and docs/*.md runs as the program a
reader copies into a file.

The convention (also in docs/index.md, "Snippets that run"):

* A snippet is a complete program: its own imports, ``asyncio.run(main())`` instead of a
  top-level ``await``, no name from another snippet. Each one is written alone to
  ``snippet.py`` in an empty temporary directory and run there as its own process,
  ``python snippet.py`` (that directory is also HOME; stdin is closed, so a stdio server
  ends at end of input). It must exit with status 0 within ``TIMEOUT`` seconds.
* Hosts come from the environment with a localhost default
  (``os.environ.get("REDIS_URL", "redis://localhost:6379/0")``), secrets from the variables
  the docs tell the reader to set. The process gets that documented environment and
  nothing more: ``REDIS_URL`` and ``POSTGRESQL_URL`` (a redis-server and a PostgreSQL on
  127.0.0.1 started for these snippets),
  ``FASTMCP_SESSIONS_KEYS`` and ``FASTMCP_SESSIONS_OAUTH_KEYS`` (keys generated once per
  run: every replica of a deployment shares them), the GitHub OAuth app settings
  (``GITHUB_CLIENT_ID``, ``GITHUB_CLIENT_SECRET``, ``BASE_URL``, ``JWT_SIGNING_KEY``; fake
  values, nothing contacts GitHub) and ``PYTHONPATH`` at the checkout under test. Nothing
  in a snippet is rewritten.
* ``<!-- snippet: fragment (the reason) -->`` on the line before a fence marks an excerpt
  that is not a program (one argument, one call on a store opened in an earlier snippet).
  It must compile; a top-level ``await`` is allowed.
* ``<!-- snippet: no-run (the reason) -->`` marks a program that needs what a test cannot
  give (a browser login at an OAuth provider, an OTLP collector, a server that
  runs until stopped). It must compile as a program (no top-level ``await``).
* The reason is required. Any other ``<!-- snippet: ... -->`` comment is an error, so a
  typo cannot silently skip a snippet. At most one snippet in three is marked.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fastmcp_sessions import Keyring
from tests._support import REPO
from tests._support.servers import RedisServer
from tests._support.servers_postgresql import PostgresServer

ROOT = REPO
TIMEOUT = 120.0
"""Seconds a snippet may run (they take a few)."""
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]+)[ \t]*$")
CLOSE = re.compile(r"^[ \t]*```[ \t]*$")
DIRECTIVE = re.compile(r"^\s*<!--\s*snippet\s*:(?P<body>.*?)-->\s*$", re.IGNORECASE)
MARKER = re.compile(r"^\s*(?P<kind>no-run|fragment)\s*\((?P<reason>[^()]*)\)\s*$")
KINDS = ("no-run", "fragment")
PASSED_ON = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
"""What the process keeps of the test's own environment: what any shell has."""


@dataclass(frozen=True)
class Snippet:
    """One ```python fence of a page."""

    page: str
    line: int
    """Line number of the first line of code (1-based) in the page."""
    code: str
    kind: str | None = None
    """``"no-run"`` or ``"fragment"`` as its marker says; ``None``: the snippet runs."""
    reason: str | None = None
    directive_error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """README.md and every docs/*.md present now (pages added later are picked up too)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def snippets(page: Path, root: Path = ROOT) -> list[Snippet]:
    """The ```python snippets of ``page``, with the marker (if any) on the line before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    name = page.relative_to(root).as_posix()
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
        kind, reason, error = _marker(lines, start)
        found.append(Snippet(name, start + 2, "\n".join(body) + "\n", kind, reason, error))
    return found


def _marker(lines: list[str], fence: int) -> tuple[str | None, str | None, str | None]:
    """(kind, reason, error) of the marker on the last non-blank line before ``fence``."""
    previous = fence - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    if previous < 0:
        return None, None, None
    directive = DIRECTIVE.match(lines[previous])
    if directive is None:
        return None, None, None
    marker = MARKER.match(directive["body"])
    if marker is None:
        return (
            None,
            None,
            f"unknown snippet directive {lines[previous].strip()!r}; write "
            "<!-- snippet: fragment (reason) --> or <!-- snippet: no-run (reason) -->",
        )
    kind, reason = marker["kind"], marker["reason"].strip()
    if not reason:
        return (
            None,
            None,
            f"<!-- snippet: {kind} () --> needs a reason: say why the snippet is not a program "
            "that runs as copied",
        )
    return kind, reason, None


def all_snippets() -> list[Snippet]:
    return [s for page in pages() for s in snippets(page)]


def compiled(snippet: Snippet) -> object:
    """Compile as the snippet's kind requires: a fragment may ``await`` at top level, a
    program may not (it runs as a file, where that is a SyntaxError)."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if snippet.kind == "fragment" else 0
    # Pad so errors point at the page's own line numbers.
    source = "\n" * (snippet.line - 1) + snippet.code
    return compile(source, snippet.page, "exec", flags=flags, dont_inherit=True)


# -- the checks of the convention itself ----------------------------------------------------


def test_every_page_has_its_snippets_found() -> None:
    found = all_snippets()
    assert {s.page for s in found} >= {"README.md", "docs/fastmcp.md", "docs/sessions.md"}
    assert len(found) >= 15, [s.where for s in found]


@pytest.mark.parametrize("snippet", all_snippets(), ids=lambda s: s.where)
def test_snippet_markers_are_well_formed_and_every_snippet_compiles(snippet: Snippet) -> None:
    assert snippet.directive_error is None, f"{snippet.page}:{snippet.line - 1}: {snippet.directive_error}"
    try:
        compiled(snippet)
    except SyntaxError as exc:
        hint = " (a program runs `asyncio.run(main())`, not a top-level await)" if "await" in str(exc) else ""
        raise AssertionError(f"{snippet.where}: {exc}{hint}") from exc


def test_marked_snippets_are_the_exception() -> None:
    found = all_snippets()
    marked = [f"{s.where} ({s.kind}: {s.reason})" for s in found if s.kind]
    assert len(marked) * 3 <= len(found), (
        f"at most one snippet in three may be a fragment or no-run: {marked}"
    )


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
                "<!-- snippet: fragment () -->",
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
                "  <!-- snippet: fragment (one argument) -->",
                "  ```python",
                "  await f(6)",
                "  ```",
            ]
        ),
        encoding="utf-8",
    )
    found = snippets(page, root=tmp_path)
    assert [s.code for s in found] == ["a = 1\n", "b = 2\n", "c = 3\n", "d = 4\n", "e = 5\n", "await f(6)\n"]
    assert [s.line for s in found] == [2, 7, 11, 15, 19, 28]
    assert found[0].kind is None and found[0].directive_error is None
    assert (found[1].kind, found[1].reason) == ("no-run", "needs a real GitHub login")
    assert found[2].directive_error and "reason" in found[2].directive_error
    assert found[3].directive_error and "reason" in found[3].directive_error
    assert found[4].directive_error and "unknown snippet directive" in found[4].directive_error
    assert (found[5].kind, found[5].reason) == ("fragment", "one argument")
    compiled(found[5])  # a fragment may await at top level...
    with pytest.raises(SyntaxError, match="await"):
        compiled(Snippet("page.md", 1, "await f(6)\n"))  # ...a program may not


# -- running them ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def documented_environment() -> Iterator[dict[str, str]]:
    """The variables the docs tell a reader to set, with a Redis and a PostgreSQL of the
    snippets' own (so no other test's data or key-check record is in its way)."""
    with RedisServer() as redis, PostgresServer() as postgresql:
        yield {
            "PYTHONPATH": str(ROOT),
            "REDIS_URL": redis.url,
            "POSTGRESQL_URL": postgresql.url,
            "FASTMCP_SESSIONS_KEYS": Keyring.generate_key(),
            "FASTMCP_SESSIONS_OAUTH_KEYS": Keyring.generate_key(),
            "GITHUB_CLIENT_ID": "docs-test-client-id",
            "GITHUB_CLIENT_SECRET": "docs-test-client-secret",
            "BASE_URL": "http://127.0.0.1:8000",
            "JWT_SIGNING_KEY": "docs-test-jwt-signing-key-" + "x" * 16,
        }


def run_as_copied(snippet: Snippet, directory: Path, environment: dict[str, str]) -> None:
    """Write ``snippet`` to ``directory/snippet.py`` and run it there as its own process, as a
    reader would; raise AssertionError with its output unless it exits with status 0."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "snippet.py").write_text(snippet.code, encoding="utf-8")
    env = {name: os.environ[name] for name in PASSED_ON if name in os.environ}
    env.update(environment, HOME=str(directory))
    where = f"{snippet.where} (line N of snippet.py is line {snippet.line} + N - 1 of the page)"
    try:
        done = subprocess.run(
            [sys.executable, "snippet.py"],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"{where}: still running after {TIMEOUT:.0f} s\n{_output(exc.stdout, exc.stderr)}"
        ) from None
    if done.returncode != 0:
        raise AssertionError(f"{where}: exit status {done.returncode}\n{_output(done.stdout, done.stderr)}")


def _output(stdout: str | bytes | None, stderr: str | bytes | None) -> str:
    def text(stream: str | bytes | None) -> str:
        if isinstance(stream, bytes):
            return stream.decode(errors="replace")
        return stream or ""

    return f"--- stdout ---\n{text(stdout)}\n--- stderr ---\n{text(stderr)}"


@pytest.mark.parametrize("snippet", [s for s in all_snippets() if s.kind is None], ids=lambda s: s.where)
def test_snippet_runs_as_copied(
    snippet: Snippet, documented_environment: dict[str, str], tmp_path: Path
) -> None:
    run_as_copied(snippet, tmp_path, documented_environment)


def test_the_runner_catches_a_broken_snippet(documented_environment: dict[str, str], tmp_path: Path) -> None:
    """A snippet that leans on an earlier one, or awaits at top level, fails as it would for a
    reader; one that stands alone passes (so the snippet tests mean something)."""
    page = tmp_path / "page.md"
    page.write_text(
        "\n".join(
            [
                "```python",
                "import os",
                "",
                "from fastmcp_sessions import open_store",
                "",
                "store = open_store(os.environ['REDIS_URL'])",
                "```",
                "```python",
                "print(store)",
                "```",
                "```python",
                "await store.put('k', {'v': 1})",
                "```",
            ]
        ),
        encoding="utf-8",
    )
    alone, leaning, awaiting = snippets(page, root=tmp_path)
    run_as_copied(alone, tmp_path / "alone", documented_environment)
    with pytest.raises(AssertionError, match=r"(?s)page.md:9 .*exit status 1.*NameError: name 'store'"):
        run_as_copied(leaning, tmp_path / "leaning", documented_environment)
    with pytest.raises(AssertionError, match=r"(?s)page.md:12 .*SyntaxError: 'await' outside function"):
        run_as_copied(awaiting, tmp_path / "awaiting", documented_environment)
