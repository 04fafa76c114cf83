"""The package's import graph: no two modules import each other, and each layer imports only those below.

Layers, bottom up (``FAMILIES`` below lists every module): the shared modules at the top of
the package (errors, values, encryption...), the stores, then beside each other the buses, the
event stores and the session layer (which uses only the store contract), then the FastMCP
wiring, then the CLI, then the public API of the package root. Every import counts, including those
inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests._support import REPO

PACKAGE = REPO / "fastmcp_sessions"
ROOT = PACKAGE.name


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(module: str) -> set[str]:
    """The package's own modules that ``module`` imports anywhere in its code."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                # ``from pkg import mod`` imports the module pkg.mod when there is one.
                found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source)
    return {_owning_module(name) for name in found if name == ROOT or name.startswith(ROOT + ".")} - {module}


def _owning_module(name: str) -> str:
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


GRAPH = {module: _imports(module) for module in MODULES}


def _inside(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_graph_sees_the_package() -> None:
    # The walk must find the modules and their imports, or the tests below pass vacuously.
    assert {"fastmcp_sessions.stores.base", "fastmcp_sessions.sessions.store", "fastmcp_sessions.cli"} <= set(
        MODULES
    )
    assert "fastmcp_sessions.stores.base" in GRAPH["fastmcp_sessions.sessions.lock"]
    # An import inside a function counts (models imports the MCP SDK models lazily).
    assert "fastmcp_sessions.sessions._mcp" in GRAPH["fastmcp_sessions.sessions.models"]
    # The FastMCP package and the buses are seen module by module.
    assert {
        "fastmcp_sessions.fastmcp.storage",
        "fastmcp_sessions.fastmcp._seam",
        "fastmcp_sessions.buses.redis",
    } <= set(MODULES)
    assert "fastmcp_sessions.layout" in GRAPH["fastmcp_sessions.buses.redis"]


def test_no_two_modules_import_each_other() -> None:
    pairs = sorted(
        f"{a} <-> {b}" for a, targets in GRAPH.items() for b in targets if a < b and a in GRAPH.get(b, set())
    )
    assert pairs == []


def test_there_is_no_import_cycle_at_all() -> None:
    # Longer loops (a -> b -> c -> a) tangle the layers just as a two-way import does.
    done: set[str] = set()

    def walk(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for target in sorted(GRAPH[module]):
            cycle = walk(target, [*path, module])
            if cycle:
                return cycle
        done.add(module)
        return None

    cycles = [c for c in (walk(m, []) for m in sorted(GRAPH)) if c]
    assert cycles == [], " -> ".join(cycles[0])


# Every module of the package, by family, bottom up. A module may import its own family and
# any family of a lower rank; families of one rank (the stores' neighbours, the top) know
# nothing of each other.
FAMILIES: dict[str, tuple[int, tuple[str, ...]]] = {
    "shared": (
        0,
        (
            "errors",
            "_values",
            "_redact",
            "_retry",
            "_closing",
            "_timing",
            "_versions",
            "_otel_seam",
            "telemetry",
            "encryption",
            "layout",
        ),
    ),
    "stores": (1, ("stores",)),
    "buses": (2, ("buses",)),
    "events": (2, ("events",)),
    "sessions": (2, ("sessions",)),
    "fastmcp": (3, ("fastmcp",)),
    "cli": (4, ("cli",)),
    "public API": (5, ("",)),
}
# The session layer sees the stores only through their contract.
STORE_CONTRACT = {f"{ROOT}.stores.base", f"{ROOT}.stores.namespaced", f"{ROOT}.stores.fencing"}


def _family(module: str) -> str:
    """The family whose prefix is the longest match for ``module``."""
    best, length = "", -1
    for family, (_, prefixes) in FAMILIES.items():
        for prefix in prefixes:
            name = f"{ROOT}.{prefix}" if prefix else ROOT
            if _inside(module, name) and len(name) > length:
                best, length = family, len(name)
    return best


def test_every_module_has_a_family_and_every_family_a_module() -> None:
    assert all(_family(m) for m in MODULES)
    assert {_family(m) for m in MODULES} == set(FAMILIES)


def test_a_module_imports_only_its_family_and_those_below() -> None:
    wrong = sorted(
        f"{module} ({_family(module)}) imports {target} ({_family(target)})"
        for module, targets in GRAPH.items()
        for target in targets
        if _family(target) != _family(module) and FAMILIES[_family(target)][0] >= FAMILIES[_family(module)][0]
    )
    assert wrong == []


def test_the_session_layer_uses_only_the_store_contract() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _family(module) == "sessions"
        for target in targets
        if _family(target) == "stores" and target not in STORE_CONTRACT
    )
    assert wrong == []
