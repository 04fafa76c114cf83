"""Side-by-side benchmark harness: every contender runs in the same process and run.

Absolute ops/s drift between machines and minutes; ratios between contenders
measured back to back do not, so every report leads with ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fastmcp_sessions._timing import Op, measure

RESULTS_DIR = Path(__file__).parent / "results"

__all__ = ["Op", "Report", "Result", "measure"]


@dataclass
class Result:
    group: str
    contender: str
    ops_per_sec: float
    ops: int
    rounds: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Report:
    """Collects results by group and prints ratios against a baseline contender per group."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.results: list[Result] = []

    async def run(
        self, group: str, contender: str, op: Op, ops: int, *, rounds: int = 5, **extra: Any
    ) -> Result:
        ops_per_sec, per_round = await measure(op, ops, rounds=rounds)
        result = Result(group, contender, ops_per_sec, ops, per_round, dict(extra))
        self.results.append(result)
        print(f"  {group:<28} {contender:<44} {ops_per_sec:>12,.0f} ops/s", file=sys.stderr)
        return result

    def ratio(self, group: str, contender: str, baseline: str) -> float:
        by = {r.contender: r.ops_per_sec for r in self.results if r.group == group}
        return by[contender] / by[baseline]

    def print_table(self, ratios: list[tuple[str, str, str]]) -> None:
        """Print every result, then each ``(group, contender, baseline)`` ratio."""
        print(f"\n== {self.name} ==")
        print(f"{'group':<28} {'contender':<44} {'ops/s':>12}")
        for r in self.results:
            print(f"{r.group:<28} {r.contender:<44} {r.ops_per_sec:>12,.0f}")
        print("\nratios (higher is better for the first):")
        for group, contender, baseline in ratios:
            print(f"  {group:<28} {contender} / {baseline} = {self.ratio(group, contender, baseline):.2f}x")

    def save(self, ratios: list[tuple[str, str, str]], path: Path | None = None) -> Path:
        """Write results and ratios as JSON (``benchmarks/results/<name>.json`` by default)."""
        path = path or RESULTS_DIR / f"{self.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "name": self.name,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "results": [asdict(r) for r in self.results],
            "ratios": [
                {"group": g, "contender": c, "baseline": b, "ratio": round(self.ratio(g, c, b), 3)}
                for g, c, b in ratios
            ],
        }
        path.write_text(json.dumps(payload, indent=2))
        return path


def parse_args(description: str, default_ops: int = 2000) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--ops", type=int, default=default_ops, help="operations per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per contender (median is reported)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the JSON report")
    return parser.parse_args()


def main(
    coro: Callable[[argparse.Namespace], Awaitable[None]], description: str, default_ops: int = 2000
) -> None:
    args = parse_args(description, default_ops)
    asyncio.run(coro(args))


class Group:
    """Runs the same operation on several stores, interleaved in short slices so that load
    from anything else on the machine hits every contender alike.

    Each round runs ``ops`` operations of every contender, in slices of at most 50 taking
    turns; only the operation itself is timed (``prepare`` runs untimed before each one). A
    contender's result is its median round. A contender whose operation fails is recorded
    as failed (0 ops/s, the error in ``extra``) and left out of the ratios.
    """

    def __init__(self, report: Report, prefix: str, ops: int, rounds: int, calls: Callable[[], int]) -> None:
        self.report, self.prefix, self.ops, self.rounds, self.calls = report, prefix, ops, rounds, calls
        self.stores: list[tuple[str, Any]] = []
        self.groups: list[str] = []

    def contender(self, name: str, store: Any) -> None:
        self.stores.append((name, store))

    async def run(
        self,
        name: str,
        make_op: Callable[[Any], Op],
        ops: int | None = None,
        *,
        prepare: Callable[[Any], Op] | None = None,
    ) -> None:
        group, ops = self.prefix + name, ops or self.ops
        self.groups.append(group)
        live: list[tuple[str, Op, Op | None, dict[str, Any]]] = []
        for contender, store in self.stores:
            op, before = make_op(store), prepare(store) if prepare else None
            extra: dict[str, Any] = {}
            try:
                for i in range(max(ops // 10, 2)):  # connect and warm up
                    if before:
                        await before(i)
                    await op(i)
                if before:
                    await before(0)
                start = self.calls()
                await op(0)
                extra["calls"] = self.calls() - start
            except Exception as exc:  # recorded, not hidden
                extra["failed"] = f"{type(exc).__name__}: {exc}"[:300]
                self.report.results.append(Result(group, contender, 0.0, ops, [], extra))
                print(f"  {group:<32} {contender:<40} FAILED {extra['failed'][:80]}", file=sys.stderr)
                continue
            live.append((contender, op, before, extra))
        per_round: dict[str, list[float]] = {c: [] for c, *_ in live}
        step = min(50, ops)
        for _ in range(self.rounds):
            elapsed = dict.fromkeys(per_round, 0.0)
            for first in range(0, ops, step):
                for contender, op, before, _ in live:
                    for i in range(first, min(first + step, ops)):
                        if before:
                            await before(i)
                        began = time.perf_counter()
                        await op(i)
                        elapsed[contender] += time.perf_counter() - began
            for contender in per_round:
                per_round[contender].append(ops / elapsed[contender])
        for contender, _, _, extra in live:
            median = statistics.median(per_round[contender])
            self.report.results.append(Result(group, contender, median, ops, per_round[contender], extra))
            print(f"  {group:<32} {contender:<40} {median:>10,.0f} ops/s", file=sys.stderr)

    def ratios(self, ours: str, peer: str) -> list[tuple[str, str, str]]:
        """``(group, ours, peer)`` for every group both contenders finished."""
        done = {(r.group, r.contender) for r in self.report.results if r.ops_per_sec > 0}
        return [(g, ours, peer) for g in self.groups if (g, ours) in done and (g, peer) in done]
