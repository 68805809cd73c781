"""One section per design axis of issue 27 (``reports.axes.AXES``): factorised convolutions,
deep against shallow, residual against plain, wide sparse layers, the activation.

Each appears only when the session holds a sweep of its axis, and says three things: the
speed-up at every point with its 95% CI (beside both latencies and the FLOPs), latency against
FLOPs for those cells, and one verdict sentence per sweep (grows / shrinks / holds, and
whether the change is significant), as the paper section states its verdicts.
"""

from __future__ import annotations

from reports import fmt
from reports.axes import AXES, Axis, Point, Sweep, subset, sweeps, verdict
from reports.document import Bullets, Figure, Heading, Paragraph, table
from reports.figures.core import plot_latency_vs_flops
from reports.sections import section
from reports.sections.core import source
from reports.tables import Report
from reports.views import latency_view

_ORDER = 51.0  # after the depth/width sweeps (50), before latency against FLOPs (55)


def _num(cell, key: str) -> float | None:
    v = None if cell is None else cell.meta.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _row(ax: Axis, s: Sweep, q: Point) -> dict[str, str]:
    props = (q.cand.meta.get("properties") if q.cand is not None else None) or {}
    packed = props.get("sparse_weights_packed")
    params, nonzero = _num(q.base, "params"), _num(q.base, "nonzero_params")
    return {
        "group": s.label, "value": ax.label(q.value), "spec": q.row.spec,
        "flops": fmt.flops(q.base.flops if q.base else None),
        "params": fmt.si(params, "") if params is not None else "—",
        "nonzero": fmt.si(nonzero, "") if nonzero is not None else "—",
        "packed": "" if packed is None else ("yes" if packed else "no"),
        "base_ms": fmt.ms(q.base.median_ms if q.base else None),
        "cand_ms": fmt.ms(q.cand.median_ms if q.cand else None),
        "candidate": q.row.candidate,
        "speedup": fmt.times(q.row.speedup), "ci": fmt.ci(*q.row.ci95, fmt=fmt.ratio),
    }


def _reading(report: Report) -> str:
    """How the table's speed-ups were read, beside its median latency columns."""
    quiet = report.quiet_quantile()
    if quiet is None:
        return "baseline median / candidate median"
    return (f"baseline / candidate, each at its quiet state ({round(100 * quiet)}th percentile; "
            "the latency columns are medians; the ratio of medians where process pairs cannot "
            "be paired)")


def _blocks(report: Report, ax: Axis):
    found = sweeps(report, ax)
    if not found:
        return None
    rows = [_row(ax, s, q) for s in found for q in s.points]
    cols = [("group", "sweep"), ("value", ax.key), ("spec", "spec"), ("flops", "FLOPs", True),
            ("params", "params", True)]
    if ax.key == "sparsity":
        cols += [("nonzero", "non-zero params", True)]
        if any(r["packed"] for r in rows):
            cols += [("packed", "weights packed sparse")]
    cols += [("base_ms", f"{report.baseline} ms", True), ("candidate", "candidate"),
             ("cand_ms", "candidate ms", True), ("speedup", "speed-up", True),
             ("ci", "95% CI", True)]
    verdicts = [verdict(s) for s in found]
    words = sorted({w for w, _ in verdicts})
    sub = subset(report, found)
    return [Heading(ax.title),
            Paragraph(ax.question + f" Speed-up = {_reading(report)}; CIs at "
                      "95%. Verdict: the first point against the last along the axis (for the "
                      "activation, the highest against the lowest); a change is significant "
                      "when the two CIs do not overlap."),
            Bullets(tuple(s for _, s in verdicts)),
            Paragraph(f"Over {len(found)} sweep{'s' * (len(found) != 1)}: "
                      + ", ".join(f"{sum(w == x for w, _ in verdicts)} {x}" for x in words) + "."),
            table(cols, rows),
            Figure(f"axis_{ax.name}_latency_vs_flops",
                   lambda path: plot_latency_vs_flops(sub, path),
                   source(report) + f" Cells of the {ax.name} sweeps only.")]


def _register(i: int, ax: Axis) -> None:
    def axis_section(report: Report):
        report = latency_view(report)
        return _blocks(report, ax)

    axis_section.__qualname__ = f"axis_section_{ax.name}"
    section(f"axis-{ax.name}", order=_ORDER + i / 10)(axis_section)


for _i, _ax in enumerate(AXES):
    _register(_i, _ax)
