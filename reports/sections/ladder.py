"""The baseline ladder section: how much of the speed-up is OpenVINO's own (issue 16).

Shown only for sessions that timed at least eager PyTorch and OpenVINO on the ladder's rungs
(``accelbench run --ladder`` or the ``ladder`` preset); the numbers come from
``reports.ladder``, which this module only lays out.
"""

from __future__ import annotations

from reports.document import Figure, Heading, Paragraph, table
from reports.ladder import depth_trend, ladder_rows, plot_ladder
from reports.sections import section
from reports.sections.core import source
from reports.tables import Report


def _x(v: float | None) -> str:
    return f"{v:.2f}×" if v else ""


def _pct(v: float | None) -> str:
    return f"{v:.0%}" if v is not None else ""


@section("ladder", order=45, terminal=True)  # --ladder asks for exactly this: show it
def ladder(report: Report):
    rows = [r for r in ladder_rows(report) if r.total_speedup and len(
        [g for g in r.rungs if g.median_ms]) > 2]
    if not rows:
        return None
    kinds = [g.adds for g in rows[0].rungs[1:]]
    table_rows = []
    for r in rows:
        row = {"spec": r.spec, "total": _x(r.total_speedup), "best": r.best_torch or "",
               "ov": _x(r.openvino_over_best_torch)}
        row.update({k: _pct(r.share_of(k)) for k in kinds})
        row["ms"] = " / ".join(f"{g.median_ms:.2f}" if g.median_ms else "-" for g in r.rungs)
        table_rows.append(row)
    cols = ([("spec", "spec"), ("total", "eager -> OpenVINO", True),
             ("best", "fastest PyTorch rung"), ("ov", "OpenVINO over it", True)]
            + [(k, f"share: {k}", True) for k in kinds]
            + [("ms", "median ms per rung: " + " / ".join(g.label for g in rows[0].rungs))])
    trend = depth_trend(rows)
    blocks = [
        Heading("Where the speed-up comes from: the PyTorch baseline ladder"),
        Paragraph("Each PyTorch rung's share is its gain (in log latency, so shares add up to "
                  "the whole eager-to-OpenVINO speed-up) over the best rung below it; "
                  "OpenVINO's own share is its speed-up over the fastest PyTorch rung, and is "
                  "negative where PyTorch wins."),
        table(cols, table_rows),
        Figure("ladder", lambda path: plot_ladder(rows, path, source=source(report)),
               caption=source(report)),
    ]
    if trend:
        blocks.append(Paragraph("OpenVINO's own share with depth: " + "; ".join(
            f"{fam} {t['trend']} ({', '.join(f'd{d}: {s:.0%}' for d, s in t['points'])})"
            for fam, t in sorted(trend.items())) + "."))
    return blocks
