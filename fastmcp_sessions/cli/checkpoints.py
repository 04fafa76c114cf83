"""The checkpoints ``migrate`` leaves in the user state directory: where, which, and their expiry.

A completed migration removes its checkpoint. One that is never run again (given up,
or run with other arguments) would stay forever, so every ``migrate`` run also removes
the checkpoints in the default directory that were last saved more than
``MAX_AGE_DAYS`` days ago; ``migrate --list-checkpoints`` shows them and
``migrate --forget-checkpoints`` removes them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_AGE_DAYS = 7
"""A checkpoint not saved for this many days belongs to an abandoned migration."""

PATTERN = "migrate-*.json"


def checkpoint_dir() -> Path:
    """``<user state dir>/fastmcp-sessions`` (on Linux ``$XDG_STATE_HOME/fastmcp-sessions``)."""
    import platformdirs

    return Path(platformdirs.user_state_dir("fastmcp-sessions"))


@dataclass(frozen=True)
class SavedCheckpoint:
    """One checkpoint file, as ``--list-checkpoints`` shows it (URLs are stored redacted)."""

    path: Path
    saved: float
    source: str | None
    destination: str | None
    done: int
    current: str | None

    @property
    def age_days(self) -> float:
        """Days since the checkpoint was last saved."""
        return max(time.time() - self.saved, 0.0) / 86400

    def as_dict(self) -> dict[str, Any]:
        """This checkpoint as JSON-able data."""
        return {
            "path": str(self.path),
            "saved": self.saved,
            "age_days": round(self.age_days, 2),
            "source": self.source,
            "destination": self.destination,
            "collections_done": self.done,
            "current_collection": self.current,
        }


def read(path: Path) -> SavedCheckpoint:
    """What ``path`` holds; an unreadable file counts as saved when it was last modified."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except (OSError, ValueError):
        data = {}
    saved = data.get("saved")
    if not isinstance(saved, (int, float)):
        try:
            saved = path.stat().st_mtime
        except OSError:
            saved = 0.0
    current = data.get("current") or {}
    return SavedCheckpoint(
        path=path,
        saved=float(saved),
        source=data.get("source"),
        destination=data.get("destination"),
        done=len(data.get("done") or ()),
        current=current.get("collection") if isinstance(current, dict) else None,
    )


def saved_checkpoints(directory: Path | None = None) -> list[SavedCheckpoint]:
    """Every checkpoint in ``directory`` (default: the user state directory), oldest first."""
    directory = checkpoint_dir() if directory is None else directory
    if not directory.is_dir():
        return []
    return sorted((read(p) for p in directory.glob(PATTERN) if p.is_file()), key=lambda c: c.saved)


def expire(directory: Path | None = None, *, max_age_days: float = MAX_AGE_DAYS) -> list[Path]:
    """Remove the checkpoints (and leftover temporary files) older than ``max_age_days``; return them."""
    directory = checkpoint_dir() if directory is None else directory
    removed = []
    for checkpoint in saved_checkpoints(directory):
        if checkpoint.age_days > max_age_days:
            checkpoint.path.unlink(missing_ok=True)
            removed.append(checkpoint.path)
    if directory.is_dir():
        cutoff = time.time() - max_age_days * 86400
        for tmp in directory.glob(f".{PATTERN}.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink(missing_ok=True)
                    removed.append(tmp)
            except OSError:
                continue
    return removed


def forget(paths: list[Path]) -> list[Path]:
    """Remove these checkpoint files; return the ones that existed."""
    removed = []
    for path in paths:
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed
