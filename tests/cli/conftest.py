"""Fixtures for the CLI tests."""

from __future__ import annotations

import pytest

from fastmcp_sessions.cli import main
from tests._support.cli_runner import CliRunner, Run


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run ``fastmcp-sessions ARGS`` in this process; return exit code, stdout and stderr."""

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
