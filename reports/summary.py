"""The summary of a session's speed-ups: a geometric mean per candidate with an interval.

Split from ``reports.tables`` (per-cell statistics and speed-ups) because the per-family
summaries of ``reports.trends`` use the same estimator on their own rows; ``log_sd`` (a 95% CI
back to the standard deviation of its log) is shared by the report's sections too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.measure.results import LATENCY

from .jsonable import jsonable

_SUMMARY_RESAMPLES = 4000
Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


def positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def log_sd(ci: Any) -> float | None:
    """The standard deviation on the log scale that a 95% interval ``(lo, hi)`` implies (a
    normal on log values); None when either bound is missing or not positive."""
    lo, hi = ci or (None, None)
    if not (positive(lo) and positive(hi)):
        return None
    return max(math.log(hi) - math.log(lo), 0.0) / (2 * Z95)


@dataclass(frozen=True)
class SummaryRow:
    """Geometric-mean speed-up of one candidate over the specs of one (precision, threads)."""

    baseline: str
    candidate: str
    precision: str
    threads: int
    geomean: float
    ci95: tuple[float, float]
    n_specs: int
    best: tuple[str, float]  # (spec, speedup)
    worst: tuple[str, float]
    scenario: str = LATENCY

    def as_json(self) -> dict[str, Any]:
        return jsonable({
            "baseline": self.baseline, "candidate": self.candidate,
            "precision": self.precision, "threads": self.threads,
            "geomean": self.geomean, "ci95": list(self.ci95), "n_specs": self.n_specs,
            "best": {"spec": self.best[0], "speedup": self.best[1]},
            "worst": {"spec": self.worst[0], "speedup": self.worst[1]},
            "scenario": self.scenario,
            "ci_method": "hierarchical bootstrap: specs resampled, log-speed-ups jittered by their own CI",
        })



def summarize_speedups(speedups: Sequence[Any]) -> tuple[SummaryRow, ...]:
    """Geometric mean per (candidate, precision, threads) with a hierarchical bootstrap CI.

    Why geometric: speed-ups are ratios, and 2x faster then 2x slower should average to 1x.
    Why this interval: two things make the mean uncertain — which architectures happened to be in
    the session (resample specs with replacement) and the measurement noise of each spec (jitter
    its log-speed-up by a normal whose sd comes from its own bootstrap CI). With one spec it
    reduces to that spec's own interval; with many, the spread across specs dominates.
    Threads and precisions are kept apart because mixing them would average different questions.
    """
    by: dict[tuple[str, str, str, int, str], list[Any]] = {}
    for r in speedups:  # latency and throughput speed-ups answer different questions
        by.setdefault((r.baseline, r.candidate, r.precision, r.threads, r.scenario), []).append(r)
    out = []
    rng = np.random.default_rng(0)
    for (base, cand, prec, thr, scen), rs in by.items():
        rs = [r for r in rs if positive(r.speedup)]
        if not rs:
            continue
        logs = np.log([r.speedup for r in rs])
        sds = np.array([log_sd(r.ci95) or 0.0 for r in rs])
        idx = rng.integers(0, len(rs), size=(_SUMMARY_RESAMPLES, len(rs)))
        draws = logs[idx] + rng.standard_normal(idx.shape) * sds[idx]
        lo, hi = np.exp(np.percentile(draws.mean(axis=1), [2.5, 97.5]))
        best = max(rs, key=lambda r: r.speedup)
        worst = min(rs, key=lambda r: r.speedup)
        out.append(SummaryRow(base, cand, prec, thr, float(np.exp(logs.mean())),
                              (float(lo), float(hi)), len(rs),
                              (best.spec, best.speedup), (worst.spec, worst.speedup), scen))
    return tuple(out)
