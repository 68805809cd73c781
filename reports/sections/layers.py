"""Time by layer kind per backend, for sessions run with ``--layers`` (issue 11).

The joining and charging rules are ``accelbench explain``'s (``harness.layers``), applied to the
per-layer tables stored in each cell by ``reports.layers``; this module only lays them out.
"""

from __future__ import annotations

from reports import fmt
from reports.document import Figure, Heading, Paragraph, table
from reports.layers import layer_kind_rows, plot_layer_kinds
from reports.sections import section
from reports.sections.core import source
from reports.tables import Report
from reports.views import latency_view


@section("layers", order=100)
def layers(report: Report):
    report = latency_view(report)
    rows = layer_kind_rows(report.cells, baseline=report.baseline)
    if not rows:
        return None
    backends = sorted({b for r in rows for b in r["backends"]})
    out = []
    for r in rows:
        row = {"spec": r["spec"], "kind": r["kind"],
               "saved": f"{r['saved_ms']:+.2f}" if r.get("saved_ms") is not None else ""}
        for b in backends:
            row[b] = fmt.ms(r["ms"].get(b))
            share = (r.get("share") or {}).get(b)
            row[f"{b}%"] = f"{share:.0%}" if share is not None else ""
        out.append(row)
    cols: list[tuple[str, str] | tuple[str, str, bool]] = [("spec", "spec"), ("kind", "layer kind")]
    for b in backends:
        cols += [(b, f"{b} ms", True), (f"{b}%", "share", True)]
    cols.append(("saved", "ms saved", True))
    coverage: dict[str, list[float]] = {}
    for r in rows:
        for b, v in (r.get("coverage") or {}).items():
            if v is not None:
                coverage.setdefault(b, []).append(v)
    blocks = [Heading("Time by layer kind"),
              Paragraph("Per-layer medians from a profiled pass after the timed blocks (it never "
                        "changes a reported latency). A fused OpenVINO primitive is charged to "
                        "the kind of its heaviest module; `accelbench explain SPEC` shows the "
                        "fused groups and anything unmatched.")]
    low = {b: v for b, v in coverage.items() if any(c < 0.8 or c > 1.2 for c in v)}
    if low:
        blocks.append(Paragraph("Coverage (layer sum / whole-model time) outside 80-120%: " +
                                "; ".join(f"{b} {min(v):.0%}-{max(v):.0%}" for b, v in low.items())
                                + ". Read the per-kind split of those backends with care.",
                                tone="warning"))
    blocks += [table(cols, out),
               Figure("layer_kinds", lambda path: plot_layer_kinds(rows, path, source=source(report)),
                      caption=source(report))]
    return blocks
