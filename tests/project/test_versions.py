"""The installed-version lookup that the seams' and drivers' error messages quote."""

from __future__ import annotations

import importlib.metadata

from fastmcp_sessions._versions import installed_version


def test_an_installed_distribution_reports_its_metadata_version() -> None:
    for distribution in ("fastmcp", "mcp", "redis", "py-key-value-aio"):
        assert installed_version(distribution) == importlib.metadata.version(distribution)


def test_a_distribution_without_metadata_is_none_not_an_error() -> None:
    assert installed_version("fastmcp-sessions-no-such-distribution") is None
