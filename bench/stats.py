"""Summaries of timing samples: median, p99, and ratios of medians."""

from __future__ import annotations

import statistics


def median_ms(samples_ns: list[int]) -> float:
    return statistics.median(samples_ns) / 1e6


def p99_ms(samples_ns: list[int]) -> float:
    ordered = sorted(samples_ns)
    index = min(len(ordered) - 1, max(0, round(0.99 * (len(ordered) - 1))))
    return ordered[index] / 1e6


def summary(samples_ns: list[int]) -> dict[str, float]:
    return {"median_ms": median_ms(samples_ns), "p99_ms": p99_ms(samples_ns), "n": len(samples_ns)}
