"""Statistics derived from raw latency samples.

Why the median: latency distributions on shared machines are skewed with a long right tail
(preemption, page faults), so the mean moves with every hiccup while the median does not.
Intervals are seeded percentile bootstraps over timed blocks; binomial order statistics
(distribution-free, exact for independent samples) are the fallback for a median whose block
lengths are unknown, and the convergence test applies them to the block medians.

Why the speed-up bootstrap resamples blocks, not iterations: on a shared machine the latency
drifts over seconds, so iterations inside one timed block are correlated and an iid bootstrap
treats thousands of them as independent evidence; its interval comes out too narrow. The
coordinator alternates blocks between the two backends, so block i of each side ran side by side
in time; resampling those pairs keeps both the within-block correlation and the shared drift
(a slow phase slows both sides, and that cancels in the ratio). Without block lengths (or with
too few blocks) the iid bootstrap is used, and the result says which. A cell's own median CI
follows the same rule: a block bootstrap when its blocks are known, order statistics otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def median_ci(samples: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median from order statistics; (nan, nan) below 6 samples."""
    from scipy import stats as _st  # here, not at the top: a second of import most reports skip

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


def summarize(samples: Sequence[float], blocks: Sequence[int] | None = None, *,
              resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Median, p90, p99, mean, IQR, 95% CI of the median, n. Empty input gives n=0 and Nones.

    With the timed blocks' lengths (at least ``MIN_BOOTSTRAP_BLOCKS``), the median's CI is a
    block bootstrap, which stays honest when the machine drifts between blocks; without them,
    binomial order statistics (exact for independent samples). ``ci_method`` says which.
    """
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        return {"n": 0, "median": None, "p90": None, "p99": None, "mean": None,
                "iqr": None, "ci95": [None, None], "ci_method": None, "min": None, "max": None}
    q25, med, q75, p90, p99 = np.percentile(x, [25, 50, 75, 90, 99])
    parts = split_blocks(x, blocks)
    if parts is not None and len(parts) >= MIN_BOOTSTRAP_BLOCKS:
        parts = coarsen(parts)
        picks = np.random.default_rng(seed).integers(0, len(parts), size=(resamples, len(parts)))
        lo, hi = np.percentile(_block_medians_of(parts, picks), [2.5, 97.5])
        method = "blocks"
    else:
        lo, hi = median_ci(x)
        method = "order-statistics"
    return {
        "n": int(x.size),
        "median": float(med),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(x.mean()),
        "iqr": float(q75 - q25),
        "ci95": [_none_if_nan(lo), _none_if_nan(hi)],
        "ci_method": method,
        "min": float(x.min()),
        "max": float(x.max()),
    }


MIN_BOOTSTRAP_BLOCKS = 4  # fewer blocks than this make a block bootstrap meaningless


def split_blocks(samples: Sequence[float] | np.ndarray, blocks: Sequence[int] | None) -> list[np.ndarray] | None:
    """The samples cut into the timed blocks they came from; None if the lengths do not add up."""
    if not blocks or any(isinstance(n, bool) or not isinstance(n, int) or n <= 0 for n in blocks):
        return None
    x = np.asarray(samples, dtype=float)
    if sum(blocks) != x.size:
        return None
    return np.split(x, np.cumsum(blocks)[:-1])


def speedup(
    baseline: Sequence[float], candidate: Sequence[float], *,
    baseline_blocks: Sequence[int] | None = None, candidate_blocks: Sequence[int] | None = None,
    resamples: int = 2000, seed: int = 0,
) -> dict[str, Any]:
    """Speed-up = median(baseline) / median(candidate), with a bootstrap 95% CI.

    ``ci_method`` says how the interval was made: ``paired-blocks`` (block i of both sides
    resampled together), ``blocks`` (each side's blocks resampled on its own, when the counts
    differ) or ``iid`` (single iterations; no usable block lengths).
    """
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(candidate, dtype=float)
    if b.size == 0 or c.size == 0:
        return {"speedup": None, "ci95": [None, None], "ci_method": None}
    point = float(np.median(b) / np.median(c))
    rng = np.random.default_rng(seed)
    bb, cb = split_blocks(b, baseline_blocks), split_blocks(c, candidate_blocks)
    if bb is not None and cb is not None and min(len(bb), len(cb)) >= MIN_BOOTSTRAP_BLOCKS:
        bb, cb = coarsen(bb), coarsen(cb)
        if len(bb) == len(cb):
            picks = rng.integers(0, len(bb), size=(resamples, len(bb)))
            bm, cm = _block_medians_of(bb, picks), _block_medians_of(cb, picks)
            method = "paired-blocks"
        else:
            bm = _block_medians_of(bb, rng.integers(0, len(bb), size=(resamples, len(bb))))
            cm = _block_medians_of(cb, rng.integers(0, len(cb), size=(resamples, len(cb))))
            method = "blocks"
    else:
        bm = np.median(rng.choice(b, size=(resamples, b.size), replace=True), axis=1)
        cm = np.median(rng.choice(c, size=(resamples, c.size), replace=True), axis=1)
        method = "iid"
    lo, hi = np.percentile(bm / cm, [2.5, 97.5])
    return {"speedup": point, "ci95": [float(lo), float(hi)], "ci_method": method}


MAX_BOOTSTRAP_BLOCKS = 64  # more are merged, neighbours together, to bound time and memory


def coarsen(blocks: list[np.ndarray], most: int = MAX_BOOTSTRAP_BLOCKS) -> list[np.ndarray]:
    """Merge neighbouring blocks so at most ``most`` remain (longer blocks: a valid, slightly
    more conservative block bootstrap). Two sides with equal counts are merged alike."""
    if len(blocks) <= most:
        return blocks
    groups = np.array_split(np.arange(len(blocks)), most)
    return [np.concatenate([blocks[i] for i in g]) for g in groups]


DENSE_COUNT_LIMIT = 8_000_000  # samples x blocks up to which a 32 MB count table is used


def _block_medians_of(blocks: list[np.ndarray], picks: np.ndarray,
                      dense_limit: int = DENSE_COUNT_LIMIT) -> np.ndarray:
    """Median of the pooled samples of the picked blocks, one per row of ``picks``.

    A resample is the pooled samples of its blocks, each block counted as often as it was
    picked. Without building the pools: a row's pooled count of samples <= v is
    ``sum_k counts[row, k] * (block k's samples <= v)``, and a bisection over the sorted
    samples finds the two middle ranks. The per-block counts come from a table over the
    sorted samples (fast) or, for very long cells, from a search in each block (small).
    """
    values = np.concatenate(blocks)
    owner = np.repeat(np.arange(len(blocks)), [b.size for b in blocks])
    order = np.argsort(values, kind="stable")
    values, owner = values[order], owner[order]
    rows = picks.shape[0]
    counts = np.zeros((rows, len(blocks)), dtype=np.int64)
    np.add.at(counts, (np.arange(rows)[:, None], picks), 1)
    total = counts @ np.array([b.size for b in blocks])

    if values.size * len(blocks) <= dense_limit:
        below = np.zeros((values.size, len(blocks)), dtype=np.int32)
        below[np.arange(values.size), owner] = 1
        np.cumsum(below, axis=0, out=below)  # below[i, k]: block k's samples in values[:i+1]

        def at_most(mid: np.ndarray) -> np.ndarray:
            return np.einsum("rk,rk->r", counts, below[mid])
    else:
        sorted_blocks = [np.sort(b) for b in blocks]

        def at_most(mid: np.ndarray) -> np.ndarray:
            v = values[mid]
            return sum(counts[:, k] * np.searchsorted(b, v, side="right")
                       for k, b in enumerate(sorted_blocks))

    def pooled(rank: np.ndarray) -> np.ndarray:  # the rank-th smallest pooled sample (0-based)
        lo, hi = np.zeros(rows, dtype=np.int64), np.full(rows, values.size - 1)
        while np.any(lo < hi):
            mid = (lo + hi) // 2
            past = at_most(mid) > rank
            hi, lo = np.where(past, mid, hi), np.where(past, lo, mid + 1)
        return values[lo]

    return (pooled((total - 1) // 2) + pooled(total // 2)) / 2


def _none_if_nan(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)
