"""What a user installs: honest floors, a complete sdist and wheel, a README that renders on PyPI."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from fastmcp_sessions.stores.redis import scripts as redis_scripts
from tests._support import REPO

ROOT = REPO

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REPO_URL = PYPROJECT["project"]["urls"]["Source"]


def _direct_requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra, items in project["optional-dependencies"].items():
        reqs += [Requirement(r) for r in items if not r.startswith("fastmcp-sessions")]
        assert extra
    return reqs


def _lowest_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements" / "lowest.txt").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_every_floor_is_the_version_the_lowest_stage_installs() -> None:
    pins = _lowest_pins()
    for req in _direct_requirements():
        floors = [s.version for s in req.specifier if s.operator == ">="]
        assert floors, f"{req.name} has no floor in pyproject.toml"
        assert req.name.lower() in pins, f"{req.name} missing from requirements/lowest.txt"
        assert Version(pins[req.name.lower()]) == Version(floors[0]), (
            f"{req.name}: pyproject promises >={floors[0]} but the lowest stage tests "
            f"{pins[req.name.lower()]}: raise the floor or rerun scripts/lock.sh"
        )


def _uv() -> str:
    found = sorted(ROOT.glob(".cache/uv-*/bin/uv")) or [Path(p) for p in [shutil.which("uv")] if p]
    assert found, "run scripts/bootstrap.sh first: it installs the pinned uv"
    return str(found[-1])


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([_uv(), "build", "--quiet", "--out-dir", str(out), str(ROOT)], check=True, timeout=300)
    return out


# The Redis store's Lua scripts are data files: both archives must carry every one it reads.
_LUA = [f"fastmcp_sessions/stores/redis/scripts/{script.name}.lua" for script in redis_scripts.ALL]


def test_every_lua_file_is_a_script_the_store_reads() -> None:
    on_disk = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "fastmcp_sessions").rglob("*.lua"))
    assert on_disk == sorted(_LUA)


def test_the_redis_extra_is_bounded_above_the_locked_redis_py() -> None:
    (req,) = [r for r in _direct_requirements() if r.name == "redis"]
    uppers = [Version(s.version) for s in req.specifier if s.operator == "<"]
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (locked,) = [Version(p["version"]) for p in lock["package"] if p["name"] == "redis"]
    # The bound is the next major after the newest redis-py the lock tests: a release that
    # may move what stores/redis/_seam.py relies on is not installed until it is tested.
    assert uppers == [Version(f"{locked.major + 1}")], (uppers, locked)


def test_sdist_ships_the_package_and_licence_and_no_partial_tests(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    assert "LICENSE" in names and "README.md" in names and "pyproject.toml" in names
    assert "fastmcp_sessions/py.typed" in names
    assert "fastmcp_sessions/stores/base.py" in names
    assert set(_LUA) <= set(names), sorted(set(_LUA) - set(names))
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "scripts/"))]


def test_wheel_is_typed_and_licensed(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "fastmcp_sessions/py.typed" in names
    assert set(_LUA) <= set(names), sorted(set(_LUA) - set(names))
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert not [n for n in names if n.startswith("tests/")]
    assert "License-Expression: Apache-2.0" in metadata
    assert "Project-URL: Source, " in metadata
    assert "Classifier: Typing :: Typed" in metadata
    assert "Author: The fastmcp-sessions maintainers" in metadata


def test_license_file_is_the_declared_licence() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_readme_links_work_when_pypi_renders_it() -> None:
    """PyPI has no repository beside the README: a relative link would be a dead link there."""
    links = re.findall(r"\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())
    assert links
    for link in links:
        if link.startswith("#"):
            continue
        assert link.startswith("https://"), f"README link {link!r} is relative: it breaks on PyPI"
        for prefix in (f"{REPO_URL}/blob/main/", f"{REPO_URL}/tree/main/"):
            if link.startswith(prefix):
                target = link.removeprefix(prefix).split("#")[0]
                assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


def test_driver_floors_in_error_messages_are_the_pyproject_floors() -> None:
    """The version a DriverImportError asks for is the one pyproject promises."""
    from fastmcp_sessions.stores import dynamodb, mongodb, postgresql
    from fastmcp_sessions.stores.redis import store as redis

    floors = {
        req.name.lower(): next(s.version for s in req.specifier if s.operator == ">=")
        for req in _direct_requirements()
    }
    for module in (redis, mongodb, dynamodb, postgresql):
        for requirement in module._DRIVER.requires:
            assert Version(requirement.minimum) == Version(floors[requirement.distribution.lower()]), (
                module.__name__,
                requirement,
            )
