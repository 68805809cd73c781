"""The precision section (issue 23): what int8 and bf16 buy on each backend, against its own f32.

Per (spec, threads, backend) that ran f32 and a lower precision: the speed-up of the lower
precision over the same backend's f32 with a CI, and the parity figures beside it (int8: top-1
agreement and relative L2 against the f32 model over a seeded input set; bf16: relative L2
against the baseline). A flagged cell shows its reason instead of a ratio: a quantized model
that disagrees with f32 is not a speed-up. A bf16 that is slower than the same backend's f32
is said in words under the table.

Why the CI is combined rather than bootstrapped: cells of different precisions are timed in
different groups, not in alternated blocks, so there are no block pairs to resample; the
interval combines the two medians' CIs in log space (each CI's half-width as 1.96 standard
errors of the log median), which is wider than a paired interval would be, never narrower.
"""

from __future__ import annotations

import math
from typing import Any

from harness.backends import onednn_trace
from harness.measure.results import DONE, FLAGGED
from reports.document import Heading, Paragraph, table
from reports.sections import section
from reports.summary import Z95, log_sd
from reports.tables import Report
from reports.views import latency_view

LOWER = ("int8", "bf16")
# Public anchors, printed beside ours: OpenVINO's own published int8-vs-f32 throughput ratios
# across four Intel CPUs (as quoted in issue 23, from OpenVINO's performance benchmarks).
ANCHORS = {"resnet": "ResNet-50 1.9-3.9x", "mobilenetv2": "MobileNetV2 1.7-4.0x"}



def ratio(f32: Any, low: Any) -> tuple[float | None, tuple[float | None, float | None]]:
    """``(f32 median / low median, its 95% CI)`` from two ``CellRow``s."""
    a, b = f32.median_ms, low.median_ms
    if not a or not b:
        return None, (None, None)
    r = a / b
    sa, sb = log_sd(f32.ci95_ms), log_sd(low.ci95_ms)
    if sa is None or sb is None:
        return r, (None, None)
    half = Z95 * math.hypot(sa, sb)
    return r, (r * math.exp(-half), r * math.exp(half))


def _parity_text(meta: Any, precision: str) -> str:
    """What the cell's outputs were checked against, said with the figure: an int8 cell against
    the f32 model; any other cell against the session's baseline at its own precision (so a
    bf16 cell's rel L2 is against PyTorch bf16) and, where known, against the float64 model —
    the figure that says how far bf16 itself drifts."""
    p = meta.get("parity") or {}
    if "top1_agreement" in p:
        return (f"vs f32: top-1 {p['top1_agreement']:.0%}, rel L2 "
                f"{p.get('rel_l2', float('nan')):.3g} ({p.get('inputs')} inputs)")
    if not isinstance(p.get("rel_l2"), (int, float)):
        return ""
    text = f"rel L2 {p['rel_l2']:.3g} vs {p.get('baseline', 'the baseline')} {precision}"
    if isinstance(p.get("candidate_vs_f64"), (int, float)):
        text += f", {p['candidate_vs_f64']:.3g} vs f64"
    return text


def precision_rows(report: Report) -> list[dict[str, Any]]:
    by_key = {(c.key.spec, c.key.threads, c.key.backend, c.key.precision): c for c in report.cells}
    rows = []
    for (spec, threads, backend, prec), low in by_key.items():
        if prec not in LOWER or low.status not in (DONE, FLAGGED):
            continue
        f32 = by_key.get((spec, threads, backend, "f32"))
        if f32 is None or f32.status != DONE:
            continue
        r, (lo, hi) = ratio(f32, low) if low.status == DONE else (None, (None, None))
        rows.append({"spec": spec, "threads": threads, "backend": backend, "precision": prec,
                     "f32_ms": f32.median_ms, "ms": low.median_ms, "ratio": r, "lo": lo, "hi": hi,
                     "parity": _parity_text(low.meta, prec),
                     "flag": low.reason if low.status == FLAGGED else None,
                     "method": (low.meta.get("properties") or {}).get("precision_method"),
                     # the oneDNN kernels PyTorch reached, and its layout reorders
                     "kernels": onednn_trace.describe(
                         (low.meta.get("properties") or {}).get("onednn"))})
    return rows


def _x(v: float | None) -> str:
    return f"{v:.2f}x" if v else ""


@section("precision", order=47)
def precision(report: Report):
    report = latency_view(report)  # else a throughput cell of the same key overwrites one
    rows = precision_rows(report)
    if not rows:
        return None
    shown = [{"spec": r["spec"], "backend": r["backend"], "precision": r["precision"],
              "f32": f"{r['f32_ms']:.3f}", "ms": f"{r['ms']:.3f}" if r["ms"] else "",
              "ratio": (f"flagged: {r['flag']}" if r["flag"] else
                        _x(r["ratio"]) + (f" [{r['lo']:.2f}, {r['hi']:.2f}]" if r["lo"] else "")),
              "parity": r["parity"]} for r in rows]
    cols = [("spec", "spec"), ("backend", "backend"), ("precision", "precision"),
            ("f32", "f32 ms", True), ("ms", "ms", True),
            ("ratio", "speed-up over its own f32 [95% CI]", True), ("parity", "parity")]
    blocks = [
        Heading("What precision buys: int8/f32 and bf16/f32 per backend"),
        Paragraph("Each lower-precision cell against the same backend's f32 cell (same spec and "
                  "threads). int8 parity is against the f32 model over a seeded input set (top-1 "
                  "agreement, relative L2 of the logits); a cell beyond the tolerance is "
                  "flagged and gets no ratio. bf16 parity is against the baseline backend in "
                  "bf16 and, beside it, against the float64 model: how far bf16 drifts. CIs combine the two medians' CIs (the cells are "
                  "not alternated), so they are conservative."),
        table(cols, shown),
    ]
    slower = sorted({f"{r['backend']} on {r['spec']} ({r['ratio']:.2f}x"
                     + (f", {r['method']}" if r["method"] else "")
                     + (f"; {r['kernels']}" if r["kernels"] else "") + ")"
                     for r in rows if r["precision"] == "bf16" and r["ratio"] and r["ratio"] < 1})
    if slower:
        blocks.append(Paragraph("bf16 is slower than f32 on the same backend for: "
                                + "; ".join(slower) + "."))
    families = {r["spec"].partition(":")[0] for r in rows if r["precision"] == "int8"}
    anchors = [ANCHORS[f] for f in sorted(families) if f in ANCHORS]
    if anchors:
        blocks.append(Paragraph("For scale, OpenVINO's published int8-vs-f32 throughput ratios "
                                "across four Intel CPUs (trained weights, throughput mode; ours "
                                "are latency, random weights): " + "; ".join(anchors) + "."))
    return blocks
