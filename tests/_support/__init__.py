"""Helpers the tests share: test servers, backend fixtures, worker processes.

``REPO`` is the repository root; ``WORKERS`` holds the scripts tests start as their own OS
processes (by path, so each runs exactly as a user's process would).
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).resolve().parent / "workers"
