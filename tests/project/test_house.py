"""The shape of the package, checked on its files: rooms of the right size, one seam per
foreign internal, typed errors, Lua in ``.lua`` files, tests found without ``sys.path``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests._support import REPO

PACKAGE = REPO / "fastmcp_sessions"
SOURCES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 700


def _name(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_no_module_is_over_700_lines() -> None:
    long = {_name(p): n for p in SOURCES if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these into modules that each do one thing: {long}"


# redis-py attributes that are not its public API; each has one function in the seam.
_REDIS_PRIVATES = re.compile(
    r"(?<!self)\._(writer|reader)\b|redis\._parsers|\bnodes_manager\b|\bBaseParser\b"
)
_REDIS_SEAM = PACKAGE / "stores" / "redis" / "_seam.py"


def test_redis_py_internals_are_touched_only_in_the_seam() -> None:
    outside = [
        f"{_name(p)}:{i}"
        for p in SOURCES
        if p != _REDIS_SEAM
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if _REDIS_PRIVATES.search(line)
    ]
    assert not outside, f"move these into stores/redis/_seam.py: {outside}"


def test_at_most_one_module_is_called_registry() -> None:
    assert len([p for p in SOURCES if p.name == "registry.py"]) <= 1


def test_one_redaction_module() -> None:
    assert [_name(p) for p in SOURCES if "redact" in p.name] == ["fastmcp_sessions/_redact.py"]


def _builtin_errors_raised(path: Path, names: frozenset[str]) -> list[str]:
    """Where ``path`` builds one of the builtin exceptions ``names`` (``raise ValueError(...)``
    or ``ValueError(...)`` kept for later); catching one is fine."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        f"{_name(path)}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names
    ]


@pytest.mark.parametrize("folder", ["stores", "buses", "events", "sessions"])
def test_a_bad_argument_raises_a_typed_error_not_a_bare_value_error(folder: str) -> None:
    # StoreOptionError and InvalidArgumentError are ValueErrors too, so `except ValueError`
    # in user code keeps working; the message and the type say which of ours it is.
    found = [
        hit
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for hit in _builtin_errors_raised(path, frozenset({"ValueError", "RuntimeError", "KeyError"}))
    ]
    assert not found, f"raise a fastmcp_sessions.errors type here: {found}"


def test_lua_lives_in_lua_files() -> None:
    inline = [
        f"{_name(p)}:{i}"
        for p in SOURCES
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "redis.call(" in line or "redis.pcall(" in line
    ]
    assert not inline, f"move these scripts into stores/redis/scripts/*.lua: {inline}"


def test_no_test_edits_sys_path() -> None:
    edits = [
        _name(p)
        for p in sorted((REPO / "tests").rglob("*.py"))
        if p != Path(__file__)
        and re.search(r"sys\.path\.(insert|append)|sys\.path\s*=|sys\.path\s*\+=", p.read_text())
    ]
    assert not edits, f"import helpers from tests._support instead: {edits}"
