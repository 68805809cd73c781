"""Statistics derived from raw latency samples.

Why the median and an order-statistic interval: latency distributions on shared machines are
skewed with a long right tail (preemption, page faults), so the mean moves with every hiccup
while the median does not. The 95% interval of the median comes from binomial order statistics
(distribution-free, no resampling, exact for continuous data); the interval of a ratio of
medians (a speed-up) comes from a seeded percentile bootstrap over both sample sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as _st


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median from order statistics; (nan, nan) below 6 samples."""
    x = np.sort(np.asarray(samples, dtype=float))
    n = x.size
    if n < 6:
        return (float("nan"), float("nan"))
    alpha = 1 - confidence
    lo = int(_st.binom.ppf(alpha / 2, n, 0.5))
    hi = int(_st.binom.isf(alpha / 2, n, 0.5))
    lo = max(lo - 1, 0)  # ppf gives a rank; the interval uses ranks [lo+1, hi] 1-based
    hi = min(hi, n - 1)
    return (float(x[lo]), float(x[hi]))


def relative_halfwidth(samples: Sequence[float]) -> float:
    """Half the CI width over the median: the convergence criterion (0.01 means ±1%)."""
    lo, hi = median_ci(samples)
    med = float(np.median(samples)) if len(samples) else float("nan")
    if not np.isfinite(lo) or med <= 0:
        return float("inf")
    return (hi - lo) / 2 / med


def summarize(samples: Sequence[float]) -> dict[str, Any]:
    """Median, p90, p99, mean, IQR, 95% CI of the median, n. Empty input gives n=0 and Nones."""
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        return {"n": 0, "median": None, "p90": None, "p99": None, "mean": None,
                "iqr": None, "ci95": [None, None], "min": None, "max": None}
    q25, med, q75, p90, p99 = np.percentile(x, [25, 50, 75, 90, 99])
    lo, hi = median_ci(x)
    return {
        "n": int(x.size),
        "median": float(med),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(x.mean()),
        "iqr": float(q75 - q25),
        "ci95": [_none_if_nan(lo), _none_if_nan(hi)],
        "min": float(x.min()),
        "max": float(x.max()),
    }


def speedup(
    baseline: Sequence[float], candidate: Sequence[float], *, resamples: int = 2000, seed: int = 0,
) -> dict[str, Any]:
    """Speed-up = median(baseline) / median(candidate), with a bootstrap 95% CI."""
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(candidate, dtype=float)
    if b.size == 0 or c.size == 0:
        return {"speedup": None, "ci95": [None, None]}
    point = float(np.median(b) / np.median(c))
    rng = np.random.default_rng(seed)
    bm = np.median(rng.choice(b, size=(resamples, b.size), replace=True), axis=1)
    cm = np.median(rng.choice(c, size=(resamples, c.size), replace=True), axis=1)
    ratios = bm / cm
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return {"speedup": point, "ci95": [float(lo), float(hi)]}


def _none_if_nan(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)
