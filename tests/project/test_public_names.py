"""Every name the README, the docs and the examples import from fastmcp_sessions still imports."""

from __future__ import annotations

import importlib
import re

import pytest

from tests._support import REPO

ROOT = REPO
IMPORT = re.compile(r"^\s*from (fastmcp_sessions[\w.]*) import (\([^)]*\)|[^\n]+)", re.MULTILINE)


def _documented_names() -> set[tuple[str, str]]:
    files = [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "examples").glob("*.py")),
    ]
    found: set[tuple[str, str]] = set()
    for path in files:
        for module, names in IMPORT.findall(path.read_text()):
            for name in re.sub(r"#.*", "", names).strip("()").replace("\n", ",").split(","):
                name = name.strip().split(" as ")[0].strip()
                if name:
                    found.add((module, name))
    return found


DOCUMENTED = sorted(_documented_names())


def test_the_docs_import_names_from_the_fastmcp_package() -> None:
    # Guards against a scan that finds nothing and passes vacuously.
    assert ("fastmcp_sessions.fastmcp", "server_storage") in DOCUMENTED
    assert len({module for module, _ in DOCUMENTED}) >= 3


@pytest.mark.parametrize(("module", "name"), DOCUMENTED, ids=[f"{m}.{n}" for m, n in DOCUMENTED])
def test_a_documented_name_imports(module: str, name: str) -> None:
    imported = importlib.import_module(module)
    assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}") is not None, (
        f"{module} no longer has {name}"
    )
