"""The sections every session has: header, summary, speed-ups, latency per cell, problems.

Each is a pure function of the ``Report`` returning document blocks (see ``reports.sections``).
"""

from __future__ import annotations

from datetime import datetime, timezone

from reports import fmt
from reports.document import Bullets, Fields, Figure, Heading, Paragraph, table
from reports.figures.core import plot_speedups
from reports.header import header_fields
from reports.sections import section
from reports.summary import SummaryRow
from reports.tables import CellRow, Report, SpeedupRow
from reports.views import labelled, latency_view, scenario_label

_CI_METHOD_TEXT = {
    "nested-pairs": "nested bootstrap over the process pairs, then the paired blocks within "
                    "each (see \"How sure\")",
    "paired-blocks": "bootstrap over the paired timed blocks of both backends",
    "blocks": "bootstrap over each backend's timed blocks",
    "iid": "bootstrap over single iterations (an old store: too few or no timed blocks stored)",
}


def ci_methods_text(report: Report) -> str:
    """How the speed-up intervals were made, from the rows themselves (a store may mix)."""
    methods = sorted({r.ci_method or "iid" for r in report.speedups})
    parts = [_CI_METHOD_TEXT.get(m, m) for m in methods]
    return "; ".join(parts) if parts else "bootstrap"


@section("header", order=10, terminal=True)
def header(report: Report):
    s = report.session
    when = "" if s.started is None else datetime.fromtimestamp(s.started, timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")
    counts = ", ".join(f"{n} {st}" for st, n in report.counts.items()) or "no cells"
    items = [("Session", f"{s.id} — {s.status}, started {when}")]
    items += header_fields(report)
    items += [("Store", report.store or "—"), ("Baseline", report.baseline), ("Cells", counts)]
    return [Heading(f"accelbench report — {s.id}", 1), Fields(tuple(items))] + [
        Paragraph(w, "warning") for w in report.warnings]


def _summary_fields(r: SummaryRow) -> dict[str, str]:
    return {"candidate": r.candidate, "baseline": r.baseline, "precision": r.precision,
            "threads": str(r.threads), "scenario": r.scenario, "geomean": fmt.times(r.geomean),
            "ci": fmt.ci(*r.ci95, fmt=fmt.ratio), "n": str(r.n_specs),
            "best": f"{r.best[0]} ({fmt.times(r.best[1])})",
            "worst": f"{r.worst[0]} ({fmt.times(r.worst[1])})"}


def summary_sentence(r: SummaryRow, scenario: str = "") -> str:
    """One summary row as a sentence; ``scenario`` (``views.scenario_label``) names the
    scenario where rows must say it, so two rows never read alike."""
    f = _summary_fields(r)
    what = {"latency": "latency, one request at a time",
            "throughput": "throughput, images/s"}.get(scenario, scenario)
    return (f"{f['candidate']} vs {f['baseline']} ({f['precision']}, {f['threads']} threads"
            f"{', ' + what if scenario else ''}): "
            f"geomean {f['geomean']} {f['ci']} over {f['n']} specs; "
            f"best {f['best']}, worst {f['worst']}")


@section("summary", order=20, terminal=True)
def summary(report: Report):
    if not report.summary:
        return [Paragraph(f"no speed-ups: no pair of done cells against {report.baseline}")]
    cols = [(k, t, num, "page") for k, t, num in (  # the terminal gets the sentences below
        ("candidate", "candidate", False), ("baseline", "vs", False),
        ("precision", "precision", False), ("threads", "threads", True),
        ("scenario", "scenario", False), ("geomean", "geomean speed-up", True),
        ("ci", "95% CI", True), ("n", "specs", True),
        ("best", "best", False), ("worst", "worst", False))
        if k != "scenario" or labelled(report)]
    what = ("" if not labelled(report) else " A latency speed-up is a ratio of latencies one "
            "request at a time, a throughput speed-up a ratio of images per second (the "
            "Throughput section).")
    return [Heading("Summary"),
            Paragraph("Geometric mean of the per-spec speed-ups; 95% CI by a hierarchical "
                      "bootstrap (specs resampled, each speed-up jittered by its own CI)." + what),
            table(cols, [_summary_fields(r) for r in report.summary]),
            *[Paragraph(summary_sentence(r, scenario_label(report, r.scenario)))
              for r in report.summary]]


def _speedup_fields(r: SpeedupRow) -> dict[str, str]:
    return {"spec": r.spec, "precision": r.precision, "threads": str(r.threads),
            "candidate": r.candidate, "speedup": fmt.times(r.speedup),
            "ci": fmt.ci(*r.ci95, fmt=fmt.ratio),
            "repeat": fmt.ci(*r.repeat95, fmt=fmt.ratio) if r.repeat95 else "—",
            "note": "" if r.significant else "CI includes 1.0: no clear difference"}


@section("speedups", order=40)
def speedups(report: Report):
    report = latency_view(report)  # throughput speed-ups: the Throughput section
    rows = [_speedup_fields(r) for r in report.speedups]
    rows += [{"spec": e.spec, "precision": e.precision, "threads": str(e.threads),
              "candidate": e.candidate, "speedup": "not reported", "ci": "—",
              "repeat": "—", "note": fmt.one_line(e.why)} for e in report.excluded]
    if not rows:
        return None
    cols = [("spec", "spec"), ("precision", "precision"), ("threads", "threads", True),
            ("candidate", "candidate"), ("speedup", "speed-up", True), ("ci", "95% CI", True)]
    repeat = ""
    if any(r.repeat95 for r in report.speedups):  # an A/A record with a speed-up term
        cols.append(("repeat", "a repeat lands in", True))
        repeat = (" \"A repeat lands in\": where a repeat session of the same command on this "
                  "machine lands 95% of the time, from the session level its A/A run showed "
                  "(see \"How sure\").")
    cols.append(("note", "note"))
    quiet = report.quiet_quantile()
    if quiet is not None:
        pct = f"{round(100 * quiet)}th percentile"
        what = (f"{report.baseline} / candidate, each at its quiet state (the {pct} of its "
                "samples; the ratio of medians where the two cells' process pairs cannot be "
                "paired, as in a store timed in one process)")
    else:
        what = f"median({report.baseline}) / median(candidate)"
    return [Heading("Speed-ups"),
            Paragraph(f"{what}; 95% CI: "
                      f"{ci_methods_text(report)}. Flagged, failed or skipped cells are not "
                      "compared." + repeat),
            table(cols, rows),
            Figure("speedups", lambda p: plot_speedups(report, p), source(report))]


def source(report: Report) -> str:
    """Where a figure's numbers come from: every figure says it."""
    precs = ", ".join(sorted({c.key.precision for c in report.cells}))
    thr = ", ".join(str(t) for t in sorted({c.key.threads for c in report.cells}))
    return (f"Session {report.session.id} on {report.machine_brand or 'an unknown CPU'}; "
            f"{precs}, {thr} threads.")


def _speedup_note(report: Report, row: CellRow) -> tuple[str, str]:
    """(speed-up text, its CI) for a cell: baseline, a number, or why there is none."""
    if row.key.backend == report.baseline:
        return ("baseline", "")
    s = report.speedup_for(row.key)
    if s is not None:
        return (fmt.times(s.speedup), fmt.ci(*s.ci95, fmt=fmt.ratio))
    e = report.excluded_for(row.key)
    return (f"not reported ({e.why.split(':')[0]})" if e else "not reported", "")


def cell_fields(report: Report, row: CellRow) -> dict[str, str]:
    lo, hi = row.ci95_ms
    half = "" if lo is None or hi is None else f" ± {fmt.ms((hi - lo) / 2)}"
    sp, sp_ci = _speedup_note(report, row)
    return {
        "spec": row.key.spec, "backend": row.key.backend, "precision": row.key.precision,
        "threads": str(row.key.threads), "status": row.status,
        "median": fmt.ms(row.median_ms), "median_pm": fmt.ms(row.median_ms) + half,
        "ci": fmt.ci(lo, hi), "p90": fmt.ms(row.stats.get("p90")),
        "p99": fmt.ms(row.stats.get("p99")), "n": str(row.stats.get("n", 0)),
        "flops": fmt.flops(row.flops), "speedup": sp, "speedup_ci": sp_ci,
        "speed": " ".join(x for x in (sp, sp_ci) if x),
        "prec_thr": f"{row.key.precision}/{row.key.threads}",
        "reason": fmt.one_line(row.reason or ""),
    }


@section("cells", order=60, terminal=True)
def cells(report: Report):
    report = latency_view(report)  # a throughput cell's median is ms per image, no latency
    if not report.cells:
        return None
    page, term = "page", "terminal"
    cols = [("spec", "spec"), ("backend", "backend"), ("precision", "precision", False, page),
            ("threads", "threads", True, page), ("prec_thr", "prec/thr", False, term),
            ("status", "status"), ("median", "median ms", True, page),
            ("ci", "95% CI ms", True, page), ("median_pm", "median ms ± CI", True, term),
            ("p90", "p90 ms", True, page), ("p99", "p99 ms", True, page), ("n", "n", True),
            ("flops", "FLOPs", True, page), ("speedup", "speed-up", True, page),
            ("speedup_ci", "speed-up CI", True, page), ("speed", "speed-up [95% CI]", True, term),
            ("reason", "reason")]
    return [Heading("Latency per cell"),
            Paragraph("Median, p90 and p99 of every timed iteration after warm-up, n samples; "
                      "95% CI of the median by a bootstrap over the cell's worker processes, "
                      "then the blocks within each (one process: blocks only). Failed and skipped cells have no "
                      "figures; flagged cells keep theirs but get no speed-up."),
            table(cols, [cell_fields(report, c) for c in report.cells], row_class="status")]


@section("problems", order=80, terminal=True)
def problems(report: Report):
    """Every cell that is not ``done`` (flagged, failed, skipped, invalid, any future status)."""
    bad = [c for c in report.cells if c.status != "done"]
    if not bad:
        return None
    items = [f"{c.key.spec} — {c.key.backend} ({c.key.precision}, {c.key.threads}t"
             f"{_also(report, c.key.scenario)}): "
             f"{c.status}: {fmt.one_line(c.reason or 'no reason recorded')}" for c in bad]
    return [Heading("Cells not compared"), Bullets(tuple(items))]


@section("parity", order=70, terminal=True)
def parity(report: Report):
    """Did both backends compute the same function? One line for all that agree, one per
    comparison that does not (worded by ``harness.measure.parity.describe``, as the flagged reasons)."""
    from harness.measure.parity import describe

    checked = [(c, c.meta["parity"]) for c in report.cells
               if isinstance(c.meta.get("parity"), dict) and c.meta["parity"]]
    if not checked:
        return None
    ok = [(c, p) for c, p in checked if p.get("ok")]
    bad = [(c, p) for c, p in checked if not p.get("ok")]
    errs = [(p["rel_l2"], c) for c, p in ok if isinstance(p.get("rel_l2"), (int, float))]
    text = f"{len(ok)} of {len(checked)} compared cells match their baseline's outputs"
    if errs:
        worst, cell = max(errs, key=lambda ec: ec[0])
        tol = cell.meta["parity"].get("tolerance")
        text += (f"; the largest relative L2 error is {worst:.3g} ({cell.key.spec}, "
                 f"{cell.key.backend}{_also(report, cell.key.scenario)}) against a tolerance of {fmt.ratio(tol) if tol is None else f'{tol:.3g}'}")
    blocks = [Heading("Parity"), Paragraph(text + ".")]
    if bad:
        blocks.append(Bullets(tuple(f"{c.key.spec} — {c.key.backend}"
                                    f"{_also(report, c.key.scenario)}: {describe(p)}"
                                    for c, p in bad)))
    return blocks


def _also(report: Report, scenario: str) -> str:
    """``, throughput`` after a cell's identity where rows must name their scenario."""
    label = scenario_label(report, scenario)
    return f", {label}" if label else ""
