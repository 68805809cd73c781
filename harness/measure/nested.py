"""Intervals that see every level a latency varies at: processes, blocks, iterations.

Why: a worker process is one draw of everything that is fixed for its lifetime (allocation and
page layout, thread placement, what the VM's host did that minute). An interval that resamples
the blocks of one process cannot see that draw: two identical quick-preset runs on one machine
disagreed on 27 of 40 latencies and 9 of 20 speed-ups that such intervals called significant
(``tests/data/stores/amd-aa``). So a cell is measured in several process pairs spread across the
session (``harness.run.passes``), and its interval comes from a hierarchical bootstrap — process
(pairs) resampled, then blocks (pairs) within each (Kalibera & Jones, "Rigorous Benchmarking in
Reasonable Time", 2013; Davison & Hinkley 1997, §3.8).

How the interval is made from the draws: with three processes a percentile bootstrap is far too
narrow (it knows only ten distinct multisets of three, and the top level's variance comes out
short by (P-1)/P). So the draws give a standard error on the log scale, corrected by P/(P-1) at
the top level, and the interval is ``point × exp(± t · se)`` with the degrees of freedom of
Welch–Satterthwaite over the levels: close to P-1 when the process level dominates (as honest as
a t interval over P process means), large when it does not (then the old block interval's width).

Variance components are method-of-moments estimates on log latencies (a nested ANOVA): the
variance of one iteration between processes, between blocks of a process, and within a block,
and each level's share of the variance of the cell's estimate — which level to sample more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

RESAMPLES = 2000
Z95 = 1.959963984540054

# The quantile each side of a speed-up is read at: its quiet state. Why not the median: a host
# slow stretch (a neighbour on the VM's host, invisible to the guest) slows eager PyTorch's
# OpenMP threads more than OpenVINO's, so a session timed in a noisy hour reads every speed-up
# high. Two quick sessions on a Zen 4 VM fifteen minutes apart (2026-12-06), the first in such
# an hour (its latencies 1.05-1.77x the second's, 1.34x at the median): the ratio of medians
# read the second session's speed-ups at 0.86 of the first's (median over 22), 7 of 22 within
# 10%; the ratio of 10th percentiles at 0.98, 19 of 22 within 10%. The same reading of the
# issue's Zen 5 A/A (20 speed-ups, one process each): within 10%, 12 -> 18 of 20. Latencies
# keep their median: how long an inference takes depends on the host's hour, and a repeat's
# latency must land in that interval too; a speed-up is a property of the two runtimes here.
SPEEDUP_QUANTILE = 0.10


def by_process(samples: Sequence[float], blocks: Sequence[int] | None,
               disturbed: Sequence[Any] | None,
               block_process: Sequence[int] | None) -> list[list[np.ndarray]] | None:
    """The clean blocks of a cell grouped by the worker process that timed them.

    None when the cell has no process structure (a store from before processes were recorded,
    or lengths that do not add up): callers then fall back to the one-process interval.
    """
    from harness.measure import stats

    parts = stats.split_blocks(samples, blocks)
    if parts is None or not isinstance(block_process, (list, tuple)) \
            or len(block_process) != len(parts):
        return None
    flags = disturbed if isinstance(disturbed, (list, tuple)) and len(disturbed) == len(parts) \
        else [False] * len(parts)
    grouped: dict[int, list[np.ndarray]] = {}
    for part, proc, bad in zip(parts, block_process, flags, strict=True):
        if bad is not True and part.size:
            grouped.setdefault(int(proc), []).append(part)
    return [grouped[k] for k in sorted(grouped)]


def _coarsen_each(procs: list[list[np.ndarray]], most_total: int = 96) -> list[list[np.ndarray]]:
    """Merge neighbouring blocks within each process so the whole cell keeps at most about
    ``most_total`` blocks (a longer block is a valid, slightly conservative block)."""
    from harness.measure import stats

    per = max(2, most_total // max(len(procs), 1))
    return [stats.coarsen(p, per) for p in procs]


def nested_counts(sizes: Sequence[int], rng: np.random.Generator, resamples: int) -> np.ndarray:
    """How often each block is drawn in each resample: processes drawn with replacement, then
    as many blocks as that process has, drawn with replacement within it. Two sides of a
    comparison whose processes and blocks ran side by side use the same matrix."""
    sizes = list(sizes)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    counts = np.zeros((resamples, int(sum(sizes))), dtype=np.int64)
    chosen = rng.integers(0, len(sizes), size=(resamples, len(sizes)))
    for j, size in enumerate(sizes):
        times = (chosen == j).sum(axis=1)
        rows = np.repeat(np.arange(resamples), times * size)
        cols = offsets[j] + rng.integers(0, size, size=rows.size)
        np.add.at(counts, (rows, cols), 1)
    return counts


def components(procs: list[list[np.ndarray]]) -> dict[str, Any]:
    """Variance components of log latency (nested ANOVA, method of moments), and each level's
    share of the variance of the cell's estimate. Shares are None for one process."""
    logs = [[np.log(b[b > 0]) for b in p if np.any(b > 0)] for p in procs]
    logs = [p for p in logs if p]
    within = [float(np.var(b, ddof=1)) for p in logs for b in p if b.size > 1]
    s_iter = float(np.mean(within)) if within else 0.0
    n_iter = float(np.mean([b.size for p in logs for b in p])) if logs else 1.0
    block_means = [np.array([b.mean() for b in p]) for p in logs]
    between_blocks = [float(np.var(m, ddof=1)) for m in block_means if m.size > 1]
    s_block = max(float(np.mean(between_blocks)) - s_iter / n_iter, 0.0) if between_blocks else 0.0
    n_blocks = float(np.mean([m.size for m in block_means])) if block_means else 1.0
    proc_means = np.array([m.mean() for m in block_means])
    s_proc = 0.0
    if proc_means.size > 1:
        s_proc = max(float(np.var(proc_means, ddof=1)) - s_block / n_blocks
                     - s_iter / (n_blocks * n_iter), 0.0)
    p = max(len(logs), 1)
    share = {"processes": s_proc / p, "blocks": s_block / (p * n_blocks),
             "iterations": s_iter / (p * n_blocks * n_iter)}
    total = sum(share.values())
    out: dict[str, Any] = {
        "between_processes": s_proc, "between_blocks": s_block, "within_blocks": s_iter,
        "processes": len(logs), "blocks_per_process": n_blocks,
        "iterations_per_block": n_iter,
    }
    if total > 0 and len(logs) > 1:
        out["share"] = {k: v / total for k, v in share.items()}
        out["dominant"] = max(share, key=lambda k: share[k])
    else:
        out["share"], out["dominant"] = None, None
    return out


def process_variance(figures: Sequence[float]) -> tuple[float, float] | None:
    """(sample variance, degrees of freedom) of per-process log figures — what a session's
    cells pool into a prior (``harness.measure.moderate``); None below two processes."""
    x = np.log(np.asarray(figures, dtype=float))
    if x.size < 2 or not np.all(np.isfinite(x)):
        return None
    return float(np.var(x, ddof=1)), float(x.size - 1)


def process_medians(procs: Sequence[Sequence[np.ndarray]]) -> list[float]:
    """Each process's median over its clean blocks."""
    return [float(np.median(np.concatenate(p))) for p in procs]


def process_quantiles(procs: list[list[np.ndarray]], q: float) -> list[float]:
    """Each process's ``q``-quantile over its clean blocks."""
    return [float(np.percentile(np.concatenate(p), 100 * q)) for p in procs]


def _interval(point: float, log_draws: np.ndarray, procs: int, process_share: float | None,
              blocks_total: int, moderated: tuple[float, float, float] | None = None,
              ) -> tuple[list[float], float, float]:
    """``point × exp(± t · se)`` from log-scale bootstrap draws: (ci, se, df).

    ``moderated`` is (the cell's own process-level variance, the moderated one, its degrees of
    freedom): the process level's share of the estimate's variance, own/P, is replaced by the
    moderated one, post/P, and the rest of what the bootstrap saw (its blocks, resampled again
    within each process) is kept; the process level gets the moderated degrees of freedom
    instead of P-1. Why additive: scaling the whole bootstrap variance by post/own blew the
    interval up when three processes agreed by chance far closer than their blocks (own tiny)
    — an 8.1x speed-up whose pairs read 8.11, 8.07 and 8.18 got [2.0, 32.8] (the axes preset,
    2026-12-05)."""
    from scipy import stats as _st

    var = float(np.var(log_draws, ddof=1)) * procs / (procs - 1)
    top_df = float(procs - 1)
    if moderated is not None:
        own, post, post_df = moderated
        var = max(var + (post - own) / procs, post / procs)
        top_df = post_df
    share = min(max(process_share if process_share is not None else 1.0, 0.0), 1.0)
    top, rest = var * share, var * (1 - share)
    df_rest = max(blocks_total - procs, 1)
    denom = top * top / top_df + rest * rest / df_rest
    df = var * var / denom if denom > 0 else top_df
    se = var ** 0.5
    t = float(_st.t.ppf(0.975, df))
    return [point * float(np.exp(-t * se)), point * float(np.exp(t * se))], se, df


def _moderation(figures: Sequence[float], prior: Any) -> tuple[tuple[float, float, float] | None,
                                                                dict[str, Any] | None]:
    """The ``moderated`` argument of ``_interval`` and the record of it, for a prior or None."""
    own = process_variance(figures)
    if prior is None or own is None:
        return None, None
    post, post_df = prior.posterior(*own)
    return (own[0], post, post_df), {"own_s2": own[0], "own_df": own[1], "s2": post,
                                     "df": post_df, "prior": prior.as_dict()}


def nested_summary(procs: list[list[np.ndarray]], *, resamples: int = RESAMPLES,
                   seed: int = 0, prior: Any = None) -> dict[str, Any]:
    """The cell's median with a nested interval (needs at least two processes); ``prior``
    (``harness.measure.moderate.Prior``) moderates its process-level variance."""
    from harness.measure import stats

    if len(procs) < 2:
        raise ValueError("a nested interval needs at least two processes")
    procs = _coarsen_each(procs)
    flat = [b for p in procs for b in p]
    pooled = np.concatenate(flat)
    point = float(np.median(pooled))
    counts = nested_counts([len(p) for p in procs], np.random.default_rng(seed), resamples)
    draws = stats.pooled_medians(flat, counts)
    comp = components(procs)
    share = comp["share"]["processes"] if comp["share"] else None
    moderated, record = _moderation(process_medians(procs), prior)
    ci, se, df = _interval(point, np.log(draws), len(procs), share, len(flat), moderated)
    return {"median": point, "ci95": ci, "ci_method": "nested", "processes": len(procs),
            "log_se": se, "df": df, "variance": comp, "moderated": record}


def nested_speedup(base: list[list[np.ndarray]], cand: list[list[np.ndarray]], *,
                   resamples: int = RESAMPLES, seed: int = 0, prior: Any = None,
                   q: float = SPEEDUP_QUANTILE) -> dict[str, Any] | None:
    """Speed-up = quantile ``q`` of base / that of cand (``SPEEDUP_QUANTILE``: each side at its
    quiet state) over process pairs that ran side by side; ``speedup_median`` is the ratio of
    the medians, for the record.

    Process pair k and block pair i within it are drawn together for both sides; None when
    the two sides' processes or blocks cannot be paired (the caller falls back).
    """
    from harness.measure import stats

    if len(base) != len(cand) or len(base) < 2:
        return None
    base, cand = _coarsen_each(base), _coarsen_each(cand)
    if any(len(b) != len(c) for b, c in zip(base, cand, strict=True)):
        return None
    sizes = [len(p) for p in base]
    counts = nested_counts(sizes, np.random.default_rng(seed), resamples)  # both sides alike
    fb, fc = [b for p in base for b in p], [b for p in cand for b in p]
    ratio = stats.pooled_quantiles(fb, counts, q) / stats.pooled_quantiles(fc, counts, q)
    pb_all, pc_all = np.concatenate(fb), np.concatenate(fc)
    point = float(np.percentile(pb_all, 100 * q) / np.percentile(pc_all, 100 * q))
    # The components of the log ratio: per block pair, log(quantile base / quantile cand).
    pair_logs = [[np.array([np.log(np.percentile(b, 100 * q) / np.percentile(c, 100 * q))])
                  for b, c in zip(pb, pc, strict=True)] for pb, pc in zip(base, cand, strict=True)]
    comp = _ratio_components(pair_logs)
    share = comp["share"]["processes"] if comp["share"] else None
    moderated, record = _moderation(pair_ratios(base, cand, q), prior)
    ci, se, df = _interval(point, np.log(ratio), len(base), share, len(fb), moderated)
    return {"speedup": point, "ci95": ci, "ci_method": "nested-pairs", "processes": len(base),
            "pairs": len(fb), "log_se": se, "df": df, "variance": comp, "ci_note": None,
            "moderated": record, "quantile": q,
            "speedup_median": float(np.median(pb_all) / np.median(pc_all))}


def pair_ratios(base: list[list[np.ndarray]], cand: list[list[np.ndarray]],
                q: float = SPEEDUP_QUANTILE) -> list[float]:
    """Each process pair's speed-up: its baseline process's ``q``-quantile over its
    candidate's."""
    return [b / c for b, c in zip(process_quantiles(base, q), process_quantiles(cand, q),
                                  strict=True)]


def _ratio_components(pair_logs: list[list[np.ndarray]]) -> dict[str, Any]:
    """Components of the log speed-up: between process pairs and between block pairs."""
    means = [np.array([float(x[0]) for x in p]) for p in pair_logs]
    within = [float(np.var(m, ddof=1)) for m in means if m.size > 1]
    s_block = float(np.mean(within)) if within else 0.0
    n_blocks = float(np.mean([m.size for m in means]))
    top = np.array([m.mean() for m in means])
    s_proc = max(float(np.var(top, ddof=1)) - s_block / n_blocks, 0.0) if top.size > 1 else 0.0
    p = len(means)
    share = {"processes": s_proc / p, "blocks": s_block / (p * n_blocks)}
    total = sum(share.values())
    out: dict[str, Any] = {"between_processes": s_proc, "between_blocks": s_block,
                           "processes": p, "blocks_per_process": n_blocks}
    if total > 0 and p > 1:
        out["share"] = {k: v / total for k, v in share.items()}
        out["dominant"] = max(share, key=lambda k: share[k])
    else:
        out["share"], out["dominant"] = None, None
    return out


def ratio_of(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """Ratio b/a of two independent estimates (two sessions) that carry ``log_se`` and ``df``:
    Welch–Satterthwaite on the log scale. None when either lacks them."""
    from scipy import stats as _st

    pa, pb = a.get("median", a.get("speedup")), b.get("median", b.get("speedup"))
    if not pa or not pb or a.get("log_se") is None or b.get("log_se") is None:
        return None
    va, vb = float(a["log_se"]) ** 2, float(b["log_se"]) ** 2
    df_a, df_b = float(a.get("df") or 1e6), float(b.get("df") or 1e6)
    denom = va * va / df_a + vb * vb / df_b
    df = (va + vb) ** 2 / denom if denom > 0 else 1e6
    point = float(pb) / float(pa)
    t = float(_st.t.ppf(0.975, df))
    half = t * (va + vb) ** 0.5
    return {"ratio": point, "ci95": [point * float(np.exp(-half)), point * float(np.exp(half))],
            "df": df}
