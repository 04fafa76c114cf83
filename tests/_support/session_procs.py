"""Start worker processes that begin their work at the same moment, and collect their results."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests._support import WORKERS
from tests._support.backends import Backend

WORKER = WORKERS / "worker.py"
REFRESH_WORKER = WORKERS / "refresh_worker.py"


async def run_together(
    backend: Backend, argvs: Sequence[Sequence[str]], *, script: Path = WORKER, timeout: float = 120
) -> list[Any]:
    """Run ``script <argv>`` once per argv; release them together once all print ``ready``.

    Returns each process's result: the JSON on its last line of output.
    """
    env = {**os.environ, **backend.env}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            *argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for argv in argvs
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            line = await asyncio.wait_for(p.stdout.readline(), timeout)
            if line.strip() != b"ready":
                _, err = await p.communicate()
                raise AssertionError(f"worker failed before starting: {line!r}\n{err.decode()}")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            await p.stdin.drain()
        outputs = [await asyncio.wait_for(p.communicate(), timeout) for p in procs]
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    results = []
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    return results


async def run_once(backend: Backend, argv: Sequence[str], *, timeout: float = 60) -> tuple[str, str]:
    """Run the worker once (no start signal); return its stdout and stderr."""
    env = {**os.environ, **backend.env}
    p = await asyncio.create_subprocess_exec(
        sys.executable, str(WORKER), *argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(p.communicate(), timeout)
    assert p.returncode == 0, err.decode()
    return out.decode(), err.decode()
