"""Plot the benchmark ratios from ``benchmarks/results/*.json`` into ``docs/benchmarks.png``.

    .venv/bin/pip install matplotlib   # once; not a dependency of the package
    .venv/bin/python benchmarks/plot.py [--results benchmarks/results] [--out docs/benchmarks.png]

One panel per results file (core = memory and disk, redis, mongodb, ...), one bar per
ratio the benchmark recorded: our store's ops/s divided by the baseline's, measured
side by side in the same run. The x axis is logarithmic; right of the 1x line means
faster than the baseline.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("core", "redis", "mongodb", "dynamodb")


def load(results_dir: Path) -> list[dict[str, Any]]:
    """Every results file that recorded ratios, in a stable order."""
    reports = []
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("ratios"):
            reports.append(data)
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(reports, key=lambda r: (rank.get(r["name"], len(ORDER)), r["name"]))


def _label(ratio: dict[str, Any]) -> str:
    contender = ratio["contender"].replace("fastmcp-sessions ", "")
    return f"{ratio['group']}: {contender} vs {ratio['baseline']}"


def plot(reports: list[dict[str, Any]], out: Path) -> None:
    """Draw one horizontal bar chart of ratios per report and save it as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    heights = [max(len(r["ratios"]), 1) for r in reports]
    fig, axes = plt.subplots(
        len(reports),
        1,
        figsize=(11, 0.42 * sum(heights) + 1.4 * len(reports)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, report in zip(axes[:, 0], reports, strict=True):
        ratios = report["ratios"]
        labels = [_label(r) for r in ratios]
        values = [float(r["ratio"]) for r in ratios]
        colors = ["#2a9d8f" if v >= 1 else "#e76f51" for v in values]
        y = range(len(values))
        ax.barh(list(y), values, color=colors)
        ax.set_yticks(list(y), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", linewidth=0.8)
        low = min(min(values) / 1.5, 0.5)
        high = max(max(values) * 1.8, 2.0)
        ax.set_xlim(low, high)
        for i, v in enumerate(values):
            ax.text(v * 1.08, i, f"{v:.2f}x", va="center", fontsize=8)
        when = report.get("time", "")
        ax.set_title(
            f"{report['name']}: ops/s ratio, ours / baseline "
            f"(same run; Python {report.get('python', '?')}, {when})",
            fontsize=10,
            loc="left",
        )
        ax.grid(axis="x", which="both", alpha=0.25)
        ticks = [t for t in (0.1, 0.25, 0.5, 1, 2, 4, 10, 25, 50) if low <= t <= high]
        ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    fig.suptitle("fastmcp-sessions benchmarks (right of 1x: faster than the baseline)", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    """Read the results and write the PNG."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.png")
    args = parser.parse_args()
    reports = load(args.results)
    if not reports:
        raise SystemExit(
            f"no results with ratios in {args.results}; run python -m benchmarks.bench_core first"
        )
    plot(reports, args.out)
    count = sum(len(r["ratios"]) for r in reports)
    print(
        f"wrote {args.out} ({len(reports)} panels, {count} ratios; "
        f"geometric mean vs py-key-value-aio: {_geomean(reports):.2f}x)"
    )


def _geomean(reports: list[dict[str, Any]]) -> float:
    peers = [float(r["ratio"]) for rep in reports for r in rep["ratios"] if "py-key-value" in r["baseline"]]
    return math.exp(sum(math.log(v) for v in peers) / len(peers)) if peers else float("nan")


if __name__ == "__main__":
    main()
