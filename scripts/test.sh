#!/usr/bin/env bash
# Every test, from a fresh clone: installs the project and the test servers, checks
# lint and types, then runs the whole suite (the servers are started and stopped
# by the tests themselves, on 127.0.0.1).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh dev
scripts/install-test-servers.sh
echo "[test] ruff"
.venv/bin/ruff check fastmcp_sessions tests benchmarks examples
echo "[test] mypy"
.venv/bin/mypy
echo "[test] pytest"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
