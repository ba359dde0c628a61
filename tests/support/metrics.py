"""The EMF metric lines the functions write, summed."""

from __future__ import annotations

from typing import Any


def metric_total(output: list[dict[str, Any]], name: str, **dimensions: str) -> float:
    """Sum of an EMF metric over the output lines, optionally only where the dimensions match."""
    total = 0.0
    for line in output:
        if "_aws" not in line or name not in line:
            continue
        if any(line.get(key) != value for key, value in dimensions.items()):
            continue
        value = line[name]
        total += sum(value) if isinstance(value, list) else value
    return total
