"""Helpers for the CLI tests: results of ``main([...])`` and of ``python -m fastmcp_sessions.cli``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def all(self) -> str:
        return self.out + self.err


CliRunner = Callable[..., Run]


def run_subprocess(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    """Run ``python -m fastmcp_sessions.cli ARGS`` as a separate process (the console script's code path)."""
    environment = dict(os.environ)
    environment.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "fastmcp_sessions.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(run: Run, code: int) -> None:
    """A failure: the expected exit code, no traceback, one error line on stderr."""
    assert run.code == code, run.all
    assert "Traceback" not in run.all
    errors = [line for line in run.err.splitlines() if line.startswith("fastmcp-sessions: error:")]
    assert len(errors) == 1, run.err
