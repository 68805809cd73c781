"""Process-level variances borrowed across a session's cells (empirical Bayes moderation).

Why: a cell timed in three process pairs knows its own between-process variance with two
degrees of freedom. A t interval on two degrees of freedom multiplies the standard error by
4.3, so honest intervals of three processes were ±28% wide at the median on a 2-core VM, and a
cell whose three processes agreed by chance got an interval far too narrow. Every cell of a
session was timed on the same machine by the same harness, and their process-level variances
(on the log scale) are alike. So, as limma does for gene-wise variances (Smyth, "Linear models
and empirical Bayes methods for assessing differential expression in microarray
experiments", 2004), the session's cells give a prior — a scaled inverse chi-square with
``s0²`` and ``d0`` degrees of freedom, fitted to their sample variances by the method of
moments on the log scale — and each cell's variance is the posterior
``(d0·s0² + d·s²) / (d0 + d)`` on ``d0 + d`` degrees of freedom. A cell that really varies more
keeps most of its own variance when the session's cells differ a lot (small ``d0``); when they
are alike (large ``d0``) each cell's interval gets the session's degrees of freedom.

``d0`` is capped at the degrees of freedom the session's cells have between them: the prior
cannot be known better than the data that estimated it (limma lets it be infinite).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_CELLS = 5  # fewer cells than this give no prior: each cell keeps its own variance


@dataclass(frozen=True)
class Prior:
    """What a session's cells say about the process-level variance of any one of them."""

    s2: float  # the prior variance (log scale, per process)
    df: float  # its degrees of freedom, d0 (capped at ``pooled_df``)
    cells: int  # cells it was fitted from
    pooled_df: float  # their degrees of freedom together

    def posterior(self, s2: float, df: float) -> tuple[float, float]:
        """(moderated variance, its degrees of freedom) for a cell with ``s2`` on ``df``."""
        return (self.df * self.s2 + df * s2) / (self.df + df), self.df + df

    def as_dict(self) -> dict[str, float]:
        return {"s2": self.s2, "df": self.df, "cells": self.cells, "pooled_df": self.pooled_df}


def fit_prior(variances: Sequence[float], dfs: Sequence[float]) -> Prior | None:
    """The prior from cells' sample variances and their degrees of freedom (limma's fitFDist
    without covariates); None with fewer than ``MIN_CELLS`` usable cells."""
    from scipy.special import digamma, polygamma

    s2 = np.asarray(variances, dtype=float)
    d = np.asarray(dfs, dtype=float)
    keep = np.isfinite(s2) & (s2 > 0) & np.isfinite(d) & (d > 0)
    s2, d = s2[keep], d[keep]
    if s2.size < MIN_CELLS:
        return None
    e = np.log(s2) - digamma(d / 2) + np.log(d / 2)
    mean = float(np.mean(e))
    excess = float(np.var(e, ddof=1) - np.mean(polygamma(1, d / 2)))
    pooled = float(np.sum(d))
    if excess > 0:
        d0 = 2 * trigamma_inverse(excess)
        s0 = math.exp(mean + float(digamma(d0 / 2)) - math.log(d0 / 2))
    else:  # the cells vary no more than sampling alone would make them: one common variance
        d0, s0 = math.inf, math.exp(mean)
    if d0 > pooled:  # cannot be known better than the cells that estimated it
        d0 = pooled
        s0 = float(np.sum(d * s2) / pooled)
    return Prior(s2=s0, df=d0, cells=int(s2.size), pooled_df=pooled)


def trigamma_inverse(x: float) -> float:
    """y with trigamma(y) = x, by Newton's method from limma's starting point."""
    from scipy.special import polygamma

    if x > 1e7:
        return 1 / math.sqrt(x)
    if x < 1e-6:
        return 1 / x
    y = 0.5 + 1 / x
    for _ in range(50):
        tri = float(polygamma(1, y))
        step = tri * (1 - tri / x) / float(polygamma(2, y))
        y += step
        if -step / y < 1e-8:
            break
    return y
