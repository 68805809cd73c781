"""The session level: how far a whole session lands from the next one on the same machine.

Why a fourth level: a cell's nested interval resamples its process pairs and their blocks, all
timed within one session of minutes. What a shared machine's host does over tens of minutes to
hours (its other tenants, the frequency it grants, where the VM's memory sits) moves every
process of a session together, so no amount of sampling inside the session sees it. Two
sessions of the quick preset on one VM, each cell's interval honest at the process level, still
disagreed by 7–23% on a quarter of their cells (the A/A runs in the closing notes of issue 21):
a repeat run landed outside intervals of ±3%.

A machine's A/A run measures the level directly. For each cell the two sessions share,
``d = log(b / a)`` has variance ``se_a² + se_b² + 2 σ²``, where ``se`` is each session's
log-scale standard error and ``σ`` the session level's standard deviation. ``calibrate`` fits
``σ`` to a coverage target, not a moment, because the session differences are heavy-tailed
(most cells agree within their intervals, a few move by 20%) and a variance fitted to the bulk
would leave the tail outside. Each A/A cell needs ``σ_i² = max(0, ((d/1.96)² - se_a² - se_b²) /
2)`` to lie inside ``±1.96 · sqrt(se_a² + se_b² + 2 σ²)``; ``σ²`` is the ``k``-th smallest of
them with ``k = ceil(0.95 (n + 1))``, split-conformal prediction's rank: a new cell,
exchangeable with the A/A's, is then covered with probability at least ``k / (n + 1) >= 95%``
(the in-sample share would promise 95% and deliver ``k / (n + 1)``, 91% with 22 cells). With
fewer than 19 cells ``k`` is capped at ``n`` and the promise is ``n / (n + 1)``: ``Term.coverage``
says it.

Two intervals use it (``term_interval``):

* a comparison of two sessions adds ``σ²`` of each session's machine to the change's variance
  (``reports.compare``), so an A/A on a machine whose term is known is flagged at about the
  rate its coverage promises;
* a report's ``repeat95`` is where a repeat session of the same command on this machine lands
  95% of the time: ``value · exp(± t · sqrt(2 se² + 2 σ²))`` (the repeat has its own sampling
  error and its own session draw; ``se`` stands in for both).

The term is one figure per metric (latency, speed-up) and machine, kept with the machine's A/A
record (``harness.machine.noise``); its degrees of freedom are the A/A cells behind it less one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

COVERAGE = 0.95
Z95 = 1.959963984540054
METRICS = ("latency", "speedup")


@dataclass(frozen=True)
class Term:
    """One metric's session-level standard deviation (log scale) and the A/A cells behind it."""

    sd: float
    cells: int
    covered: int  # A/A cells inside their interval once the term is added (in-sample)

    @property
    def df(self) -> float:
        return float(max(self.cells - 1, 1))

    @property
    def coverage(self) -> float:
        """The share of a new A/A's cells its intervals are expected to cover (conformal)."""
        return min(math.ceil(COVERAGE * (self.cells + 1)), self.cells) / (self.cells + 1)

    def as_json(self) -> dict[str, Any]:
        return {"sd": self.sd, "cells": self.cells, "covered": self.covered,
                "coverage": self.coverage}

    @classmethod
    def read(cls, data: Any) -> Term | None:
        if not isinstance(data, Mapping):
            return None
        sd, cells = data.get("sd"), data.get("cells")
        if not isinstance(sd, (int, float)) or not isinstance(cells, int) or sd < 0 or cells < 2:
            return None
        return cls(float(sd), cells, int(data.get("covered") or 0))


def calibrate(log_changes: Sequence[float], se2: Sequence[float],
              coverage: float = COVERAGE) -> Term | None:
    """The σ ≥ 0 whose intervals ``|d| <= 1.96 sqrt(se2 + 2σ²)`` cover a new A/A cell with
    probability ``coverage`` (split-conformal rank over the A/A's cells; ``log_changes``:
    log(b/a) per cell; ``se2``: se_a² + se_b²). None with fewer than two usable cells."""
    d = np.abs(np.asarray(log_changes, dtype=float))
    v = np.asarray(se2, dtype=float)
    ok = np.isfinite(d) & np.isfinite(v) & (v >= 0)
    d, v = d[ok], v[ok]
    if len(d) < 2:
        return None
    need = np.maximum(0.0, ((d / Z95) ** 2 - v) / 2.0)  # σ² each cell needs to be covered
    k = min(math.ceil(coverage * (len(d) + 1)), len(d))  # conformal rank
    s2 = float(np.sort(need)[k - 1])
    covered = int(np.sum(d <= Z95 * np.sqrt(v + 2 * s2) * (1 + 1e-12)))
    return Term(math.sqrt(s2), int(len(d)), covered)


def widened(log_se: float | None, df: float | None, term: Term | None
            ) -> tuple[float | None, float | None]:
    """A session estimate's log-scale error and degrees of freedom with the session level
    added (Welch–Satterthwaite for the df); unchanged without a term or an error."""
    if term is None or log_se is None:
        return log_se, df
    a, b = float(log_se) ** 2, term.sd ** 2
    if b == 0:
        return log_se, df
    df_a = float(df or 1e6)
    denom = a * a / df_a + b * b / term.df
    return math.sqrt(a + b), ((a + b) ** 2 / denom if denom > 0 else df_a)


def repeat_interval(point: float | None, log_se: float | None, df: float | None,
                    term: Term | None) -> tuple[float, float] | None:
    """Where a repeat session's figure lands 95% of the time: ``point · exp(± t · sqrt(2 se² +
    2 σ²))``; None without a term, a point or an error."""
    if term is None or point is None or log_se is None or not point > 0:
        return None
    from scipy import stats as _st

    se, f = widened(log_se, df, term)
    assert se is not None
    t = float(_st.t.ppf(0.975, f or 1e6))
    half = t * math.sqrt(2.0) * se
    return point * math.exp(-half), point * math.exp(half)


def terms_of(record: Mapping[str, Any] | None) -> dict[str, Term]:
    """The terms a machine's noise record keeps (``harness.machine.noise``), by metric."""
    got = (record or {}).get("session_sd")
    if not isinstance(got, Mapping):
        return {}
    return {m: t for m in METRICS if (t := Term.read(got.get(m))) is not None}
