"""``fastmcp-sessions migrate SRC DST``: copy every collection, keeping each entry's remaining TTL.

* **Idempotent.** An entry the destination already holds with the same value is left
  alone; a missing one is written with ``put_if_absent`` (a live writer on the
  destination always wins); one that differs is kept unless ``--overwrite``.
* **Resumable.** After every batch a checkpoint (collection, position, counts; keys only
  as hashes) is written under the platform state directory; an interrupted run started
  again with the same arguments continues after the last finished batch. A run that
  completes removes it; checkpoints of abandoned migrations expire after
  ``checkpoints.MAX_AGE_DAYS`` days (``--list-checkpoints``, ``--forget-checkpoints``).
* **Checked.** At the end every key the source listed is looked up in the destination;
  any that is still live in the source but missing from the destination fails the run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from key_value.aio.errors import BaseKeyValueError

from fastmcp_sessions.cli import checkpoints
from fastmcp_sessions.cli._common import (
    CliError,
    CommandInterrupted,
    Console,
    Result,
    UsageError,
    format_table,
    safe_url,
)
from fastmcp_sessions.cli._stores import open_cli_store
from fastmcp_sessions.cli.sources import (
    ReadResult,
    Source,
    SourceError,
    StoreSource,
    is_kv_url,
    open_kv_source,
)
from fastmcp_sessions.encryption import make_private_dir
from fastmcp_sessions.layout import FASTMCP_COLLECTIONS
from fastmcp_sessions.stores.base import Store

Route = Callable[[str], Store]
"""Which destination store a collection goes to."""

CHECKPOINT_VERSION = 1
MIN_TTL = 0.001
"""An entry with less than this left is treated as expired rather than copied."""


def key_fingerprint(key: str) -> str:
    """How ``migrate`` names a key in output: keys may be secrets (OAuth codes), so only a hash."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12]


@dataclass
class Counts:
    """What happened to the entries of one collection."""

    listed: int = 0
    copied: int = 0
    present: int = 0
    kept: int = 0
    overwritten: int = 0
    expired: int = 0
    failed: int = 0

    def add(self, other: Counts) -> None:
        """Add ``other``'s counts to these."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Failure:
    """An entry that could not be copied."""

    collection: str
    key: str
    error: str


@dataclass
class Checkpoint:
    """Progress of one migration (source and destination pair), saved after every batch."""

    path: Path | None
    identity: str
    done: list[str] = field(default_factory=list)
    collection: str | None = None
    position: int = 0
    last_key: str | None = None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    resumed: bool = False
    source: str | None = None
    """The source URL, redacted (shown by ``--list-checkpoints``)."""
    destination: str | None = None
    """The destination URL, redacted."""

    @classmethod
    def load(cls, path: Path | None, identity: str) -> Checkpoint:
        """The saved checkpoint at ``path`` for this migration, or a fresh one."""
        fresh = cls(path, identity)
        if path is None or not path.exists():
            return fresh
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return fresh
        if data.get("version") != CHECKPOINT_VERSION or data.get("identity") != identity:
            return fresh
        current = data.get("current") or {}
        return cls(
            path,
            identity,
            done=list(data.get("done", [])),
            collection=current.get("collection"),
            position=int(current.get("position", 0)),
            last_key=current.get("last_key"),
            counts={c: dict(v) for c, v in data.get("counts", {}).items()},
            resumed=True,
        )

    def resume_index(self, collection: str, keys: Sequence[str]) -> int:
        """Where to start in ``keys`` (sorted): after the last finished batch, else 0."""
        if collection != self.collection or self.last_key is None:
            return 0
        if 0 < self.position <= len(keys) and key_fingerprint(keys[self.position - 1]) == self.last_key:
            return self.position
        for index, key in enumerate(keys):
            if key_fingerprint(key) == self.last_key:
                return index + 1
        return 0

    def save(
        self, collection: str | None, position: int, last_key: str | None, counts: dict[str, Counts]
    ) -> None:
        """Record that everything before ``position`` in ``collection`` is done."""
        self.collection, self.position, self.last_key = collection, position, last_key
        self.counts = {c: asdict(v) for c, v in counts.items()}
        if self.path is None:
            return
        data = {
            "version": CHECKPOINT_VERSION,
            "identity": self.identity,
            "done": self.done,
            "current": {"collection": collection, "position": position, "last_key": last_key},
            "counts": self.counts,
            "saved": time.time(),
            "source": self.source,
            "destination": self.destination,
        }
        make_private_dir(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        """Forget this migration's progress (it completed)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def default_checkpoint(source: str, destination: str, collections: Sequence[str] | None) -> Path:
    """``<user state dir>/fastmcp-sessions/migrate-<hash of the redacted URLs>.json``."""
    identity = migration_identity(source, destination, collections)
    return checkpoints.checkpoint_dir() / f"migrate-{identity[:16]}.json"


def _with_server(destination: str, to_server: str | None) -> str:
    # --to-server writes a different layout: a different migration, with its own checkpoint.
    return destination if to_server is None else f"{destination}#server={to_server}"


def list_checkpoints() -> Result:
    """``migrate --list-checkpoints``: the saved checkpoints in the user state directory."""
    saved = checkpoints.saved_checkpoints()
    rows = [
        [str(c.path), f"{c.age_days:.1f}d", c.source or "-", c.destination or "-", c.done, c.current or "-"]
        for c in saved
    ]
    text = (
        format_table(["checkpoint", "age", "source", "destination", "done", "at collection"], rows)
        + f"\n\ncheckpoints not saved for {checkpoints.MAX_AGE_DAYS} days are removed by the next migrate run"
        if rows
        else f"no migrate checkpoints in {checkpoints.checkpoint_dir()}"
    )
    data = {
        "directory": str(checkpoints.checkpoint_dir()),
        "max_age_days": checkpoints.MAX_AGE_DAYS,
        "checkpoints": [c.as_dict() for c in saved],
    }
    return Result(data, text)


def forget_checkpoints(
    source: str | None,
    destination: str | None,
    *,
    collections: Sequence[str] | None = None,
    to_server: str | None = None,
    checkpoint_path: Path | None = None,
) -> Result:
    """``migrate --forget-checkpoints [SRC DST]``: remove one migration's checkpoint, or all of them."""
    if checkpoint_path is not None:
        paths = [checkpoint_path]
    elif source is not None and destination is not None:
        paths = [default_checkpoint(source, _with_server(destination, to_server), collections)]
    else:
        paths = [c.path for c in checkpoints.saved_checkpoints()]
    removed = checkpoints.forget(paths)
    what = "checkpoint" if len(removed) == 1 else "checkpoints"
    text = f"removed {len(removed)} {what}" + "".join(f"\n  {p}" for p in removed)
    if not removed and source is not None:
        text = "no checkpoint saved for this migration; nothing removed"
    return Result({"removed": [str(p) for p in removed]}, text)


def migration_identity(source: str, destination: str, collections: Sequence[str] | None) -> str:
    """A stable name for one migration; secrets are redacted before hashing."""
    text = "\n".join([safe_url(source), safe_url(destination), *sorted(collections or ())])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def open_source(
    url: str,
    *,
    from_py_key_value: bool = False,
    fernet_key: str | None = None,
    on_secret: Callable[[str], None] | None = None,
) -> Source:
    """A ``Source`` for ``url``: a py-key-value store (``kv+...``), FastMCP's OAuth proxy storage,
    or any ``open_store`` URL."""
    if from_py_key_value and not is_kv_url(url):
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise UsageError(f"{safe_url(url)} is not a URL; e.g. --from-py-key-value disk:///path/to/dir")
        url = f"kv+{scheme}://{rest}"
    if is_kv_url(url):
        return open_kv_source(url, fernet_key=fernet_key, on_secret=on_secret)
    if fernet_key:
        raise UsageError(
            "--fernet-key-env applies to py-key-value sources only (kv+...:// or --from-py-key-value)"
        )
    # The source is only read: a mistyped path must fail, not become a new, empty store.
    return StoreSource(open_cli_store(url, read_only=True), safe_url(url))


async def run_migrate(
    console: Console,
    source_url: str,
    destination_url: str,
    *,
    collections: Sequence[str] | None = None,
    from_py_key_value: bool = False,
    fernet_key: str | None = None,
    overwrite: bool = False,
    dry_run: bool = False,
    batch_size: int = 200,
    checkpoint_path: Path | None = None,
    restart: bool = False,
    to_server: str | None = None,
) -> Result:
    """Copy ``source_url`` into ``destination_url``; see the module docstring.

    With ``to_server``, the destination is the layout ``fastmcp_sessions.fastmcp.server_storage``
    gives server ``to_server`` on ``destination_url``: OAuth proxy collections go to its
    encrypted OAuth storage, session state, events and the response cache to their parts.
    """
    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if source_url.strip() == destination_url.strip():
        raise UsageError("the source and the destination are the same store; give two different URLs")
    console.redactor.add_url(source_url)
    console.redactor.add_url(destination_url)
    source = await open_source(
        source_url, from_py_key_value=from_py_key_value, fernet_key=fernet_key, on_secret=console.redactor.add
    )
    try:
        route, close_destination = _destination(destination_url, to_server)
    except BaseException:
        await source.close()
        raise
    destination_url = _with_server(destination_url, to_server)
    try:
        return await _migrate(
            console,
            source,
            route,
            source_url=source_url,
            destination_url=destination_url,
            collections=collections,
            overwrite=overwrite,
            dry_run=dry_run,
            batch_size=batch_size,
            checkpoint_path=checkpoint_path,
            restart=restart,
        )
    finally:
        await asyncio.gather(source.close(), close_destination(), return_exceptions=True)


def _destination(url: str, to_server: str | None) -> tuple[Route, Callable[[], Any]]:
    """The route from collection to destination store, and how to close the destination."""
    if to_server is None:
        store = open_cli_store(url)
        return (lambda collection: store), store.close
    from fastmcp_sessions.fastmcp import server_storage
    from fastmcp_sessions.sessions.errors import SessionError

    base = open_cli_store(url)
    try:
        storage = server_storage(server_name=to_server, store=base)
    except SessionError as exc:
        raise UsageError(f"--to-server: {exc}") from exc

    def route(collection: str) -> Store:
        part = storage.store_for(collection)
        if part is None:
            raise UsageError(
                f"--to-server: collection {collection!r} is not one a FastMCP server writes; choose the "
                "collections with --collection, or migrate without --to-server"
            )
        return part

    return route, base.close


async def _migrate(
    console: Console,
    source: Source,
    route: Route,
    *,
    source_url: str,
    destination_url: str,
    collections: Sequence[str] | None,
    overwrite: bool,
    dry_run: bool,
    batch_size: int,
    checkpoint_path: Path | None,
    restart: bool,
) -> Result:
    chosen_by = "--collection"
    if collections:
        names = list(dict.fromkeys(collections))
    elif source.lists_collections:
        names = await _source_call(source, source.collections(), "list its collections")
        chosen_by = "listed by the source"
    else:
        names = list(FASTMCP_COLLECTIONS)
        chosen_by = "FastMCP's known collections (the source cannot list its own; pass --collection)"

    for name in names:
        route(name)  # an unroutable collection is a usage error before anything is copied
    plan: list[tuple[str, list[str]]] = []
    for name in names:
        keys = sorted(await _source_call(source, source.keys(name), f"list the keys of {name!r}"))
        if keys or collections:
            plan.append((name, keys))

    identity = migration_identity(source_url, destination_url, collections)
    if not dry_run:
        expired = checkpoints.expire()
        if expired:
            console.note(
                f"removed {len(expired)} checkpoint file(s) of migrations abandoned more than "
                f"{checkpoints.MAX_AGE_DAYS} days ago"
            )
    if checkpoint_path is None and not dry_run:
        checkpoint_path = default_checkpoint(source_url, destination_url, collections)
    checkpoint = Checkpoint.load(None if restart or dry_run else checkpoint_path, identity)
    checkpoint.path = None if dry_run else checkpoint_path
    checkpoint.source, checkpoint.destination = safe_url(source_url), safe_url(destination_url)
    if checkpoint.resumed:
        console.note(f"resuming the interrupted migration from its checkpoint ({checkpoint_path})")

    counts: dict[str, Counts] = {c: Counts(**checkpoint.counts.get(c, {})) for c, _ in plan}
    failures: list[Failure] = []
    total = sum(len(keys) for _, keys in plan)
    progress = console.progress("migrate", total)
    try:
        for collection, keys in plan:
            if collection in checkpoint.done:
                progress.advance(len(keys), collection)
                continue
            start = checkpoint.resume_index(collection, keys)
            if start == 0:
                counts[collection] = Counts()
            counts[collection].listed = len(keys)
            progress.advance(start, collection)
            for begin in range(start, len(keys), batch_size):
                batch = keys[begin : begin + batch_size]
                await copy_batch(
                    source,
                    route(collection),
                    collection,
                    batch,
                    counts[collection],
                    failures,
                    overwrite,
                    dry_run,
                )
                progress.advance(len(batch), collection)
                checkpoint.save(collection, begin + len(batch), key_fingerprint(batch[-1]), counts)
            checkpoint.done.append(collection)
            checkpoint.save(None, 0, None, counts)
    except (KeyboardInterrupt, asyncio.CancelledError):
        progress.finish()
        where = f" (checkpoint {checkpoint.path})" if checkpoint.path else ""
        raise CommandInterrupted(
            f"interrupted after {progress.done} of {total} entries; run the same command again to resume"
            f"{where}: finished batches are not copied twice"
        ) from None
    progress.finish()

    verification = {"source": 0, "destination": 0, "missing": 0}
    if not dry_run:
        verification = await verify(console, source, route, plan)
    checkpoint.remove()
    return _report(
        source.label,
        safe_url(destination_url),
        chosen_by,
        plan,
        counts,
        failures,
        source.problems,
        verification,
        dry_run=dry_run,
        overwrite=overwrite,
    )


async def _source_call(source: Source, call: Any, what: str) -> Any:
    try:
        return await call
    except CliError:
        raise
    except BaseKeyValueError as exc:
        raise SourceError(f"cannot {what} in {source.label}: {exc}") from exc


async def copy_batch(
    source: Source,
    destination: Store,
    collection: str,
    keys: list[str],
    counts: Counts,
    failures: list[Failure],
    overwrite: bool,
    dry_run: bool,
) -> None:
    """Copy one batch of ``keys``: read both sides, then write what is missing (or different)."""
    rows = await _read_source(source, collection, keys)
    read_at = time.monotonic()
    try:
        existing = await destination.ttl_many(keys, collection=collection)
    except BaseKeyValueError as exc:
        if not _is_name_error(exc):
            raise
        existing = []
        for key in keys:
            try:
                existing.append(await destination.ttl(key, collection=collection))
            except BaseKeyValueError:
                existing.append((None, None))

    async def one(key: str, row: ReadResult, there: ReadResult) -> None:
        value, ttl = row
        if ttl is not None:
            ttl -= time.monotonic() - read_at  # the time spent since the read counts against it
        if value is None or (ttl is not None and ttl < MIN_TTL):
            counts.expired += 1
            return
        current = there[0]
        if current is not None and current == value:
            counts.present += 1
            return
        if current is not None and not overwrite:
            counts.kept += 1
            return
        if dry_run:
            counts.copied += current is None
            counts.overwritten += current is not None
            return
        try:
            if current is None:
                if await destination.put_if_absent(key, value, collection=collection, ttl=ttl):
                    counts.copied += 1
                else:
                    counts.kept += 1  # written concurrently on the destination: that write wins
            else:
                await destination.put(key, value, collection=collection, ttl=ttl)
                counts.overwritten += 1
        except BaseKeyValueError as exc:
            if not _is_entry_error(exc):
                raise
            counts.failed += 1
            failures.append(Failure(collection, key, f"{type(exc).__name__}: {exc}"))

    await asyncio.gather(*(one(k, r, t) for k, r, t in zip(keys, rows, existing, strict=True)))


async def _read_source(source: Source, collection: str, keys: list[str]) -> list[ReadResult]:
    try:
        return await source.read(collection, keys)
    except BaseKeyValueError as exc:
        from key_value.aio.errors import DecryptionError

        if isinstance(exc, DecryptionError):
            raise SourceError(
                f"cannot decrypt the values of {source.label} (collection {collection!r}): the key given "
                "for the source is not the one it was written with; check key_env / jwt_signing_key_env"
            ) from exc
        raise


def _is_name_error(exc: BaseException) -> bool:
    from fastmcp_sessions.errors import InvalidKeyError

    return isinstance(exc, InvalidKeyError)


def _is_entry_error(exc: BaseException) -> bool:
    """Errors about one entry (a name or value the destination cannot hold), not about the store."""
    from fastmcp_sessions.errors import (
        InvalidKeyError,
        InvalidTTLError,
        SerializationError,
        ValueTooLargeError,
    )

    return isinstance(exc, InvalidKeyError | InvalidTTLError | SerializationError | ValueTooLargeError)


async def verify(
    console: Console, source: Source, route: Route, plan: list[tuple[str, list[str]]]
) -> dict[str, int]:
    """The count check: every key the source listed and still holds must be in the destination."""
    expected = found = 0
    missing_total = 0
    for collection, keys in plan:
        try:
            there = set(await route(collection).keys(collection))
        except BaseKeyValueError:
            there = set()
        absent = [k for k in keys if k not in there]
        still_live = 0
        for begin in range(0, len(absent), 200):
            chunk = absent[begin : begin + 200]
            rows = await source.read(collection, chunk)
            still_live += sum(1 for value, ttl in rows if value is not None and (ttl is None or ttl >= 1.0))
        gone = len(absent) - still_live
        expected += len(keys) - gone
        found += len(keys) - len(absent)
        missing_total += still_live
    return {"source": expected, "destination": found, "missing": missing_total}


def _report(
    source_label: str,
    destination_label: str,
    chosen_by: str,
    plan: list[tuple[str, list[str]]],
    counts: dict[str, Counts],
    failures: list[Failure],
    problems: list[str],
    verification: dict[str, int],
    *,
    dry_run: bool,
    overwrite: bool,
) -> Result:
    total = Counts()
    rows = []
    for collection, _ in plan:
        c = counts[collection]
        total.add(c)
        rows.append([collection, c.listed, c.copied, c.present, c.kept, c.overwritten, c.expired, c.failed])
    rows.append(
        [
            "(total)",
            total.listed,
            total.copied,
            total.present,
            total.kept,
            total.overwritten,
            total.expired,
            total.failed,
        ]
    )
    ok = not failures and not problems and verification["missing"] == 0
    data: dict[str, Any] = {
        "ok": ok,
        "dry_run": dry_run,
        "source": source_label,
        "destination": destination_label,
        "collections_from": chosen_by,
        "collections": {c: asdict(counts[c]) for c, _ in plan},
        "total": asdict(total),
        "count_check": verification,
        "failures": [
            {"collection": f.collection, "key": key_fingerprint(f.key), "error": f.error} for f in failures
        ],
        "problems": problems,
    }
    verb = "would copy" if dry_run else "migrated"
    lines = [
        f"{verb}: {source_label} -> {destination_label}",
        f"collections: {len(plan)} ({chosen_by})",
        "",
        format_table(
            ["collection", "entries", "copied", "already there", "kept", "overwritten", "expired", "failed"],
            rows,
        ),
        "",
    ]
    if total.kept and not overwrite:
        lines.append(
            f"{total.kept} entries differ in the destination and were kept as they are; "
            "pass --overwrite to replace them with the source's"
        )
    for failure in failures[:10]:
        lines.append(f"failed: {failure.collection!r} key {key_fingerprint(failure.key)}: {failure.error}")
    if len(failures) > 10:
        lines.append(f"... and {len(failures) - 10} more failures (see --json)")
    for problem in problems[:10]:
        lines.append(f"not copied: {problem}")
    if dry_run:
        lines.append("dry run: nothing was written")
    elif verification["missing"]:
        lines.append(
            f"count check FAILED: the source holds {verification['source']} of these entries, the "
            f"destination {verification['destination']}; {verification['missing']} are missing. Run the same "
            "command again "
            "to copy them (entries written to the source during the copy are picked up then)"
        )
    else:
        lines.append(
            f"count check: the source holds {verification['source']} of these entries and the destination "
            f"holds all of them ({verification['destination']})"
        )
    text = "\n".join(lines)
    error = None
    if not ok and not dry_run:
        error = (
            f"migration incomplete: {total.failed + len(problems)} entries could not be copied and "
            f"{verification['missing']} are missing from the destination; fix what the report says, then "
            "run the same command again (it is safe: copied entries are not copied twice)"
        )
    return Result(data, text, exit_code=0 if ok or dry_run else 1, error=error)
