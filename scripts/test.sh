#!/usr/bin/env bash
# Every test, from a fresh clone, in two stages:
#   1. the locked environment (uv.lock): ruff, mypy, then the whole pytest suite;
#   2. the lowest versions pyproject.toml allows (requirements/lowest.txt): the store
#      contract on memory, disk, Redis, Redis Cluster, PostgreSQL, MongoDB and DynamoDB
#      stand-ins,
#      the FastMCP slot tests, and the seam tests (redis-py, MCP SDK, FastMCP).
# The servers are started and stopped by the tests themselves, on 127.0.0.1.
# Arguments go to the first stage's pytest; FASTMCP_SESSIONS_SKIP_LOWEST=1 skips stage 2.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh locked
scripts/install-test-servers.sh
echo "[test] ruff"
.venv/bin/ruff check fastmcp_sessions tests benchmarks examples
.venv/bin/ruff format --check fastmcp_sessions tests benchmarks examples
echo "[test] mypy"
.venv/bin/mypy
echo "[test] pytest (locked versions)"
# Bounded, so a hang fails the run instead of eating the CI budget. Two worker processes
# (pytest-xdist), a test file per worker at a time: most tests wait on servers and
# processes, so two run in about the time of one; each worker starts its own servers.
timeout --signal=TERM --kill-after=30 3000 .venv/bin/python -m pytest -q -p no:cacheprovider \
    -n "${FASTMCP_SESSIONS_TEST_WORKERS:-2}" --dist loadfile "$@"
if [ "${FASTMCP_SESSIONS_SKIP_LOWEST:-0}" = 1 ]; then
    exit 0
fi
scripts/bootstrap.sh lowest
echo "[test] pytest (lowest versions: $(.venv-lowest/bin/python -c '
import importlib.metadata as m
print(", ".join(f"{n} {m.version(n)}" for n in ("fastmcp", "mcp", "py-key-value-aio", "redis", "pymongo", "aioboto3", "asyncpg", "pydantic", "cryptography")))'))"
FASTMCP_SESSIONS_TEST_BACKENDS=memory,memory+encrypted,disk,disk+inline,disk+plain,redis,redis-cluster,mongodb-nx,dynamodb-moto,postgresql \
    exec timeout --signal=TERM --kill-after=30 900 .venv-lowest/bin/python -m pytest -q -p no:cacheprovider \
    tests/conformance tests/fastmcp/test_fastmcp_slots.py tests/stores/test_open_store.py tests/stores/test_redis_seam.py \
    tests/sessions/test_mcp_seam.py tests/fastmcp/test_fastmcp_seam.py
