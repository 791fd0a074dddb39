"""Figures from the sandbox's own records: lower bound, detection lag, polls and requests.

Report timings come from ``GET /_sandbox/stats`` on the server's monotonic clock.
The sandbox applies its time scale when it draws a generation time, so
``ready_at - created_at`` is already in real seconds, and ``ready_at`` is the
first instant the status endpoint answers "completed".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Sequence
from typing import Any

__all__ = ["batch_figures", "lower_bound", "percentile", "slope"]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the ``fraction`` quantile by linear interpolation (0 <= fraction <= 1)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def lower_bound(max_generation: float, rtt: float, jobs: int, rate: float | None) -> float:
    """Return ``LB = max(max_i G_i + 3 RTT, 3 N / R)`` in seconds (no rate limit: R = inf)."""
    bound = max_generation + 3 * rtt
    if rate is not None:
        bound = max(bound, 3 * jobs / rate)
    return bound


def _total(counters: dict[str, int]) -> int:
    return sum(counters.values())


def batch_figures(
    before: dict[str, Any],
    after: dict[str, Any],
    balies: Collection[str],
    *,
    rtt: float,
    rate: float | None,
    makespan: float,
) -> dict[str, Any]:
    """Return the figures of one batch from the sandbox stats taken before and after it."""
    wanted = set(balies)
    reports = [r for r in after["reports"].values() if r["balie"] in wanted]
    generation = [r["ready_at"] - r["created_at"] for r in reports]
    lags = [
        (r["completed_seen_at"] - r["ready_at"]) / g
        for r, g in zip(reports, generation, strict=True)
        if r["completed_seen_at"] is not None and g > 0
    ]
    polls = [r["status_polls"] for r in reports]
    requests = _total(after["requests"]) - _total(before["requests"])
    limited = after["rate_limited"] - before["rate_limited"]
    max_generation = max(generation) if generation else 0.0
    bound = lower_bound(max_generation, rtt, len(wanted), rate)
    return {
        "reports": len(reports),
        "duplicate_creates": after["duplicate_creates"] - before["duplicate_creates"],
        "auth_failures": after["auth_failures"] - before["auth_failures"],
        "max_generation": max_generation,
        "median_generation": statistics.median(generation) if generation else math.nan,
        "lower_bound": bound,
        "makespan_over_lb": makespan / bound if bound > 0 else math.nan,
        "lag_p50": percentile(lags, 0.50),
        "lag_p95": percentile(lags, 0.95),
        "lag_max": max(lags) if lags else math.nan,
        "polls_median": statistics.median(polls) if polls else math.nan,
        "polls_p95": percentile([float(p) for p in polls], 0.95),
        "polls_total": sum(polls),
        "requests": requests,
        "requests_per_job": requests / len(wanted) if wanted else math.nan,
        "rate_limited_429": limited,
        "requests_per_s": requests / makespan if makespan > 0 else math.nan,
    }


def slope(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Return the least-squares (slope, intercept) of ``ys`` against ``xs``."""
    if len(xs) < 2:
        return math.nan, ys[0] if ys else math.nan
    fit = statistics.linear_regression(xs, ys)
    return fit.slope, fit.intercept
