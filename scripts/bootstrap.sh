#!/usr/bin/env bash
# Creates .venv and installs the project with its dev extras. Re-runs are quick:
# it reinstalls only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
EXTRAS="${1:-dev}"
if [ ! -x .venv/bin/python ]; then
    echo "[bootstrap] creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
STAMP=".venv/.installed-$EXTRAS"
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "[bootstrap] installing fastmcp-sessions[$EXTRAS] into .venv"
    .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/python -m pip install --quiet -e ".[$EXTRAS]" 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/python -c "import fastmcp_sessions" # fail here, not later, if the install did not work
    echo "$WANT" > "$STAMP"
fi
