#!/usr/bin/env bash
# Creates .venv with exactly what uv.lock pins: the project, every extra and the dev group.
#
#   scripts/bootstrap.sh           the locked environment in .venv (what the tests use)
#   scripts/bootstrap.sh lowest    the lowest versions pyproject.toml allows, in .venv-lowest,
#                                  from requirements/lowest.txt
#
# uv itself is pinned (UV_VERSION below) and installed from PyPI with pip into .cache/uv
# when missing. Refresh the locks with scripts/lock.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
UV_VERSION="0.13.9"
UV_HOME="$ROOT/.cache/uv-$UV_VERSION"
UV="$UV_HOME/bin/uv"
if [ ! -x "$UV" ]; then
    echo "[bootstrap] installing uv $UV_VERSION into ${UV_HOME#"$ROOT"/}"
    rm -rf "$UV_HOME"
    "$PYTHON" -m venv "$UV_HOME"
    "$UV_HOME/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" 2>&1 |
        grep -v '^WARNING: Location' || true
    [ -x "$UV" ] || { echo "[bootstrap] ERROR: could not install uv $UV_VERSION" >&2; exit 1; }
fi
PY="$("$PYTHON" -c 'import sys; print(sys.executable)')"
export UV_PYTHON_DOWNLOADS=never
case "${1:-locked}" in
    locked)
        # Without hiredis, so this stage tests the pure-Python reply reader; the floors stage has it.
        "$UV" sync --locked --all-extras --no-extra hiredis --quiet --python "$PY"  # fails if uv.lock is out of step
        .venv/bin/python -c "import fastmcp_sessions" # fail here, not later
        ;;
    lowest)
        [ -x .venv-lowest/bin/python ] || "$UV" venv --quiet --python "$PY" .venv-lowest
        # --python names the venv: uv pip must never touch the interpreter it was made from
        "$UV" pip sync --quiet --python .venv-lowest/bin/python requirements/lowest.txt
        "$UV" pip install --quiet --python .venv-lowest/bin/python --no-deps -e .
        .venv-lowest/bin/python -c "import fastmcp_sessions"
        ;;
    *)
        echo "usage: scripts/bootstrap.sh [locked|lowest]" >&2
        exit 2
        ;;
esac
