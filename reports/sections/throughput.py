"""Throughput: images/s per spec, batch and backend, the throughput speed-up beside the latency
one, a sentence per family on whether the candidate's edge grows with batching, and the curve.

Left out unless the session holds throughput or batched cells (``reports.throughput.in_scope``);
the numbers come from ``reports.throughput``, the figure from ``reports.figures.throughput``.
"""

from __future__ import annotations

from reports import fmt
from reports.document import Bullets, Figure, Heading, Paragraph, table
from reports.figures.throughput import plot_throughput
from reports.sections import section
from reports.sections.core import source
from reports.tables import Report, SpeedupRow
from reports.throughput import (
    KNEE,
    ThroughputRow,
    curves,
    family_edges,
    knee,
    speedup_pairs,
    throughput_rows,
)
from reports.views import several


def _rate(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _row(r: ThroughputRow, knees: dict) -> dict[str, str]:
    lo, hi = r.ci95
    curve = (r.spec, r.backend, r.precision, r.threads, r.scenario)
    return {"spec": r.spec, "batch": str(r.batch), "scenario": r.scenario, "backend": r.backend,
            "prec_thr": f"{r.precision}/{r.threads}", "status": r.status,
            "ips": _rate(r.images_per_s), "ci": fmt.ci(lo, hi, fmt=_rate),
            "ips_ci": f"{_rate(r.images_per_s)} {fmt.ci(lo, hi, fmt=_rate)}",
            "requests": "—" if r.requests is None else str(r.requests),
            "streams": "—" if r.streams is None else str(r.streams),
            "flight": "—" if r.in_flight is None else f"{r.in_flight:.1f}",
            "req_streams": f"{'—' if r.requests is None else r.requests}/"
                           f"{'—' if r.streams is None else r.streams}",
            "p50": fmt.ms(r.request_p50_ms), "p99": fmt.ms(r.request_p99_ms),
            "p50_p99": f"{fmt.ms(r.request_p50_ms)} / {fmt.ms(r.request_p99_ms)}",
            "knee": "knee" if knees.get(curve) == r.batch else ""}


def _speedup(r: SpeedupRow | None, why: str | None) -> str:
    if r is None:
        return f"not reported ({why.split(':')[0]})" if why else "—"
    return f"{fmt.times(r.speedup)} {fmt.ci(*r.ci95, fmt=fmt.ratio)}"


@section("throughput", order=42, terminal=True)
def throughput(report: Report):
    rows = throughput_rows(report)
    if not rows:
        return None
    knees = {k: knee([(r.batch, r.images_per_s) for r in v]) for k, v in curves(rows).items()
             if len(v) >= 2}
    page, term = "page", "terminal"
    cols = [("spec", "spec"), ("batch", "batch", True)]
    if several(report):  # one scenario: no column to tell them apart
        cols.append(("scenario", "scenario"))
    cols += [("backend", "backend"), ("prec_thr", "prec/thr", False, page),
            ("ips", "images/s", True, page), ("ci", "95% CI", True, page),
            ("ips_ci", "images/s [95% CI]", True, term),
            ("requests", "requests in flight", True, page), ("streams", "streams", True, page),
            ("flight", "mean in flight", True, page),
            ("req_streams", "requests/streams", True, term),
            ("p50", "request p50 ms", True, page), ("p99", "request p99 ms", True, page),
            ("p50_p99", "request p50/p99 ms", True, term), ("knee", "knee"),
            ("status", "status")]
    pairs = speedup_pairs(report)
    sp_rows = [{"spec": p.spec, "batch": str(p.batch), "candidate": p.candidate,
                "latency": _speedup(p.latency, p.latency_why),
                "throughput": _speedup(p.throughput, p.throughput_why)} for p in pairs]
    edges = family_edges(report)
    blocks = [
        Heading("Throughput"),
        Paragraph("Images finished per second of wall time. latency rows: one request at a "
                  "time, images/s = batch / median latency; throughput rows: as many images per "
                  "second as the backend finishes, with the runtime's own streams and several "
                  "requests in flight where it has an asynchronous queue, batched calls one at "
                  "a time elsewhere. 95% CIs as for latency (the cell's processes, then its "
                  "blocks). A request's latency is that of one call of a batch of images; the knee "
                  f"is the smallest batch reaching {KNEE:.0%} of its curve's best images/s."),
        table(cols, [_row(r, knees) for r in rows], row_class="status"),
    ]
    if pairs:
        blocks += [
            Paragraph(f"Speed-up over {report.baseline} at the same spec and batch: latency is "
                      "the ratio of latencies one request at a time, throughput the ratio of "
                      "images per second (95% CIs)."),
            table([("spec", "spec"), ("batch", "batch", True), ("candidate", "candidate"),
                   ("latency", "latency speed-up [95% CI]", True),
                   ("throughput", "throughput speed-up [95% CI]", True)], sp_rows)]
    if edges:
        blocks += [Paragraph("Does the edge grow when batching is allowed? Per family: the "
                             "throughput speed-up at the batch where the candidate finishes the "
                             "most images per second against the latency speed-up at batch 1; "
                             "the ratio's CI combines both."),
                   Bullets(tuple(e.sentence for e in edges))]
    blocks.append(Figure("throughput_vs_batch", lambda p: plot_throughput(report, p),
                         source(report) + " Latency lines: batch / median latency."))
    return blocks
