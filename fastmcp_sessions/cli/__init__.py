"""The ``fastmcp-sessions`` command: the operator's side of fastmcp-sessions.

    fastmcp-sessions doctor                      which store, why, reachable?, files, keys, warnings
    fastmcp-sessions migrate SRC_URL DST_URL     copy every collection, TTLs kept; resumable
    fastmcp-sessions migrate --list-checkpoints  unfinished migrations (--forget-checkpoints removes)
    fastmcp-sessions rotate-key                  re-encrypt everything with the newest key
    fastmcp-sessions backup FILE                 consistent copy of a disk store, while in use
    fastmcp-sessions bench                       ops/s of the store vs py-key-value-aio's equivalent
    fastmcp-sessions sessions list [--identity ID | --server NAME]   identities, servers, sessions
    fastmcp-sessions sessions show|rm|purge (--identity ID | --server NAME)
    fastmcp-sessions servers list|add|rm
    fastmcp-sessions tokens list|revoke --identity ID

Every command works on ``--url`` or, without it, on the store ``open_store()`` would
open (env ``FASTMCP_SESSIONS_URL``, else the encrypted disk store). Output is a table
by default and JSON with ``--json``; progress goes to stderr. Secrets (URL passwords,
keys, tokens) are never printed. Errors are one line and a non-zero exit status
(1: failure, 2: bad arguments, 3: conflicts with what the store holds, 130: interrupted);
``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn

from key_value.aio.errors import BaseKeyValueError

from fastmcp_sessions.cli._common import CliError, Console, Result, UsageError
from fastmcp_sessions.cli.bench import MIN_OPS

__all__ = ["build_parser", "main"]

Handler = Callable[[Console, argparse.Namespace], Coroutine[Any, Any, Result]]

PROG = "fastmcp-sessions"


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one ``UsageError`` line, not usage text and ``exit(2)``."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool, url: bool = True) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    if url:
        parser.add_argument(
            "--url",
            default=default,
            help="the store to work on (default: env FASTMCP_SESSIONS_URL, else the encrypted disk store)",
        )
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS if suppress else False, help="print JSON"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="on errors, print the traceback too",
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="no progress or notes on stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = _Parser(
        prog=PROG,
        description="Operate fastmcp-sessions stores: diagnose, migrate, rotate keys, benchmark, manage "
        "sessions.",
        epilog="Exit status: 0 ok, 1 failure, 2 bad arguments, 3 conflicts with what the store holds "
        "(e.g. a server name already taken), 130 interrupted.",
    )
    _global_options(parser, suppress=False)
    common = _Parser(add_help=False)
    _global_options(common, suppress=True)
    # migrate names both stores as SRC_URL and DST_URL: it takes no --url.
    without_url = _Parser(add_help=False)
    _global_options(without_url, suppress=True, url=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    doctor = commands.add_parser(
        "doctor",
        parents=[common],
        help="which store is selected and why, reachability, files, keys, unsafe settings",
        description="Diagnose the store: never writes, never creates files, never prints keys.",
    )
    doctor.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    doctor.set_defaults(handler=_doctor)

    migrate = commands.add_parser(
        "migrate",
        parents=[without_url],
        help="copy every collection from one store to another, keeping TTLs (resumable)",
        description=(
            "Copy every collection of SRC_URL into DST_URL with each entry's remaining TTL. Idempotent and "
            "resumable: run it again after an interruption. SRC_URL may be any store URL, a py-key-value-aio "
            "store (kv+disk:///dir, kv+filetree:///dir, kv+redis://host:6379/0, kv+postgresql://host/db, "
            "with +fernet and ?key_env=VAR for FernetEncryptionWrapper data) or FastMCP's OAuth proxy "
            "default storage "
            "(fastmcp-oauth-proxy://?jwt_signing_key_env=VAR or ?client_secret_env=VAR)."
        ),
    )
    migrate.add_argument("source", metavar="SRC_URL", nargs="?")
    migrate.add_argument("destination", metavar="DST_URL", nargs="?")
    migrate.add_argument(
        "--collection",
        "-c",
        action="append",
        metavar="NAME",
        help="copy only this collection (repeat for several); needed for sources that cannot list "
        "collections, which otherwise read FastMCP's known collection names",
    )
    migrate.add_argument(
        "--from-py-key-value",
        action="store_true",
        help="SRC_URL is a py-key-value-aio store (disk:///dir means its DiskStore, as kv+disk:///dir)",
    )
    migrate.add_argument(
        "--fernet-key-env",
        metavar="VAR",
        help="environment variable holding the Fernet key(s) of a py-key-value FernetEncryptionWrapper "
        "source",
    )
    migrate.add_argument(
        "--overwrite", action="store_true", help="replace destination entries that differ from the source"
    )
    migrate.add_argument("--dry-run", action="store_true", help="count what would be copied; write nothing")
    migrate.add_argument("--batch-size", type=int, default=200, metavar="N", help="entries per batch (200)")
    migrate.add_argument(
        "--checkpoint", type=Path, metavar="FILE", help="where to keep progress (default: the user state dir)"
    )
    migrate.add_argument("--restart", action="store_true", help="ignore a saved checkpoint; start over")
    housekeeping = migrate.add_mutually_exclusive_group()
    housekeeping.add_argument(
        "--list-checkpoints",
        action="store_true",
        help="list the checkpoints of unfinished migrations (no SRC_URL/DST_URL); those not saved for "
        "7 days are removed by the next run",
    )
    housekeeping.add_argument(
        "--forget-checkpoints",
        action="store_true",
        help="remove the checkpoint of the migration SRC_URL DST_URL, or without them every checkpoint",
    )
    migrate.add_argument(
        "--to-server",
        metavar="NAME",
        help="write into the layout fastmcp_sessions.fastmcp.server_storage(DST_URL, server_name=NAME) "
        "uses (OAuth proxy data encrypted with its OAuth keys, state, events, cache)",
    )
    migrate.set_defaults(handler=_migrate)

    rotate = commands.add_parser(
        "rotate-key",
        parents=[common],
        help="re-encrypt every entry with the newest key (safe to interrupt and rerun)",
        description=(
            "Every entry not yet under the newest key is re-encrypted, batch by batch, never overwriting a "
            "concurrent write; so is the OAuth proxy storage of every FastMCP server in the store. Keys "
            "from the key file (a local disk store): run with --new-key, restart the servers, then run "
            "with --drop-old. Keys from the environment: put the new key first "
            "(FASTMCP_SESSIONS_KEYS=new,old; FASTMCP_SESSIONS_OAUTH_KEYS for the OAuth storage), run "
            "this, then drop the old key from the variables."
        ),
    )
    rotate.add_argument("--batch-size", type=int, default=500, metavar="N", help="entries per batch (500)")
    rotate.add_argument(
        "--new-key",
        action="store_true",
        help="keys from the key file: write a new key first into it (the old ones stay), then re-encrypt",
    )
    rotate.add_argument(
        "--drop-old",
        action="store_true",
        help="keys from the key file: once every entry is under the newest key, remove the older keys from "
        "the file (restart the servers first, so none still writes with an old key)",
    )
    rotate.set_defaults(handler=_rotate)

    backup = commands.add_parser(
        "backup",
        parents=[common],
        help="copy a disk store to a new file while it stays in use (SQLite online backup)",
        description=(
            "Write a consistent copy of the disk store to FILE (a new file, mode 0600; a directory gets "
            "store.sqlite3 inside). Other processes keep working meanwhile. An encrypted copy needs the same "
            "key: keep the key file or FASTMCP_SESSIONS_KEYS with it."
        ),
    )
    backup.add_argument("target", metavar="FILE", type=Path)
    backup.set_defaults(handler=_backup)

    bench = commands.add_parser(
        "bench",
        parents=[common],
        help="quick benchmark of the store (put/get/get_many/update) against py-key-value-aio's "
        "equivalent store",
        description="Compares the store with the py-key-value-aio store a user would pick instead for "
        "the same URL (memory://: MemoryStore, disk://: DiskStore in a temporary directory, redis://: "
        "RedisStore on the same server; under FernetEncryptionWrapper when the store is encrypted) and "
        "prints the ratios. Writes only to a fresh collection, removed afterwards.",
    )
    bench.add_argument(
        "--ops", type=int, default=500, metavar="N", help=f"operations per round (500; at least {MIN_OPS})"
    )
    bench.add_argument(
        "--rounds", type=int, default=3, metavar="N", help="rounds; the median is reported (3; at least 1)"
    )
    bench.set_defaults(handler=_bench)

    from fastmcp_sessions.cli import admin

    admin.add_commands(commands, common)
    return parser


async def _doctor(console: Console, args: argparse.Namespace) -> Result:
    from fastmcp_sessions.cli.doctor import run_doctor

    return await run_doctor(console, args.url, strict=args.strict)


async def _migrate(console: Console, args: argparse.Namespace) -> Result:
    from fastmcp_sessions.cli.migrate import forget_checkpoints, list_checkpoints, run_migrate

    if args.url is not None:
        raise UsageError(
            "migrate takes no --url: give the source and the destination as SRC_URL DST_URL "
            "(fastmcp-sessions migrate SRC_URL DST_URL)"
        )
    if args.list_checkpoints:
        if args.source is not None:
            raise UsageError("--list-checkpoints takes no SRC_URL or DST_URL")
        return list_checkpoints()
    if (args.source is None) != (args.destination is None) or (
        args.source is None and not args.forget_checkpoints
    ):
        raise UsageError("migrate needs both SRC_URL and DST_URL (fastmcp-sessions migrate SRC_URL DST_URL)")
    if args.forget_checkpoints:
        return forget_checkpoints(
            args.source,
            args.destination,
            collections=args.collection,
            to_server=args.to_server,
            checkpoint_path=args.checkpoint,
        )

    fernet_key = None
    if args.fernet_key_env:
        fernet_key = os.environ.get(args.fernet_key_env, "").strip()
        if not fernet_key:
            raise UsageError(
                f"--fernet-key-env: environment variable {args.fernet_key_env} is not set or empty"
            )
        for key in fernet_key.split(","):
            console.redactor.add(key.strip())
    return await run_migrate(
        console,
        args.source,
        args.destination,
        collections=args.collection,
        from_py_key_value=args.from_py_key_value,
        fernet_key=fernet_key,
        overwrite=args.overwrite,
        dry_run=args.dry_run,
        batch_size=args.batch_size,
        checkpoint_path=args.checkpoint,
        restart=args.restart,
        to_server=args.to_server,
    )


async def _rotate(console: Console, args: argparse.Namespace) -> Result:
    from fastmcp_sessions.cli.rotate import run_rotate

    return await run_rotate(
        console, args.url, batch_size=args.batch_size, new_key=args.new_key, drop_old=args.drop_old
    )


async def _backup(console: Console, args: argparse.Namespace) -> Result:
    from fastmcp_sessions.cli.backup import run_backup

    return await run_backup(console, args.url, args.target)


async def _bench(console: Console, args: argparse.Namespace) -> Result:
    from fastmcp_sessions.cli.bench import run_bench

    return await run_bench(console, args.url, ops=args.ops, rounds=args.rounds)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fastmcp-sessions`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    console = Console()
    try:
        args = build_parser().parse_args(argv)
    except CliError as exc:
        console.error(exc.message)
        return exc.exit_code
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    console.json = args.json
    console.quiet = args.quiet
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="fastmcp-sessions: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.handler
    try:
        result: Result = asyncio.run(handler(console, args))
    except CliError as exc:
        return _fail(console, args.debug, exc.message, exc.exit_code)
    except KeyboardInterrupt:
        return _fail(console, args.debug, "interrupted; every command can be run again safely", 130)
    except BaseKeyValueError as exc:
        return _fail(console, args.debug, f"{type(exc).__name__}: {exc}", 1)
    except Exception as exc:
        hint = "" if args.debug else "; run again with --debug for the traceback"
        return _fail(console, args.debug, f"unexpected {type(exc).__name__}: {exc}{hint}", 1)
    console.result(result)
    if result.exit_code and result.error:
        console.error(result.error)
    return int(result.exit_code)


def _fail(console: Console, debug: bool, message: str, exit_code: int) -> int:
    """Report a failure: the traceback with ``--debug``, one line on stderr, and with ``--json``
    an ``{"ok": false, "error": ...}`` object on stdout for scripts."""
    _debug_traceback(console, debug)
    console.error(message)
    if console.json:
        console.result(Result({"ok": False, "error": " ".join(message.split()), "exit_code": exit_code}, ""))
    return exit_code


def _debug_traceback(console: Console, debug: bool) -> None:
    if debug:
        console.stderr.write(console.redactor.scrub(traceback.format_exc()))
        console.stderr.flush()
