"""Draws make bench's figures from benchmarks/results.json as one SVG (docs/performance.md shows it).

Cold start per memory size for the floor, the mint (SDK and extension paths) and the naive handler,
with each size's mint / floor ratio; warm p50 and p99 per size; the refresher against its floor.

Usage: python benchmarks/plot.py [RESULTS_JSON] [SVG]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COLD_SUBJECTS = {
    "floor": ("floor", "#9e9e9e"),
    "mint": ("mint (SDK)", "#1f77b4"),
    "mint_extension": ("mint (extension)*", "#2ca02c"),
    "naive": ("naive", "#d62728"),
}


def draw(results: dict[str, Any], svg: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Text stays text and ids are stable, so the SVG is small and diffs only when the figures do.
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "kustomer-chat-token", "font.size": 9})
    by_size = {size: figures for size, figures in results["mint"]["by_size"].items() if size != "uncapped"}
    sizes = list(by_size) or list(results["mint"]["by_size"])
    by_size = by_size or results["mint"]["by_size"]
    figure, (cold, warm, refresher) = plt.subplots(
        1, 3, figsize=(13, 4.2), gridspec_kw={"width_ratios": [2.2, 1.6, 1]}, layout="constrained"
    )
    _cold_panel(cold, sizes, by_size, results["mint"]["mint_over_floor_all_sizes"])
    _warm_panel(warm, sizes, by_size)
    _refresher_panel(refresher, results["refresher_cold"])
    machine = results["machine"]
    figure.suptitle(
        f"make bench, {machine['date']}: INIT on a free core, invocations capped to memory/1769 of a CPU "
        f"(medians of {results['mint']['rounds']} rounds; {machine['cpu']}, {machine['cores']} cores)",
        fontsize=9,
    )
    svg.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(svg, format="svg", metadata={"Date": None})
    plt.close(figure)


def _cold_panel(axes: Any, sizes: list[str], by_size: dict[str, Any], pooled: float) -> None:
    width = 0.8 / len(COLD_SUBJECTS)
    for index, (subject, (label, colour)) in enumerate(COLD_SUBJECTS.items()):
        xs = [position + (index - (len(COLD_SUBJECTS) - 1) / 2) * width for position in range(len(sizes))]
        values = [by_size[size][subject]["cold_ms"] for size in sizes]
        axes.bar(xs, values, width, label=label, color=colour)
        if subject == "mint":
            for x, value, size in zip(xs, values, sizes, strict=True):
                ratio = by_size[size]["ratios"]["mint_over_floor"]
                _label_ratio(axes, ratio, x, value)
    axes.set_xticks(range(len(sizes)), [f"{size} MB" for size in sizes])
    axes.set_ylabel("invoke → first answer, ms")
    axes.set_title(f"Cold start (mint / floor above its bars; pooled {pooled:.2f})")
    axes.legend(frameon=False, fontsize=8)


def _label_ratio(axes: Any, ratio: float, x: float, top: float) -> None:
    """A ratio to the floor, written just above a bar (or a pair of bars) whose top is at `top`."""
    axes.annotate(
        f"{ratio:.2f}", (x, top), ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points"
    )


def _warm_panel(axes: Any, sizes: list[str], by_size: dict[str, Any]) -> None:
    for subject, (label, colour) in COLD_SUBJECTS.items():
        axes.plot(sizes, [by_size[s][subject]["warm_p50_ms"] for s in sizes], "o-", color=colour, label=f"{label} p50")
        axes.plot(sizes, [by_size[s][subject]["warm_p99_ms"] for s in sizes], "^--", color=colour, label=f"{label} p99")
    axes.set_yscale("log")
    axes.set_xticks(range(len(sizes)), [f"{size} MB" for size in sizes])
    axes.set_ylabel("ms per warm invocation (log)")
    axes.set_title("Warm: p50 (solid) and p99 (dashed)")
    axes.legend(frameon=False, fontsize=6, ncol=2)


def _refresher_panel(axes: Any, refresher: dict[str, Any]) -> None:
    sizes = list(refresher["by_size"])
    for index, (subject, label, colour) in enumerate(
        (("refresher_floor", "refresher floor", "#9e9e9e"), ("refresher", "refresher", "#9467bd"))
    ):
        xs = [position + (index - 0.5) * 0.38 for position in range(len(sizes))]
        values = [refresher["by_size"][size][subject]["cold_ms"] for size in sizes]
        axes.bar(xs, values, 0.38, label=label, color=colour)
    for position, size in enumerate(sizes):
        ratio = refresher["by_size"][size]["refresher_over_floor"]
        top = max(refresher["by_size"][size][s]["cold_ms"] for s in ("refresher", "refresher_floor"))
        _label_ratio(axes, ratio, position, top)
    tallest = max(refresher["by_size"][size][s]["cold_ms"] for size in sizes for s in ("refresher", "refresher_floor"))
    axes.set_ylim(0, tallest * 1.3)  # room for the legend above the bars
    axes.set_xticks(range(len(sizes)), [f"{size} MB" for size in sizes])
    axes.set_ylabel("invoke → answer, ms")
    axes.set_title("Refresher, cold run (÷ its floor)")
    axes.legend(frameon=False, fontsize=8, loc="upper center", ncol=2)


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "benchmarks" / "results.json"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "benchmarks" / "figures.svg"
    draw(json.loads(source.read_text(encoding="utf-8")), target)
    print(f"drawn: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
