from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fastmcp_sessions import Store
from tests._support.backends import BACKENDS, SELECTED, SELECTED_SHARED, Backend


@pytest.fixture(autouse=True)
def _isolated_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Keep every test away from the real user's data, config and environment."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    for name in ("FASTMCP_SESSIONS_URL", "FASTMCP_SESSIONS_KEYS", "FASTMCP_SESSIONS_APP"):
        monkeypatch.delenv(name, raising=False)
    yield


# Server fixtures live in tests/_support/fixtures_*.py, one module per backend family.
pytest_plugins = sorted(
    f"tests._support.{m.stem}" for m in (Path(__file__).parent / "_support").glob("fixtures_*.py")
)


def _make(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param](request, "t" + secrets.token_hex(6))


@pytest.fixture(params=SELECTED)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn, isolated under a fresh namespace."""
    return _make(request)


@pytest.fixture(params=SELECTED_SHARED)
def shared_backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend whose data is shared across instances and processes (all but memory)."""
    return _make(request)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    s = backend.open()
    try:
        yield s
    finally:
        await s.close()
