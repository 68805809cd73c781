"""The baseline ladder section: how much of the speed-up is OpenVINO's own (issue 16).

Shown only for sessions that timed at least eager PyTorch and OpenVINO on the ladder's rungs
(``accelbench run --ladder`` or the ``ladder`` preset); the numbers come from
``reports.ladder``, which this module only lays out.
"""

from __future__ import annotations

from reports.document import Figure, Heading, Paragraph, table
from reports.ladder import depth_trend, ladder_rows, plot_ladder, row_label
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
    several = len({(r.precision, r.threads) for r in rows}) > 1
    table_rows = []
    for r in rows:
        row = {"spec": row_label(r, several), "total": _x(r.total_speedup), "best": r.best_torch or "",
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
                  "negative where PyTorch wins. The ladder divides median latencies, so its "
                  "eager-to-OpenVINO ratio can differ from the Speed-ups table, which reads "
                  "each side at its quiet state."),
        table(cols, table_rows),
        Figure("ladder", lambda path: plot_ladder(rows, path, source=source(report)),
               caption=source(report)),
    ]
    others = [(r, g) for r in rows for g in r.others]
    if others:
        blocks += [
            Paragraph("Beyond the chain: int8 and the other runtimes a user might pick, each "
                      "against eager PyTorch and against the fastest PyTorch rung at the row's "
                      "precision (int8 rungs stand against the f32 row). An int8 "
                      "rung over its own runtime's f32 is precision's part of the gain; OpenVINO "
                      "int8 over PyTorch int8 is the runtime's."),
            table([("spec", "spec"), ("rung", "rung"), ("ms", "median ms [95% CI]", True),
                   ("eager", "over eager", True), ("best", "over fastest PyTorch", True),
                   ("note", "note")],
                  [{"spec": row_label(r, several), "rung": f"{g.label} ({g.precision})",
                    "ms": (f"{g.median_ms:.3f} [{g.ci95_ms[0]:.3f}, {g.ci95_ms[1]:.3f}]"
                           if g.median_ms and g.ci95_ms[0] else ""),
                    "eager": _x(g.over_eager), "best": _x(g.over_best_torch),
                    "note": g.note or ""} for r, g in others]),
        ]
    if trend:
        blocks.append(Paragraph("OpenVINO's own share with depth: " + "; ".join(
            f"{fam} {t['trend']} ({', '.join(f'd{d}: {s:.0%}' for d, s in t['points'])})"
            for fam, t in sorted(trend.items())) + "."))
    return blocks
