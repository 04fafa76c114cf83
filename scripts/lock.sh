#!/usr/bin/env bash
# Refreshes both locks to today's versions: uv.lock (the newest that pyproject.toml allows)
# and requirements/lowest.txt (each direct dependency at its floor). Run the tests after.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh >/dev/null 2>&1 || true # makes sure the pinned uv is there
UV="$(ls -d "$ROOT"/.cache/uv-*/bin/uv | tail -n 1)"
"$UV" lock --upgrade
"$UV" pip compile pyproject.toml --all-extras --group dev --resolution lowest-direct \
    --python-version 3.11 --quiet --no-header --output-file requirements/lowest.txt
echo "[lock] uv.lock and requirements/lowest.txt refreshed; now run ./scripts/test.sh"
