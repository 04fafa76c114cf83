"""A backend's third-party driver, and the error that says why it cannot be imported.

Backend modules import their driver lazily (the registry imports every built-in
backend, installed or not), so a failed import is recorded and raised only when a
store is built. A bare ``ImportError`` would say "install the extra" even when the
package is installed but too old; ``Driver.error()`` tells the cases apart::

    _DRIVER = Driver("RedisStore", "redis", Requirement("redis", "5.3.1", label="redis-py"))
    try:
        from redis.asyncio import Redis
    except ImportError as exc:
        _DRIVER.failed(exc)
    ...
        if not _HAVE_REDIS:
            raise _DRIVER.error()

* a package that is not there at all (no importable module): install the extra;
* one that is there but older than the floor: the missing module or name, the
  version found and the version needed;
* one that is new enough and still fails (a broken install, or another module of the
  same name in front of it on ``sys.path``): the same, and where the module was found.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass

from fastmcp_sessions._versions import installed_version
from fastmcp_sessions.errors import DriverImportError, StoreOptionError

__all__ = ["Driver", "Requirement"]

_CANNOT_IMPORT_NAME = re.compile(r"cannot import name '([^']+)'")
_RELEASE = re.compile(r"\d+(?:\.\d+)*")


@dataclass(frozen=True, slots=True)
class Requirement:
    """A distribution a backend needs, at least version ``minimum``.

    ``imports`` are the top-level modules the backend imports that this distribution
    brings (itself or through its own dependencies); default: the distribution's name.
    """

    distribution: str
    minimum: str
    label: str = ""
    imports: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """How users know the package (``redis-py`` for ``redis``)."""
        return self.label or self.distribution

    @property
    def modules(self) -> tuple[str, ...]:
        """The top-level modules whose absence means the distribution is not installed."""
        return self.imports or (self.distribution,)

    def version(self) -> str | None:
        """The installed version according to the package metadata, or ``None``."""
        return installed_version(self.distribution)

    def absent_module(self) -> str | None:
        """The first of ``modules`` that cannot be found at all, or ``None``."""
        for module in self.modules:
            if _origin(module) is None:
                return module
        return None

    def is_older(self, version: str) -> bool:
        """Whether ``version`` is below ``minimum`` (release numbers only: ``5.3.1rc1`` counts as 5.3.1)."""
        return _release(version) < _release(self.minimum)


class Driver:
    """The driver of one backend: what it needs, and why its import failed (if it did)."""

    def __init__(self, store: str, extra: str, *requires: Requirement, note: str = "") -> None:
        """``store`` names the class (``RedisStore``), ``extra`` the pip extra bringing ``requires``;
        ``note`` is added to the install advice (e.g. " (optionally with hiredis)")."""
        if not requires:
            raise StoreOptionError("a Driver needs at least one Requirement")
        self.store = store
        self.extra = extra
        self.requires = requires
        self.note = note
        self._cause: ImportError | None = None

    def __repr__(self) -> str:
        needs = ", ".join(f"{r.distribution}>={r.minimum}" for r in self.requires)
        return f"Driver({self.store}, extra={self.extra!r}, {needs})"

    def failed(self, exc: ImportError) -> None:
        """Record the ``ImportError`` of the backend's driver imports (call it in their ``except``)."""
        self._cause = exc

    def install_hint(self) -> str:
        """The pip command that brings every requirement."""
        return f"pip install 'fastmcp-sessions[{self.extra}]'"

    def error(self) -> DriverImportError:
        """The error to raise when a store is built without a usable driver, naming the real cause."""
        cause = self._cause
        for requirement in self.requires:
            absent = requirement.absent_module()
            if absent is not None:
                err = self._absent(requirement, absent)
                break
        else:
            if cause is None:
                # Flagged unavailable with nothing recorded: advise what brings the driver.
                err = DriverImportError(
                    f"{self.store} needs {self._names()}: {self.install_hint()}{self.note}"
                )
            else:
                err = self._unusable(cause)
        err.__cause__ = cause
        return err

    def _names(self) -> str:
        return " and ".join(r.name for r in self.requires)

    def _absent(self, requirement: Requirement, module: str) -> DriverImportError:
        message = f"{self.store} needs {requirement.name}: {self.install_hint()}{self.note}"
        recorded = requirement.version()
        if recorded is not None and module == requirement.distribution:
            message += (
                f"; the metadata of {requirement.distribution} {recorded} is installed but module "
                f"{module!r} cannot be found, so reinstall it: pip install --force-reinstall "
                f"'{requirement.distribution}>={requirement.minimum}'"
            )
        return DriverImportError(message, module=module)

    def _unusable(self, cause: ImportError) -> DriverImportError:
        module = cause.name or ""
        match = _CANNOT_IMPORT_NAME.search(str(cause))
        if match and module:
            missing = f"{module}.{match.group(1)}"
        else:
            missing = f"module {module!r}" if module else str(cause)
        top = module.partition(".")[0]
        requirement = next((r for r in self.requires if top in r.modules), self.requires[0])
        version = requirement.version()
        needed = f"{requirement.distribution}>={requirement.minimum}"
        if version is None:
            found = f"{requirement.distribution} is not installed"
            advice = f"pip install '{needed}'"
        elif requirement.is_older(version):
            found = f"{requirement.name} {version} is installed"
            advice = f"upgrade it: pip install --upgrade '{needed}'"
        else:
            where = _origin(top) if top else None
            found = f"{requirement.name} {version} is installed"
            if where:
                found += f" (imported from {where})"
            advice = (
                "the installation looks broken or shadowed by another module of that name; "
                f"reinstall it: pip install --force-reinstall '{needed}'"
            )
        return DriverImportError(
            f"{self.store} cannot import its driver: {missing} is missing; {found}, "
            f"{requirement.minimum} or newer is needed; {advice}",
            module=module or None,
        )


def _origin(module: str) -> str | None:
    """Where ``module`` would be imported from (``"namespace"`` for a namespace package), or
    ``None`` when it cannot be found (a finder that refuses it counts as not found)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    return spec.origin or "namespace"


def _release(version: str) -> tuple[int, ...]:
    match = _RELEASE.match(version.strip().lstrip("vV"))
    numbers = [int(part) for part in match.group(0).split(".")] if match else [0]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)
