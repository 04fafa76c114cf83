"""What every command shares: typed errors, output (tables or JSON), redaction, progress, store opening."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

from fastmcp_sessions._redact import is_secret_param, redact_url
from fastmcp_sessions.encryption import KEYS_ENV

# -- errors ----------------------------------------------------------------------------


class CliError(Exception):
    """A failure the CLI reports as one line (no traceback) and turns into an exit status.

    The message must say what to do about it.
    """

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CliError):
    """Bad arguments: a wrong URL, an unknown option, a missing value (exit status 2)."""

    exit_code = 2


class StoreUnavailableError(CliError):
    """The store could not be opened or reached (exit status 1)."""


class NotFoundError(CliError):
    """The session, server or token named on the command line does not exist (exit status 1)."""


class AlreadyExistsError(CliError):
    """The command would clash with what the store already holds, e.g. a server name taken by
    another URL (exit status 3): the arguments are valid, the store's state is in the way."""

    exit_code = 3


class CommandInterrupted(CliError):
    """Ctrl-C (exit status 130); every command can be run again safely."""

    exit_code = 130


# -- redaction -------------------------------------------------------------------------

_URL_WITH_PASSWORD = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://)([^/\s:@]*):([^@\s/]*)@")


class Redactor:
    """Replaces every secret the CLI knows about with ``***`` in text it prints.

    Secrets come from URLs (passwords, secret-looking query values), the encryption
    keys in the environment, and anything registered with ``add``. Every line the CLI
    prints goes through ``scrub`` as a second line of defence behind ``redact_url``.
    """

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        for variable in (KEYS_ENV, "FASTMCP_SESSIONS_OAUTH_KEYS"):
            for key in os.environ.get(variable, "").split(","):
                self.add(key.strip())

    def add(self, secret: str | None) -> None:
        """Never print ``secret`` (ignored when too short to be a real secret)."""
        if secret and len(secret) >= 4:
            self._secrets.add(secret)
            quoted = unquote(secret)
            if quoted != secret and len(quoted) >= 4:
                self._secrets.add(quoted)

    def add_url(self, url: str | None) -> None:
        """Never print the password or secret query values of ``url``."""
        if not url:
            return
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        if ":" in userinfo:
            self.add(userinfo.split(":", 1)[1])
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if is_secret_param(name):
                self.add(value)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret and every URL password replaced by ``***``."""
        text = _URL_WITH_PASSWORD.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def safe_url(url: str | None) -> str:
    """A URL fit to print: password and secret query values replaced by ``***``."""
    return "(default disk store)" if url is None else redact_url(url)


# -- output ----------------------------------------------------------------------------


@dataclass
class Result:
    """What a command returns: ``data`` for ``--json``, ``text`` for people, and its exit status."""

    data: Any
    text: str
    exit_code: int = 0
    error: str | None = None
    """With a non-zero ``exit_code``: the one line printed to stderr saying what to do."""


@dataclass
class Console:
    """Where a command writes: results to stdout, progress and errors to stderr, all scrubbed."""

    redactor: Redactor = field(default_factory=Redactor)
    json: bool = False
    quiet: bool = False
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    def result(self, result: Result) -> None:
        """Print a command's result as text or JSON."""
        text = json.dumps(result.data, indent=2, default=str) if self.json else result.text
        if text:
            self.stdout.write(self.redactor.scrub(text).rstrip("\n") + "\n")
            self.stdout.flush()

    def error(self, message: str) -> None:
        """Print one error line to stderr."""
        line = " ".join(self.redactor.scrub(message).split())
        self.stderr.write(f"fastmcp-sessions: error: {line}\n")
        self.stderr.flush()

    def note(self, message: str) -> None:
        """Print an informational line to stderr (not with ``--quiet``)."""
        if not self.quiet:
            self.stderr.write(self.redactor.scrub(message) + "\n")
            self.stderr.flush()

    def progress(self, label: str, total: int | None) -> Progress:
        """A progress bar on stderr: redrawn in place on a TTY, plain lines otherwise."""
        return Progress(self, label, total)


class Progress:
    """A progress bar on stderr.

    On a terminal it redraws one line in place; otherwise (a pipe, a log file, CI) it
    prints a plain line at most every two seconds and at the end, so logs stay readable.
    """

    WIDTH = 30
    PLAIN_EVERY = 2.0

    def __init__(self, console: Console, label: str, total: int | None) -> None:
        self.console = console
        self.label = label
        self.total = total
        self.done = 0
        self.detail = ""
        self.tty = _isatty(console.stderr)
        self._last_plain = 0.0
        self._drawn = False

    def set_total(self, total: int) -> None:
        """Set (or correct) the number of steps."""
        self.total = total

    def advance(self, steps: int = 1, detail: str | None = None) -> None:
        """Count ``steps`` more as done and redraw."""
        self.done += steps
        if detail is not None:
            self.detail = detail
        self._draw(final=False)

    def finish(self) -> None:
        """Draw the final state and end the line."""
        self._draw(final=True)
        if self.tty and self._drawn and not self.console.quiet:
            self.console.stderr.write("\n")
            self.console.stderr.flush()

    def _line(self) -> str:
        if self.total:
            share = min(self.done / self.total, 1.0)
            filled = int(share * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            counts = f"[{bar}] {share * 100:5.1f}% {self.done}/{self.total}"
        else:
            counts = f"{self.done}"
        detail = f" {self.detail}" if self.detail else ""
        return f"{self.label}: {counts}{detail}"

    def _draw(self, *, final: bool) -> None:
        if self.console.quiet:
            return
        line = self.console.redactor.scrub(self._line())
        if self.tty:
            self.console.stderr.write("\r\x1b[2K" + line[:200])
            self._drawn = True
        else:
            now = time.monotonic()
            if not final and now - self._last_plain < self.PLAIN_EVERY:
                return
            self._last_plain = now
            self.console.stderr.write(line + "\n")
        self.console.stderr.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Rows as an aligned plain-text table under ``headers``."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def format_ttl(seconds: float | None) -> str:
    """A remaining lifetime for people: ``never``, ``42s``, ``3m12s``, ``5h03m``, ``2d04h``."""
    if seconds is None:
        return "never"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds:.2f}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def format_time(epoch: float | None) -> str:
    """An epoch time as ``YYYY-MM-DD HH:MM:SSZ`` (UTC), ``-`` for none."""
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


# -- files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileInfo:
    """A file or directory the store uses, with its mode."""

    role: str
    path: str
    exists: bool
    mode: str | None
    kind: str
    group_or_world_access: bool

    def as_dict(self) -> dict[str, Any]:
        """This file as JSON-able data."""
        return {
            "role": self.role,
            "path": self.path,
            "exists": self.exists,
            "mode": self.mode,
            "kind": self.kind,
            "group_or_world_access": self.group_or_world_access,
        }


def file_info(role: str, path: Path) -> FileInfo:
    """Where ``path`` is, whether it exists, and its permission bits."""
    try:
        st = path.stat()
    except OSError:
        return FileInfo(role, str(path), False, None, "missing", False)
    mode = stat.S_IMODE(st.st_mode)
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
    return FileInfo(role, str(path), True, f"0{mode:o}", kind, bool(mode & 0o077))
