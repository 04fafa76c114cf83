"""``fastmcp-sessions doctor``: which store is selected and why, whether it answers, and what is unsafe.

The doctor only reads: it never writes an entry, never creates the database or a key
file (a store that does not exist yet is reported as such), and prints key
fingerprints, never keys.
"""

from __future__ import annotations

import ipaddress
import os
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from key_value.aio.errors import BaseKeyValueError, DecryptionError

from fastmcp_sessions import telemetry
from fastmcp_sessions.buses.selection import shares_notifications
from fastmcp_sessions.cli._common import (
    CliError,
    Console,
    FileInfo,
    Result,
    UsageError,
    file_info,
    format_table,
    safe_url,
)
from fastmcp_sessions.cli._stores import chosen_url, close_quietly, open_cli_store
from fastmcp_sessions.encryption import (
    KEYS_ENV,
    Keyring,
    default_key_file,
    missing_key_message,
    read_key_file,
)
from fastmcp_sessions.errors import KeyMismatchError, MissingKeyError
from fastmcp_sessions.stores._url import parse_bool
from fastmcp_sessions.stores.base import Store
from fastmcp_sessions.stores.schemes import app_name_from_env, selected_url, store_class

PROBE_COLLECTION = "fastmcp-sessions-doctor"
PROBES = 5

Level = str  # "ok" | "info" | "warning" | "error"


@dataclass
class Report:
    """Everything the doctor found."""

    url: str | None
    chosen_by: str
    backend: str = "?"
    reachable: bool | None = None
    latency_ms: float | None = None
    encryption: str = "off"
    key_source: str | None = None
    fingerprints: list[str] = field(default_factory=list)
    files: list[FileInfo] = field(default_factory=list)
    findings: list[tuple[Level, str]] = field(default_factory=list)
    key_missing: bool = False

    def add(self, level: Level, message: str) -> None:
        """Record a finding."""
        self.findings.append((level, message))

    @property
    def errors(self) -> int:
        """How many findings are errors."""
        return sum(1 for level, _ in self.findings if level == "error")

    @property
    def warnings(self) -> int:
        """How many findings are warnings."""
        return sum(1 for level, _ in self.findings if level == "warning")


async def run_doctor(console: Console, url_arg: str | None, *, strict: bool = False) -> Result:
    """Diagnose the store ``url_arg`` (or the one the environment selects)."""
    url, reason = chosen_url(url_arg)
    console.redactor.add_url(url)
    report = Report(url=url, chosen_by=reason)
    scheme = urlsplit(url).scheme.lower() if url else "disk"
    if url is not None and not scheme:
        raise UsageError(
            f"{safe_url(url)} is not a store URL; e.g. disk:///path/store.sqlite3 or redis://host:6379/0"
        )
    try:
        cls = store_class(scheme)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    report.backend = cls.__name__
    if not shares_notifications(cls):
        report.add(
            "info",
            "change notifications stay within each process with this store; pass "
            "bus_url='redis://...' or 'postgresql://...' to server_storage to reach every replica",
        )
    if cls.handles_encryption:
        await _diagnose_disk(report, url)
    else:
        await _diagnose_server(report, url or "", scheme)
    if not report.findings or all(level in ("ok", "info") for level, _ in report.findings):
        report.add("ok", "no unsafe settings found")
    return _result(report, strict=strict)


# -- disk --------------------------------------------------------------------------------


async def _diagnose_disk(report: Report, url: str | None) -> None:
    from fastmcp_sessions.stores.disk import marker_path, resolve_path

    options = _query(url)
    path_text = unquote(urlsplit(url).path) if url else ""
    app_name = options.get("app_name") or app_name_from_env()
    encrypted = _bool_option(options, "encryption", True)
    db = resolve_path(path_text or None, app_name)
    report.encryption = "on (Fernet, disk store)" if encrypted else "off"

    report.files.append(file_info("data directory", db.parent))
    report.files.append(file_info("database", db))
    for suffix in ("-wal", "-shm"):
        extra = db.with_name(db.name + suffix)
        if extra.exists():
            report.files.append(file_info(f"database {suffix[1:].upper()}", extra))
    keys_ok = True
    if encrypted:
        key_file = _key_file(options, app_name)
        keys_ok = _diagnose_keys(report, key_file, data_exists=db.exists())
    else:
        report.add(
            "warning",
            f"plaintext on disk: {db} stores values unencrypted (encryption=false); move them into an "
            "encrypted "
            f"store with: fastmcp-sessions migrate 'disk://{db}?encryption=false' disk:///NEW/PATH.sqlite3",
        )
    _check_modes(report)

    if not db.exists():
        report.reachable = None
        parent = _nearest_existing(db.parent)
        marker = marker_path(db)
        if marker.exists():
            report.reachable = False
            report.add(
                "error",
                f"the database {db} is missing, but {marker} shows a store was created there: restore it "
                f"from your backup (docs/disk.md#backup-and-restore); to start a new, empty store, delete "
                f"{marker}",
            )
        elif os.access(parent, os.W_OK | os.X_OK):
            report.add(
                "info", f"the database {db} does not exist yet; it is created (mode 0600) on first use"
            )
        else:
            report.add(
                "error",
                f"the database {db} does not exist and {parent} is not writable: create the directory or "
                "choose "
                "another path (disk:///path/store.sqlite3)",
            )
        return
    if not keys_ok:
        report.key_missing = True  # the database is there; without a key it is not opened at all
        return
    await _probe(report, url)


def _diagnose_keys(report: Report, key_file: Path, *, data_exists: bool) -> bool:
    """Report where the keys come from; False when the data exists but no key can open it."""
    env = os.environ.get(KEYS_ENV, "").strip()
    if env:
        report.key_source = f"env {KEYS_ENV}"
        try:
            report.fingerprints = list(Keyring(env.split(","), source=report.key_source).fingerprints)
        except BaseKeyValueError as exc:
            report.add("error", str(exc))
            return False
        if key_file.exists():
            report.files.append(file_info("key file (unused: env wins)", key_file))
        return True
    report.key_source = f"key file {key_file}"
    report.files.append(file_info("key file", key_file))
    report.files.append(file_info("key directory", key_file.parent))
    if not key_file.exists():
        if data_exists:
            report.add(
                "error",
                f"the data is encrypted but its key file {key_file} is missing: restore it from your backup "
                "or "
                f"set {KEYS_ENV} to the key (newest first); without it the data cannot be read",
            )
            return False
        report.add("info", f"no key yet: {key_file} is created (mode 0600) with a new key on first use")
        return True
    try:
        keys = read_key_file(key_file)
        report.fingerprints = list(Keyring(keys, source=report.key_source).fingerprints)
    except BaseKeyValueError as exc:
        report.add("error", str(exc))
        return False
    return True


def _key_file(options: dict[str, str], app_name: str) -> Path:
    if options.get("key_file"):
        return Path(options["key_file"]).expanduser()
    return default_key_file(app_name)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_modes(report: Report) -> None:
    for info in report.files:
        if info.exists and info.group_or_world_access:
            fix = "700" if info.kind == "dir" else "600"
            report.add(
                "warning",
                f"{info.role} {info.path} is accessible to other users (mode {info.mode}); run: chmod {fix} "
                f"{info.path}",
            )


# -- server backends ---------------------------------------------------------------------


async def _diagnose_server(report: Report, url: str, scheme: str) -> None:
    options = _query(url)
    encrypted = _bool_option(options, "encryption", False)
    report.encryption = "on (Fernet, ?encryption=true)" if encrypted else "off"
    _check_transport(report, url, scheme, options)
    keyring: Keyring | None = None
    if encrypted:
        keyring = _network_keyring(report, url)
    else:
        report.add(
            "warning",
            "values are stored unencrypted on the server (OAuth tokens and session state readable by anyone "
            "with access to it); add ?encryption=true and set FASTMCP_SESSIONS_KEYS to encrypt them",
        )
    _check_modes(report)
    if scheme in ("postgresql", "postgres"):
        if not await _diagnose_postgresql(report, url):
            return
        # No background purge from the doctor: it only reads.
        url = url + ("&" if "?" in url else "?") + "purge_interval=0"
    await _probe(report, url, encryption=False, keyring=keyring)


async def _diagnose_postgresql(report: Report, url: str) -> bool:
    """Report the table's schema version without creating anything; False: do not probe further."""
    from fastmcp_sessions.stores.postgresql import SCHEMA_VERSION, PostgreSQLStore

    store: Store | None = None
    try:
        store = open_cli_store(url, encryption=False)
        if not isinstance(store, PostgreSQLStore):
            return True
        name = f"{store.schema}.{store.table}"
        version = await store.schema_version()
    except CliError as exc:
        report.reachable = False
        report.add("error", exc.message)
        return False
    except BaseKeyValueError as exc:
        report.reachable = False
        report.add("error", f"unreachable: {exc}")
        return False
    finally:
        await close_quietly(store)
    report.reachable = True
    if version is None:
        report.add(
            "info",
            f"table {name} does not exist yet; the store creates it on first use (create_table=true, the "
            "default), or create it as docs/postgresql.md shows",
        )
        return False
    if version < SCHEMA_VERSION:
        report.add(
            "warning",
            f"table {name} has schema version {version}, this fastmcp-sessions needs {SCHEMA_VERSION}: once "
            "every replica runs this version, open the store once with ?migrate=true (or call "
            "PostgreSQLStore.migrate_schema())",
        )
        return False
    if version > SCHEMA_VERSION:
        report.add(
            "error",
            f"table {name} has schema version {version}, newer than this fastmcp-sessions understands "
            f"({SCHEMA_VERSION}); upgrade fastmcp-sessions",
        )
        return False
    report.add("info", f"table {name}, schema version {version} (current)")
    return True


def _network_keyring(report: Report, url: str) -> Keyring | None:
    """The keys of an encrypted store on a server: only ever from the environment (never a key file)."""
    env = os.environ.get(KEYS_ENV, "").strip()
    if not env:
        report.key_missing = True
        report.add("error", f"key missing: {missing_key_message(safe_url(url))}")
        return None
    report.key_source = f"env {KEYS_ENV}"
    try:
        keyring = Keyring(env.split(","), source=report.key_source)
    except BaseKeyValueError as exc:
        report.add("error", str(exc))
        return None
    report.fingerprints = list(keyring.fingerprints)
    return keyring


def _check_transport(report: Report, url: str, scheme: str, options: dict[str, str]) -> None:
    hosts = _hosts(url)
    remote = [h for h in hosts if not _is_loopback(h)]
    if scheme.startswith("redis") or scheme == "unix":
        tls = "rediss" in scheme or _bool_option(options, "ssl", False) or _bool_option(options, "tls", False)
        has_auth = _has_password(url, options)
        if remote and scheme != "unix":
            if not tls:
                report.add(
                    "warning",
                    f"Redis without TLS on a non-loopback host ({', '.join(remote)}): traffic, including "
                    "OAuth "
                    "tokens, crosses the network in clear; use rediss://",
                )
            if not has_auth:
                report.add(
                    "warning",
                    f"Redis without authentication on a non-loopback host ({', '.join(remote)}): anyone who "
                    "can "
                    "reach it can read and change sessions; set a password (redis://user:PASSWORD@host)",
                )
    elif scheme.startswith("mongodb"):
        tls = (
            scheme == "mongodb+srv"
            or _bool_option(options, "tls", False)
            or _bool_option(options, "ssl", False)
        )
        if remote and not tls:
            report.add(
                "warning", f"MongoDB without TLS on a non-loopback host ({', '.join(remote)}); add ?tls=true"
            )
        if remote and not _has_password(url, options):
            report.add(
                "warning",
                f"MongoDB without credentials on a non-loopback host ({', '.join(remote)}); use "
                "mongodb://user:PASSWORD@host",
            )
    elif scheme in ("postgresql", "postgres"):
        hosts = [h for h in [*hosts, *options.get("host", "").split(",")] if h and not h.startswith("/")]
        remote = [h for h in hosts if not _is_loopback(h)]
        sslmode = options.get("sslmode", "prefer").lower()
        if remote and sslmode in ("disable", "allow", "prefer"):
            report.add(
                "warning",
                f"PostgreSQL on a non-loopback host ({', '.join(remote)}) with sslmode={sslmode}: TLS is not "
                "enforced, so traffic may cross the network in clear; use sslmode=verify-full with "
                "sslrootcert=",
            )
        elif remote and sslmode in ("require", "verify-ca"):
            report.add(
                "warning",
                f"sslmode={sslmode} does not check the server's host name: use sslmode=verify-full with "
                "sslrootcert=",
            )
        if remote and not _has_password(url, options) and not options.get("passfile"):
            report.add(
                "info",
                f"no password in the URL for {', '.join(remote)}: it must come from PGPASSWORD, a passfile "
                "or client certificates",
            )
    elif scheme.startswith("dynamodb"):
        endpoint = options.get("endpoint_url", "")
        if endpoint.startswith("http://") and not all(_is_loopback(h) for h in _hosts(endpoint)):
            report.add(
                "warning", f"DynamoDB endpoint {endpoint} is plain HTTP on a non-loopback host; use https://"
            )


def _hosts(url: str) -> list[str]:
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    hosts = []
    for part in netloc.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("["):
            hosts.append(part[1:].partition("]")[0])
        else:
            hosts.append(part.rsplit(":", 1)[0] if part.count(":") == 1 else part)
    return hosts


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _has_password(url: str, options: dict[str, str]) -> bool:
    userinfo = urlsplit(url).netloc.rpartition("@")[0]
    return (":" in userinfo and bool(userinfo.split(":", 1)[1])) or bool(options.get("password"))


# -- the round trip ----------------------------------------------------------------------


async def _probe(
    report: Report, url: str | None, *, encryption: bool | None = None, keyring: Keyring | None = None
) -> None:
    """Open the store, time reads of a key that does not exist, and try to decrypt one existing entry."""
    store: Store | None = None
    try:
        options: dict[str, Any] = {} if encryption is None else {"encryption": encryption}
        store = open_cli_store(url, read_only=True, **options)
        probe_key = f"probe-{uuid.uuid4().hex}"
        timings = []
        for _ in range(PROBES):
            start = time.perf_counter()
            await store.get(probe_key, collection=PROBE_COLLECTION)
            timings.append((time.perf_counter() - start) * 1000)
        report.reachable = True
        report.latency_ms = statistics.median(timings)
        if keyring is not None and await _check_key_record(report, store, keyring):
            await _check_decryption(report, store, keyring)
    except DecryptionError:
        report.reachable = True
        # The store's own message names the key being read: here that is the doctor's probe,
        # which means nothing to the operator, so say what is wrong with the store instead.
        keys = ", ".join(report.fingerprints) or "none"
        source = f", from {report.key_source}" if report.key_source else ""
        report.add(
            "error",
            f"the keys in use ({keys}{source}) cannot decrypt the existing data: it was written with "
            f"another key. Set {KEYS_ENV} to the key the servers use (newest first); nothing was changed",
        )
    except MissingKeyError as exc:
        # Raised before any I/O: the backend was never asked, so it is not "unreachable".
        report.key_missing = True
        report.add("error", f"key missing: {exc}")
    except CliError as exc:
        if isinstance(exc.__cause__, MissingKeyError):
            report.key_missing = True
            report.add("error", f"key missing: {exc.__cause__}")
        else:
            report.reachable = False
            report.add("error", exc.message)
    except BaseKeyValueError as exc:
        report.reachable = False
        report.add("error", f"unreachable: {exc}")
    finally:
        await close_quietly(store)


async def _check_key_record(report: Report, inner: Store, keyring: Keyring) -> bool:
    """Compare the keys in use with the store's key-check record (read only); False on a mismatch."""
    from fastmcp_sessions.stores.encrypted import check_key_record, read_key_check

    record = await read_key_check(inner)
    if record is None:
        report.add(
            "info",
            "no key-check record yet: the first replica that opens the store writes one with its newest key",
        )
        return True
    try:
        listed = check_key_record(record, keyring, safe_url(report.url))
    except KeyMismatchError as exc:
        report.add("error", f"key mismatch: {exc.message}")
        return False
    if len(listed) > 1:
        report.add(
            "info",
            f"a key rotation is under way: the data may be encrypted with {', '.join(listed)}; once every "
            "replica has the new key first, finish it with `fastmcp-sessions rotate-key`",
        )
    elif keyring.fingerprints[0] not in listed:
        report.add(
            "info",
            f"the newest key here ({keyring.fingerprints[0]}) has not encrypted anything in this store yet: "
            "the first replica that opens it with this key starts a rotation",
        )
    return True


async def _check_decryption(report: Report, inner: Store, keyring: Keyring) -> None:
    from fastmcp_sessions.stores.encrypted import KEY_CHECK_COLLECTION, EncryptedStore

    sample = EncryptedStore(inner, keys=keyring, key_check=False)  # the doctor never writes
    for collection in await inner.collections(limit=4):
        if collection in (PROBE_COLLECTION, KEY_CHECK_COLLECTION):
            continue
        for key in await inner.keys(collection, limit=1):
            try:
                await sample.get(key, collection=collection)
            except DecryptionError:
                report.add(
                    "error",
                    f"the keys in use ({', '.join(keyring.fingerprints)}, from {keyring.source}) cannot "
                    f"decrypt the existing data (collection {collection!r}); set {KEYS_ENV} to the key the "
                    "servers use",
                )
            return


# -- helpers -------------------------------------------------------------------------------


def _query(url: str | None) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True)) if url else {}


def _bool_option(options: dict[str, str], name: str, default: bool) -> bool:
    if name not in options:
        return default
    try:
        return parse_bool(options[name])
    except ValueError as exc:
        raise UsageError(f"option {name}: {exc}") from exc


def _describe_telemetry(status: dict[str, Any]) -> str:
    if status["disabled"]:
        return f"off ({telemetry.DISABLE_ENV}=off)"
    env = ", ".join(status["otel_env"]) or "no OTEL_* variables"
    sdk = "SDK installed" if status["sdk_installed"] else "SDK not installed"
    if not status["active"]:
        return f"inactive in this process ({sdk}; {env}; see docs/observability.md)"
    return (
        f"active (traces: {status['tracer_provider'] or 'none'}, "
        f"metrics: {status['meter_provider'] or 'none'}; {env})"
    )


def _result(report: Report, *, strict: bool) -> Result:
    env_url, env_reason = selected_url()
    data = {
        "ok": report.errors == 0 and not (strict and report.warnings),
        "store": safe_url(report.url),
        "chosen_by": report.chosen_by,
        "environment_selects": {"url": safe_url(env_url), "why": env_reason},
        "backend": report.backend,
        "reachable": report.reachable,
        "key_missing": report.key_missing,
        "latency_ms": None if report.latency_ms is None else round(report.latency_ms, 3),
        "encryption": report.encryption,
        "key_source": report.key_source,
        "key_fingerprints": report.fingerprints,
        "files": [f.as_dict() for f in report.files],
        "findings": [{"level": level, "message": message} for level, message in report.findings],
        "telemetry": telemetry.status(),
    }
    if report.key_missing and report.reachable:
        reachable = "yes (but the key is missing, see below)"
    elif report.key_missing:
        reachable = "not checked (the key is missing)"
    elif report.reachable is None:
        reachable = "not checked (nothing to open yet)"
    elif report.reachable and report.latency_ms is not None:
        reachable = f"yes, round trip {report.latency_ms:.2f} ms (median of {PROBES} reads)"
    elif report.reachable:
        reachable = "yes"
    else:
        reachable = "NO"
    lines = [
        f"store        {safe_url(report.url)}",
        f"chosen by    {report.chosen_by}",
    ]
    if report.chosen_by == "--url":
        lines.append(f"environment  would select {safe_url(env_url)} ({env_reason})")
    lines += [
        f"backend      {report.backend}",
        f"reachable    {reachable}",
        f"encryption   {report.encryption}",
        f"telemetry    {_describe_telemetry(telemetry.status())}",
    ]
    if report.key_source:
        prints = ", ".join(report.fingerprints) or "none yet"
        lines.append(f"keys         {report.key_source} ({prints}; newest first)")
    if report.files:
        lines += [
            "",
            format_table(
                ["role", "path", "mode"],
                [[f.role, f.path, f.mode if f.exists else "(missing)"] for f in report.files],
            ),
        ]
    lines.append("")
    for level, message in report.findings:
        lines.append(f"{level:<8} {message}")
    exit_code = 1 if report.errors or (strict and report.warnings) else 0
    error = None
    if report.errors:
        error = f"{report.errors} problem(s) found; see the lines marked 'error' above"
    elif exit_code:
        error = f"{report.warnings} warning(s) with --strict; fix them or drop --strict"
    return Result(data, "\n".join(lines), exit_code=exit_code, error=error)
