"""``python -m fastmcp_sessions.cli``: the ``fastmcp-sessions`` command."""

import sys

from fastmcp_sessions.cli import main

if __name__ == "__main__":
    sys.exit(main())
