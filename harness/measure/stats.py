"""Statistics derived from raw latency samples.

Why the median: latency distributions on shared machines are skewed with a long right tail
(preemption, page faults), so the mean moves with every hiccup while the median does not.
Intervals are seeded percentile bootstraps over timed blocks; binomial order statistics
(distribution-free, exact for independent samples) are the fallback for a median whose block
lengths are unknown (old stores).

Why the speed-up bootstrap resamples blocks, not iterations: on a shared machine the latency
drifts over seconds, so iterations inside one timed block are correlated and an iid bootstrap
treats thousands of them as independent evidence; its interval comes out too narrow. The
coordinator alternates blocks between the two backends, so block i of each side ran side by side
in time; resampling those pairs keeps both the within-block correlation and the shared drift
(a slow phase slows both sides, and that cancels in the ratio). Without block lengths (or with
too few blocks) the iid bootstrap is used, and the result says which. A cell's own median CI
follows the same rule: a block bootstrap when its blocks are known, order statistics otherwise.

One estimator decides everything: ``converged`` (when the coordinator stops timing a cell, and
what reports say about it) is the block bootstrap of ``summarize`` — the same interval the
report prints — so a cell is never called converged by one definition and loose by another.
Blocks the coordinator marked disturbed (other work used the CPUs, ``harness.run.interference``)
are set aside by ``clean`` before any estimate: kept in the store, never in a figure.
New sessions always have enough clean paired blocks for ``paired-blocks``; the ``iid`` and
``order-statistics`` fallbacks exist for stores written before blocks were recorded.
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


def ci_halfwidth(summary: dict[str, Any]) -> float:
    """Half the width of a summary's CI over its median (0.01 means ±1%); inf if unknown."""
    lo, hi = summary.get("ci95") or (None, None)
    med = summary.get("median")
    if lo is None or hi is None or not med or med <= 0:
        return float("inf")
    return (hi - lo) / 2 / med


def converged(samples: Sequence[float], blocks: Sequence[int] | None, target: float,
              min_samples: int) -> bool:
    """Whether a cell's median is known to ``target`` (relative CI half-width).

    Never with fewer than ``min_samples`` samples, and only from the block bootstrap (at least
    ``MIN_BOOTSTRAP_BLOCKS`` blocks): an order-statistics CI over correlated iterations is too
    narrow to stop on. ``samples``/``blocks`` are the clean ones (``clean``).
    """
    if len(samples) < min_samples:
        return False
    summary = summarize(samples, blocks)
    return summary["ci_method"] == "blocks" and ci_halfwidth(summary) <= target


def clean(samples: Sequence[float], blocks: Sequence[int] | None,
          disturbed: Sequence[Any] | None) -> tuple[list[float], list[int] | None]:
    """The samples and block lengths of the blocks not marked disturbed.

    ``disturbed`` is one flag per block (stored by the coordinator); without it (old stores)
    or when it does not match the blocks, everything is returned as it is.
    """
    x = [float(v) for v in samples]
    parts = split_blocks(x, blocks)
    if parts is None or not isinstance(disturbed, (list, tuple)) or len(disturbed) != len(parts):
        return x, (list(blocks) if blocks is not None else None)
    keep = [p for p, bad in zip(parts, disturbed, strict=True) if bad is not True]
    return [float(v) for p in keep for v in p], [int(p.size) for p in keep]


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
        lo, hi = np.percentile(_block_quantiles_of(parts, picks), [2.5, 97.5])
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


def median_draws(samples: Sequence[float], blocks: Sequence[int] | None = None, *,
                 resamples: int = 2000, seed: int = 0) -> tuple[np.ndarray, str]:
    """Bootstrap draws of one cell's median, and how they were made (``blocks`` or ``iid``).

    Why draws and not an interval: comparing two machines needs the ratio of two medians
    whose sessions ran apart, so their draws are independent and dividing them elementwise
    gives the ratio's bootstrap distribution (``reports.compare.analysis``). The blocks are resampled
    whole, as ``summarize`` does, so drift within a session stays in the interval.
    """
    x = np.asarray(samples, dtype=float)
    rng = np.random.default_rng(seed)
    parts = split_blocks(x, blocks)
    if parts is not None and len(parts) >= MIN_BOOTSTRAP_BLOCKS:
        parts = coarsen(parts)
        picks = rng.integers(0, len(parts), size=(resamples, len(parts)))
        return _block_quantiles_of(parts, picks), "blocks"
    return np.median(rng.choice(x, size=(resamples, x.size), replace=True), axis=1), "iid"


def speedup(
    baseline: Sequence[float], candidate: Sequence[float], *,
    baseline_blocks: Sequence[int] | None = None, candidate_blocks: Sequence[int] | None = None,
    resamples: int = 2000, seed: int = 0, q: float = 0.5,
) -> dict[str, Any]:
    """Speed-up = median(baseline) / median(candidate) (or, with ``q``, the ratio of the two
    sides' ``q``-quantiles), with a bootstrap 95% CI.

    ``ci_method`` says how the interval was made: ``paired-blocks`` (block i of both sides
    resampled together), ``blocks`` (each side's blocks resampled on its own, when the counts
    differ) or ``iid`` (single iterations: an old store without block lengths, or with too few
    blocks); ``ci_note`` says why a fallback was used, ``pairs`` how many block pairs were.
    """
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(candidate, dtype=float)
    if b.size == 0 or c.size == 0:
        return {"speedup": None, "ci95": [None, None], "ci_method": None, "pairs": 0,
                "ci_note": "no samples"}
    point = float(np.percentile(b, 100 * q) / np.percentile(c, 100 * q))
    rng = np.random.default_rng(seed)
    bb, cb = split_blocks(b, baseline_blocks), split_blocks(c, candidate_blocks)
    pairs = 0
    if bb is not None and cb is not None and min(len(bb), len(cb)) >= MIN_BOOTSTRAP_BLOCKS:
        pairs = len(bb) if len(bb) == len(cb) else 0
        bb, cb = coarsen(bb), coarsen(cb)
        if len(bb) == len(cb):
            picks = rng.integers(0, len(bb), size=(resamples, len(bb)))
            bm, cm = _block_quantiles_of(bb, picks, q=q), _block_quantiles_of(cb, picks, q=q)
            method, note = "paired-blocks", None
        else:
            bm = _block_quantiles_of(bb, rng.integers(0, len(bb), size=(resamples, len(bb))), q=q)
            cm = _block_quantiles_of(cb, rng.integers(0, len(cb), size=(resamples, len(cb))), q=q)
            method, note = "blocks", f"{len(bb)} and {len(cb)} blocks cannot be paired"
    else:
        bm = np.percentile(rng.choice(b, size=(resamples, b.size), replace=True), 100 * q, axis=1)
        cm = np.percentile(rng.choice(c, size=(resamples, c.size), replace=True), 100 * q, axis=1)
        method = "iid"
        if bb is None or cb is None:
            note = "no usable block lengths stored (a store from before blocks were recorded)"
        else:
            note = (f"{len(bb)} and {len(cb)} timed blocks, fewer than the "
                    f"{MIN_BOOTSTRAP_BLOCKS} a block bootstrap needs")
    lo, hi = np.percentile(bm / cm, [2.5, 97.5])
    return {"speedup": point, "ci95": [float(lo), float(hi)], "ci_method": method,
            "ci_note": note, "pairs": pairs}


MAX_BOOTSTRAP_BLOCKS = 64  # more are merged, neighbours together, to bound time and memory


def coarsen(blocks: list[np.ndarray], most: int = MAX_BOOTSTRAP_BLOCKS) -> list[np.ndarray]:
    """Merge neighbouring blocks so at most ``most`` remain (longer blocks: a valid, slightly
    more conservative block bootstrap). Two sides with equal counts are merged alike."""
    if len(blocks) <= most:
        return blocks
    groups = np.array_split(np.arange(len(blocks)), most)
    return [np.concatenate([blocks[i] for i in g]) for g in groups]


DENSE_COUNT_LIMIT = 8_000_000  # samples x blocks up to which a 32 MB count table is used


def _block_quantiles_of(blocks: list[np.ndarray], picks: np.ndarray,
                      dense_limit: int = DENSE_COUNT_LIMIT, q: float = 0.5) -> np.ndarray:
    """The ``q``-quantile (default: the median) of the pooled samples of the picked blocks, one
    per row of ``picks``."""
    rows = picks.shape[0]
    counts = np.zeros((rows, len(blocks)), dtype=np.int64)
    np.add.at(counts, (np.arange(rows)[:, None], picks), 1)
    return pooled_quantiles(blocks, counts, q, dense_limit)


def pooled_medians(blocks: list[np.ndarray], counts: np.ndarray,
                   dense_limit: int = DENSE_COUNT_LIMIT) -> np.ndarray:
    """Median of each resample's pooled samples, block k counted ``counts[row, k]`` times."""
    return pooled_quantiles(blocks, counts, 0.5, dense_limit)


def pooled_quantiles(blocks: list[np.ndarray], counts: np.ndarray, q: float,
                     dense_limit: int = DENSE_COUNT_LIMIT) -> np.ndarray:
    """The ``q``-quantile of each resample's pooled samples (``np.percentile``'s linear rule),
    block k counted ``counts[row, k]`` times.

    Without building the pools: a row's pooled count of samples <= v is
    ``sum_k counts[row, k] * (block k's samples <= v)``, and a bisection over the sorted
    samples finds the two ranks around the quantile. The per-block counts come from a table
    over the sorted samples (fast) or, for very long cells, from a search in each block (small).
    The nested bootstrap (``harness.measure.nested``) fills ``counts`` level by level.
    """
    values = np.concatenate(blocks)
    owner = np.repeat(np.arange(len(blocks)), [b.size for b in blocks])
    order = np.argsort(values, kind="stable")
    values, owner = values[order], owner[order]
    rows = counts.shape[0]
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

    position = q * (total - 1)
    below_rank = np.floor(position).astype(np.int64)
    frac = position - below_rank
    low = pooled(below_rank)
    if not np.any(frac > 0):
        return low.astype(float)
    high = pooled(np.minimum(below_rank + 1, total - 1))
    return low + frac * (high - low)


def _none_if_nan(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)
