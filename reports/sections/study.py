"""The study's questions: speed-up per family, per depth and width, overlap, FLOPs vs latency.

Tables show the *resolved* parameter values as columns (specs omit defaults), so a reader does
not need to know that ``plain:res=128`` is depth 8.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reports import fmt, trends
from reports.document import Figure, Heading, Paragraph, table
from reports.figures.core import plot_latency_vs_flops
from reports.figures.study import overlap_points, plot_overlap, plot_sweep, plot_working_set
from reports.sections import section
from reports.sections.core import source
from reports.tables import Report
from reports.views import labelled, latency_view

_AXES = ("depth", "width", "res", "batch", "kernel", "stride", "match", "cells", "channels", "setting",
         "genotype")


@section("families", order=25, terminal=True)
def families(report: Report):
    fams = trends.per_family(report)
    if not any(s.n_specs > 1 for _, s in fams):  # one spec per family: the speed-up table says it
        return None
    rows = [{"family": f, "candidate": s.candidate, "scenario": s.scenario,
             "geomean": fmt.times(s.geomean),
             "ci": fmt.ci(*s.ci95, fmt=fmt.ratio), "n": str(s.n_specs),
             "best": f"{s.best[0]} ({fmt.times(s.best[1])})"} for f, s in fams]
    cols = [("family", "family"), ("candidate", "candidate"), ("scenario", "scenario"),
            ("geomean", "geomean speed-up", True), ("ci", "95% CI", True),
            ("n", "specs", True), ("best", "best spec")]
    if not labelled(report):  # latency only: the report reads as it always did
        cols.remove(("scenario", "scenario"))
    return [Heading("Speed-up per family"), table(cols, rows)]


@section("sweeps", order=50)
def sweeps(report: Report):
    report = latency_view(report)
    pts = trends.points(report)
    if not pts:
        return None
    keys = [k for k in _AXES if any(k in p.params for p in pts)]
    if not keys:  # no spec with known parameters (user models, unknown families)
        return None
    rows = []
    for p in sorted(pts, key=lambda p: (p.family, trends.depth_of(p.params) or 0,
                                        trends.width_of(p.params) or 0, p.row.spec)):
        r = {"family": p.family, "spec": p.row.spec, "candidate": p.row.candidate,
             "speedup": fmt.times(p.row.speedup), "ci": fmt.ci(*p.row.ci95, fmt=fmt.ratio)}
        r.update({k: "" if p.params.get(k) is None else str(p.params[k]) for k in keys})
        rows.append(r)
    cols = [("family", "family")] + [(k, k, True) for k in keys] + [
        ("spec", "spec"), ("candidate", "candidate"), ("speedup", "speed-up", True),
        ("ci", "95% CI", True)]
    src = source(report)
    blocks = [Heading("Speed-up by family, depth and width"),
              Paragraph("Parameter columns are the resolved values (defaults filled in)."),
              table(cols, rows),
              Figure("speedup_vs_depth", lambda p: plot_sweep(report, "depth", p), src),
              Figure("speedup_vs_width", lambda p: plot_sweep(report, "width", p), src),
              *[Figure(f"working_set_vs_{axis}", _working_set(report, axis),
                       src + " Working set from the analytic model unless a cell has measured "
                       "LLC misses.") for axis in ("depth", "width")]]
    if len(overlap_points(report)) >= 2:
        blocks.append(Figure("speedup_vs_overlap", lambda p: plot_overlap(report, p), src))
    return blocks


def _working_set(report: Report, axis: str) -> Callable[[Path], Path | None]:
    return lambda path: plot_working_set(report, axis, path)


@section("flops", order=55)
def flops(report: Report):
    report = latency_view(report)
    if not trends.latency_flops(report):
        return None
    corr = trends.correlations(report)
    fig = Figure("latency_vs_flops", lambda p: plot_latency_vs_flops(report, p), source(report))
    if not corr:
        return [Heading("Latency against FLOPs"), fig]
    rows = [{"backend": b, "n": str(c.n), "pearson": f"{c.pearson:.3f}",
             "pearson_ci": fmt.ci(*c.pearson_ci, fmt=lambda v: f"{v:.3f}"),
             "spearman": f"{c.spearman:.3f}",
             "spearman_ci": fmt.ci(*c.spearman_ci, fmt=lambda v: f"{v:.3f}")}
            for b, c in corr.items()]
    return [Heading("Do FLOPs predict latency?"),
            Paragraph("Correlation of log FLOPs with log median latency over the done cells "
                      "of each backend; 95% CIs by the Fisher z-transform."),
            table([("backend", "backend"), ("n", "cells", True), ("pearson", "Pearson r", True),
                   ("pearson_ci", "95% CI", True), ("spearman", "Spearman ρ", True),
                   ("spearman_ci", "95% CI", True)], rows), fig]
