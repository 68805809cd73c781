"""The study's axes: resolved parameters, speed-up per family and depth, correlations.

Why resolved values: specs are canonical and leave defaults out (``plain:res=128`` is depth 8),
so grouping by the text would put depth 8 nowhere. The worker stores the family's full values
in each cell's ``meta["resolved"]``; older stores lack it, and then ``archs.resolve`` (which
imports torch) fills them in once per spec.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from .summary import Z95, SummaryRow, summarize_speedups
from .tables import Report, SpeedupRow

# The six macro-architecture design patterns of the study (Abbasi et al. 2021).
PATTERNS = ("plain", "residual", "bottleneck", "dwbottleneck", "dwseparable", "dense")


def family(spec: str) -> str:
    return spec.split(":", 1)[0]


@functools.lru_cache(maxsize=512)
def _resolve_spec(spec: str) -> tuple[tuple[str, Any], ...]:
    try:
        import archs

        return tuple(archs.resolve(spec).items())
    except Exception:  # a user's model or a retired family: no parameters to show
        return ()


def resolved(report: Report, spec: str) -> dict[str, Any]:
    """The full parameter values of ``spec`` (stored with its cells, else re-derived)."""
    for c in report.cells:
        if c.key.spec == spec and isinstance(c.meta.get("resolved"), Mapping):
            return dict(c.meta["resolved"])
    if spec.startswith("@"):
        return {}
    return dict(_resolve_spec(spec))


def depth_of(params: Mapping[str, Any]) -> float | None:
    v = params.get("depth", params.get("cells"))
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def width_of(params: Mapping[str, Any]) -> float | None:
    v = params.get("width", params.get("channels"))
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


@dataclass(frozen=True)
class SpeedupPoint:
    row: SpeedupRow
    family: str
    params: Mapping[str, Any]


def points(report: Report) -> list[SpeedupPoint]:
    return [SpeedupPoint(r, family(r.spec), resolved(report, r.spec)) for r in report.speedups]


def per_family(report: Report) -> list[tuple[str, SummaryRow]]:
    """Geometric-mean speed-up of each family (with the same hierarchical CI as the summary)."""
    by: dict[str, list[SpeedupRow]] = {}
    for p in points(report):
        by.setdefault(p.family, []).append(p.row)
    out = []
    for fam, rows in by.items():
        out += [(fam, s) for s in summarize_speedups(rows)]
    return sorted(out, key=lambda fs: -fs[1].geomean)


def sweep(report: Report, axis: str, *, fixed: Sequence[str] = ()) -> dict[str, list[SpeedupPoint]]:
    """Per design pattern (``PATTERNS``), the points that vary ``axis`` ("depth" or "width");
    a pattern with fewer than two values on the axis is no sweep and is left out."""
    get = depth_of if axis == "depth" else width_of
    by: dict[str, list[SpeedupPoint]] = {}
    for p in points(report):
        if p.family in PATTERNS and get(p.params) is not None:
            by.setdefault(p.family, []).append(p)
    out = {}
    for fam, ps in by.items():
        # Hold the other axis at its most common value so depth and width are not mixed.
        other = width_of if axis == "depth" else depth_of
        vals = [other(p.params) for p in ps]
        common = max(set(vals), key=vals.count)
        ps = [p for p in ps if other(p.params) == common]
        # and the batch at its smallest (a batch sweep's specs are no depth or width steps)
        low = min(_batch(p.params) for p in ps)
        ps = [p for p in ps if _batch(p.params) == low]
        if len({get(p.params) for p in ps}) >= 2:
            out[fam] = sorted(ps, key=lambda p: get(p.params) or 0.0)
    return out


def _batch(params: Mapping[str, Any]) -> int:
    b = params.get("batch", 1)
    return b if isinstance(b, int) and not isinstance(b, bool) else 1


@dataclass(frozen=True)
class Correlation:
    n: int
    pearson: float
    pearson_ci: tuple[float, float]
    spearman: float
    spearman_ci: tuple[float, float]


def correlate(x: Sequence[float], y: Sequence[float]) -> Correlation | None:
    """Pearson (of logs: latency and FLOPs span decades) and Spearman, with 95% CIs by the
    Fisher z-transform (Spearman's with the Fieller-Hartley-Pearson variance 1.06/(n-3))."""
    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if len(x) < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    r = float(sps.pearsonr(x, y).statistic)
    rho = float(sps.spearmanr(x, y).statistic)
    return Correlation(len(x), r, _fisher(r, len(x), 1.0), rho, _fisher(rho, len(x), 1.06))


def _fisher(r: float, n: int, var: float) -> tuple[float, float]:
    z = math.atanh(max(min(r, 0.999999), -0.999999))
    half = Z95 * math.sqrt(var / (n - 3))
    return (math.tanh(z - half), math.tanh(z + half))


def latency_flops(report: Report) -> dict[str, list[tuple[float, float, str]]]:
    """Per backend, (FLOPs, median ms, spec) of done cells that carry both."""
    out: dict[str, list[tuple[float, float, str]]] = {}
    for c in report.cells:
        if c.status == "done" and c.flops and c.median_ms and c.flops > 0 and c.median_ms > 0:
            out.setdefault(c.key.backend, []).append((c.flops, c.median_ms, c.key.spec))
    return out


def correlations(report: Report) -> dict[str, Correlation]:
    out = {}
    for b, pts in latency_flops(report).items():
        c = correlate([p[0] for p in pts], [p[1] for p in pts])
        if c is not None:
            out[b] = c
    return out


# Names the counter sources give last-level-cache misses (cachegrind, perf), most specific first.
LLC_MISS_KEYS = ("llc_misses", "LLd_misses", "LL_misses", "LLC-load-misses", "cache-misses")


def llc_misses(counters: Any) -> float | None:
    """Measured LLC misses from a cell's ``meta.counters`` (or its ``events``/``counts``), if a
    measuring source (not the analytic model) produced any."""
    if not isinstance(counters, Mapping) or counters.get("source") == "model":
        return None
    for where in (counters, counters.get("events"), counters.get("counts")):
        if isinstance(where, Mapping):
            for k in LLC_MISS_KEYS:
                v = where.get(k)
                if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
                    return float(v)
    return None


# The per-inference cache figures whose relation to latency the cache section tests: (key in
# meta.counters, words). The model's misses are its DRAM bytes in lines, so it is tested on one
# figure; measuring sources (cachegrind, perf) on LLC and on L1D misses, because where everything
# fits the LLC (the paper's sweeps in a 32 MiB L3) LLC misses sit at 0 and L1D misses still move.
MODEL_FIGURES = (("dram_bytes", "modelled DRAM bytes per inference"),)
MEASURED_FIGURES = (("misses_per_inference", "LLC misses per inference"),
                    ("l1d_misses_per_inference", "L1D misses per inference"))


@dataclass(frozen=True)
class CacheTrack:
    backend: str
    source: str
    figure: str
    correlation: Correlation | None
    zeros: int  # cells whose figure is 0 (nothing spills): outside the log-log fit
    cells: int = 0  # cells in the fit (figure > 0)


def cache_latency(report: Report) -> list[CacheTrack]:
    """Per backend and counter source: does a cache figure track latency across the session's
    specs? Log-log correlations as ``correlate`` gives them, on ``MODEL_FIGURES`` for the model
    and ``MEASURED_FIGURES`` for every other source."""
    groups: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for c in report.cells:
        counters = c.meta.get("counters")
        if c.status != "done" or not c.median_ms or not isinstance(counters, Mapping):
            continue
        source = str(counters.get("source") or "")
        if not source or "error" in counters:
            continue
        for key, words in MODEL_FIGURES if source == "model" else MEASURED_FIGURES:
            v = counters.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
                groups.setdefault((c.key.backend, source, words), []).append((float(v), c.median_ms))
    out = []
    for (backend, source, words), pts in sorted(groups.items()):
        live = [(v, ms) for v, ms in pts if v > 0]
        corr = correlate([v for v, _ in live], [ms for _, ms in live]) if live else None
        out.append(CacheTrack(backend, source, words, corr, len(pts) - len(live), len(live)))
    return out
