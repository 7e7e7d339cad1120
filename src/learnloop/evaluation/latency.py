"""Summary of measured latencies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def latency_percentiles(values_ms: Sequence[float]) -> dict[str, float | int | None]:
    """p50, p90, p95, p99 (numpy's linear interpolation), max and mean of ``values_ms``, and
    their count ``n``; the statistics are None when there are no values."""
    if len(values_ms) == 0:
        return {"p50": None, "p90": None, "p95": None, "p99": None, "max": None, "mean": None, "n": 0}
    values = np.asarray(values_ms, dtype=np.float64)
    p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
    return {
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(values.max()),
        "mean": float(values.mean()),
        "n": len(values),
    }
