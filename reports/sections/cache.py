"""Cache behaviour per spec, from each cell's ``meta.counters`` (today: the analytic model),
(time by layer kind is ``reports.sections.layers``).

The source is printed on every row: a modelled figure must never read as a measured one.
"""

from __future__ import annotations

from collections.abc import Mapping

from reports import fmt, trends
from reports.document import Heading, Paragraph, table
from reports.sections import section
from reports.tables import Report
from reports.views import latency_view

_KEYS = (("bytes_touched", "bytes touched", "B"), ("dram_bytes", "DRAM traffic", "B"),
         ("llc_misses", "LLC misses", ""), ("cache_served_fraction", "served by cache", "%"),
         ("layers_l2", "layers in L2", ""), ("layers_l3", "layers in L3", ""),
         ("layers_dram", "layers from DRAM", ""),
         ("misses_per_inference", "LLC misses / inference", "n"),
         ("l1d_misses_per_inference", "L1D misses / inference", "n"),
         ("instructions_per_inference", "instructions / inference", "n"))


def _value(v, unit: str) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return ""
    if unit == "n":  # counts per inference: simulated or measured, or the model's lines
        return f"{v:,.0f}"
    return fmt.si(v, "B") if unit == "B" else f"{v:.0%}" if unit == "%" else f"{v:g}"


@section("cache", order=90)
def cache(report: Report):
    report = latency_view(report)  # cache figures per inference set beside latency
    rows, seen = [], set()
    for c in report.cells:
        counters = c.meta.get("counters")
        if not isinstance(counters, Mapping) or not counters.get("source"):
            continue
        key = (c.key.spec, counters.get("source"), c.key.backend if counters.get("source") != "model"
               else "")  # the model's figures are the same for every backend: show them once
        if key in seen:
            continue
        seen.add(key)
        row = {"spec": c.key.spec, "backend": key[2] or "all", "source": str(counters["source"]),
               "ws": fmt.si(c.meta.get("peak_working_set_bytes"), "B")}
        row.update({k: _value(counters.get(k), unit) for k, _, unit in _KEYS})
        row["llc_misses"] = _value(trends.llc_misses(counters), "")
        rows.append(row)
    if not rows:
        return None
    keys = [k for k, _, _ in _KEYS if any(r[k] for r in rows)]
    cols = [("spec", "spec"), ("backend", "backend"), ("source", "source"),
            ("ws", "peak working set", True)] + [(k, t, True) for k, t, _ in _KEYS if k in keys]
    return [Heading("Cache behaviour"),
            Paragraph("source: model = the analytic working-set model (an estimate from layer "
                      "and cache sizes), cachegrind = simulated, perf = hardware counters."),
            table(cols, rows), *_tracking(report)]


def _tracking(report: Report) -> list:
    """Does each cache figure track latency across the specs? One row per backend and source."""
    tracks = trends.cache_latency(report)
    if not tracks:
        return []
    rows = []
    for t in tracks:
        c = t.correlation
        rows.append({
            "backend": t.backend, "source": t.source, "figure": t.figure,
            "n": str(t.cells),
            "r": f"{c.pearson:.2f} [{c.pearson_ci[0]:.2f}, {c.pearson_ci[1]:.2f}]" if c else "",
            "rho": f"{c.spearman:.2f} [{c.spearman_ci[0]:.2f}, {c.spearman_ci[1]:.2f}]" if c else "",
            "zeros": str(t.zeros) if t.zeros else "",
            "verdict": _verdict(c),
        })
    return [Paragraph("Do the cache figures track latency? Log-log correlation of each cell's "
                      "cache figure with its median latency, across the session's specs (95% "
                      "CIs by Fisher's z). Cells whose figure is 0 (nothing left the cache) are "
                      "outside the fit and counted; fewer than 4 cells give no correlation. "
                      "Size drives both latency and misses, so a correlation here says the "
                      "figures move together, not that misses cause the time."),
            table([("backend", "backend"), ("source", "source"), ("figure", "figure"),
                   ("n", "cells", True), ("r", "Pearson r (log-log)", True),
                   ("rho", "Spearman ρ", True), ("zeros", "zero", True),
                   ("verdict", "tracks latency?")], rows)]


def _verdict(c: trends.Correlation | None) -> str:
    if c is None:
        return "too few cells"
    if c.spearman_ci[0] > 0:
        return "yes" if c.spearman_ci[0] > 0.5 else "weakly"
    return "no (CI includes 0)" if c.spearman_ci[1] > 0 else "inversely"
