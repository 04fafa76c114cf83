"""Another OS process that holds a SQLite database's write lock, again and again.

    python -m benchmarks._lock_holder DB_FILE HOLD_SECONDS GAP_SECONDS TOTAL_SECONDS

Takes ``BEGIN IMMEDIATE`` on ``DB_FILE``, sleeps ``HOLD_SECONDS`` holding it, commits,
waits ``GAP_SECONDS``, and repeats for ``TOTAL_SECONDS``. Prints ``ready`` once it first
holds the lock, then ``held N`` at the end (how many times it held it). Used by the stall
benchmark and by the test that the loop never stalls while another process writes.
"""

from __future__ import annotations

import sqlite3
import sys
import time


def hold(path: str, hold_seconds: float, gap_seconds: float, total_seconds: float) -> int:
    """Hold the write lock of ``path`` repeatedly; return how many times it was held."""
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    end, held = time.monotonic() + total_seconds, 0
    while time.monotonic() < end:
        conn.execute("BEGIN IMMEDIATE")
        if held == 0:
            print("ready", flush=True)
        held += 1
        time.sleep(hold_seconds)
        conn.execute("COMMIT")
        time.sleep(gap_seconds)
    conn.close()
    return held


if __name__ == "__main__":
    count = hold(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
    print(f"held {count}", flush=True)
