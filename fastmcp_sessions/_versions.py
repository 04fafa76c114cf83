"""The installed version of a distribution, for the messages that name it."""

from __future__ import annotations

import importlib.metadata

__all__ = ["installed_version"]


def installed_version(distribution: str) -> str | None:
    """The version the package metadata records for ``distribution``, or ``None`` when it has none.

    Error messages quote it so a user can tell which release changed or is missing; a
    module imported from a source tree has no metadata, and that must not turn the
    message being built into a different error.
    """
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
