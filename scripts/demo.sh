#!/usr/bin/env bash
# The main job: a FastMCP server on the encrypted disk store, restarted, state intact.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
exec "$ROOT/.venv/bin/python" "$ROOT/examples/demo.py"
