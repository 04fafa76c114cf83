"""The backends every conformance and session-layer test runs against.

Each entry of ``BACKENDS`` turns a pytest request and a fresh namespace into a
``Backend``: a way to open stores over the same data (several instances, other
processes) isolated from every other test. A backend module adds itself with
``@backend("name")``; tests pick them up through the ``backend`` and ``store``
fixtures in ``conftest.py``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fastmcp_sessions import DiskStore, EncryptedStore, Keyring, MemoryStore, Store, open_store


@dataclass
class Backend:
    name: str
    open: Callable[[], Store]
    """Open a new store instance over this test's data."""
    url: str | None = None
    """A URL that ``open_store`` (in another process, with ``env``) turns into the same store."""
    env: dict[str, str] = field(default_factory=dict)
    shared_across_instances: bool = True
    """Whether two ``open()`` calls see the same data (False for the memory store)."""

    @property
    def multiprocess(self) -> bool:
        """Whether other processes can open the same data (by ``url``)."""
        return self.url is not None


BackendMaker = Callable[[pytest.FixtureRequest, str], Backend]
BACKENDS: dict[str, BackendMaker] = {}
SHARED: set[str] = set()
"""Backends whose instances share data, across instances and processes."""


def backend(name: str, *, shared: bool = True) -> Callable[[BackendMaker], BackendMaker]:
    """Register a backend maker; ``shared=False`` for in-process stores."""

    def register(maker: BackendMaker) -> BackendMaker:
        BACKENDS[name] = maker
        if shared:
            SHARED.add(name)
        return maker

    return register


TEST_KEY = Keyring.generate_key()


@backend("memory", shared=False)
def _memory(request: pytest.FixtureRequest, namespace: str) -> Backend:
    return Backend("memory", MemoryStore, shared_across_instances=False)


@backend("memory+encrypted", shared=False)
def _memory_encrypted(request: pytest.FixtureRequest, namespace: str) -> Backend:
    return Backend(
        "memory+encrypted",
        lambda: EncryptedStore(MemoryStore(), keys=[TEST_KEY]),
        shared_across_instances=False,
    )


@backend("disk")
def _disk(request: pytest.FixtureRequest, namespace: str) -> Backend:
    tmp: Path = request.getfixturevalue("tmp_path")
    path = tmp / "disk" / "store.sqlite3"
    return Backend(
        "disk",
        lambda: DiskStore(path, keys=[TEST_KEY]),
        url=f"disk://{path}",
        env={"FASTMCP_SESSIONS_KEYS": TEST_KEY},
    )


@backend("disk+inline")
def _disk_inline(request: pytest.FixtureRequest, namespace: str) -> Backend:
    tmp: Path = request.getfixturevalue("tmp_path")
    url = f"disk://{tmp / 'inline.sqlite3'}?offload=false"
    return Backend(
        "disk+inline",
        lambda: open_store(url, keys=[TEST_KEY]),
        url=url,
        env={"FASTMCP_SESSIONS_KEYS": TEST_KEY},
    )


@backend("disk+plain")
def _disk_plain(request: pytest.FixtureRequest, namespace: str) -> Backend:
    tmp: Path = request.getfixturevalue("tmp_path")
    url = f"disk://{tmp / 'plain.sqlite3'}?encryption=false"
    return Backend("disk+plain", lambda: open_store(url), url=url)


def _load_optional_backends() -> None:
    # Backends that need servers live in their own modules; importing registers them.
    here = Path(__file__).parent
    for module in sorted(here.glob("backends_*.py")):
        importlib.import_module(f"{__package__}.{module.stem}")


_load_optional_backends()
SELECTED = [n for n in BACKENDS if n in os.environ.get("FASTMCP_SESSIONS_TEST_BACKENDS", n).split(",")]
"""Backends to test: all, or those named in env FASTMCP_SESSIONS_TEST_BACKENDS (comma-separated)."""
SELECTED_SHARED = [n for n in SELECTED if n in SHARED]
