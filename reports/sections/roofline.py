"""The roofline section: each cell's achieved GFLOP/s against its arithmetic intensity under
the machine's measured roofs (``accelbench peak``); numbers from ``reports.roofline``. Each cell
is judged against its own runtime's GEMM roof and the machine's (the best any runtime reached at
its precision), and the section says which runtimes' own roofs are far below the machine's."""

from __future__ import annotations

from harness.counters.roofs import FAR_BELOW
from reports import fmt
from reports.document import Block, Figure, Heading, Paragraph, table
from reports.roofline import (
    above_roof,
    basis_words,
    cache_roofs,
    far_below,
    plot_roofline,
    roofline_points,
)
from reports.sections import section
from reports.sections.core import source
from reports.tables import Report
from reports.views import latency_view


@section("roofline", order=92)
def roofline(report: Report):
    report = latency_view(report)  # achieved GFLOP/s from latency, one inference at a time
    peaks = (report.machine or {}).get("peaks")
    points = roofline_points(report, peaks)
    if not points:
        return None
    blocks: list[Block] = [Heading("Roofline")]
    if not peaks:
        searched = (report.machine or {}).get("peaks_searched") or []
        where = (f" (looked in {' and in '.join(searched)})" if searched else "")
        blocks.append(Paragraph(
            f"No measured peaks for this machine{where}, so the points have no roofs. Run "
            f"`accelbench peak` once on this machine: it keeps the roofs in its store and in a "
            f"per-machine file that reports from every store find. Peaks measured into another "
            f"store before that file existed: render with `--store` of that store, or run "
            f"`accelbench peak` again.", tone="warning"))
    rows = [{"spec": p["spec"], "backend": p["backend"],
             "ai": f"{p['arithmetic_intensity']:.3g}", "basis": basis_words(p.get("intensity_basis")),
             "source": str(p.get("source")), "gflops": f"{p['achieved_gflops']:.3g}",
             "roof": p["roof_level"] if p["roof_level"] == p["level"]
             else f"{p['roof_level']} (served by {p['level']}: no {p['level']} roof stored)",
             "frac": f"{p['fraction_of_peak']:.0%}" if p.get("fraction_of_peak") else "",
             "frac_machine": f"{p['fraction_of_machine_peak']:.0%}"
             if p.get("fraction_of_machine_peak") else ""}
            for p in points]
    off = [r for r in report.cells if r.flops and r.median_ms
           and not (r.meta.get("counters") or {}).get("arithmetic_intensity")]
    if off:  # e.g. cachegrind measured 0 LLC misses: no traffic, so no finite intensity
        blocks.append(Paragraph(
            f"{fmt.count(len(off), 'timed cell')} {'has' if len(off) == 1 else 'have'} no arithmetic intensity (no traffic measured, or no "
            f"counters; e.g. {off[0].key.spec} on {off[0].key.backend}) and are left off."))
    unroofed = sorted({p["level"] for p in points if p["level"] != p["roof_level"]})
    if peaks and unroofed:  # peaks from before `accelbench peak` measured the cache levels
        n = sum(p["level"] != p["roof_level"] for p in points)
        blocks.append(Paragraph(
            f"{n} of {len(points)} points have working sets served by {' and '.join(unroofed)} "
            f"(analytic model), but the stored peaks have no roof for "
            f"{'those levels' if len(unroofed) > 1 else 'that level'} (measured "
            f"{', '.join(sorted(cache_roofs(peaks))) or 'DRAM only'}), so they are placed under "
            f"the DRAM roof, which understates what a cache feeds. `accelbench peak` now "
            f"measures a triad per cache level; run it once to add those roofs.",
            tone="warning"))
    # above the roof of the level that serves them: the paragraph above explains the others
    high = [p for p in above_roof(points) if p["level"] == p["roof_level"]]
    if high:
        worst = max(high, key=lambda p: p["fraction_of_peak"])
        blocks.append(Paragraph(
            f"{len(high)} of {len(points)} points lie above their roof (up to "
            f"{worst['fraction_of_peak']:.0%}, {worst['spec']} on {worst['backend']}): the roofs "
            f"were measured in a slower spell of this machine than those cells, or the library "
            f"does fewer FLOPs than the model's count (e.g. Winograd convolutions; achieved "
            f"GFLOP/s here is the model's FLOPs over the median). Measure the roofs again with "
            f"`accelbench peak` on a quiet machine; it keeps the best of its rounds.",
            tone="warning"))
    slow = far_below(peaks, {(p["backend"], p["precision"]) for p in points})
    if slow:  # a cell near its own roof is not near what the machine does (issue 23)
        said = "; ".join(
            f"{r['runtime']}'s {r['precision']} GEMM reaches {r['share']:.0%} of the machine's "
            f"best ({r['machine_runtime']} {r['machine_gflops']:.0f} GFLOP/s)" for r in slow)
        blocks.append(Paragraph(
            f"GEMM roofs far below the machine's (under {FAR_BELOW:.0%} of the best runtime's): "
            f"{said}. A cell's share of its own runtime's roof (\"of attainable\") then "
            f"overstates how close it comes to this machine; \"of machine's\" compares it with "
            f"the best GEMM any runtime reached here at its precision (`accelbench peak`)."))
    blocks += [
        table([("spec", "spec"), ("backend", "backend"), ("roof", "roof"),
               ("ai", "FLOP/byte", True),
               ("basis", "bytes from"), ("source", "source"), ("gflops", "GFLOP/s", True),
               ("frac", "of attainable", True), ("frac_machine", "of machine's", True)],
              rows),
        Figure("roofline", lambda path: plot_roofline(points, peaks, path,
                                                      title="achieved GFLOP/s vs intensity"),
               caption=source(report)),
    ]
    return blocks
