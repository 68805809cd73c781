"""Abbasi, Shafiee, Chan, Wong (2021) beside this machine: each claim, our figure, a verdict.

Verdicts: *agrees* when the paper's figure lies inside our 95% CI (or the ranking is the same
and separated by the CIs), *differs* when the CI excludes it, *cannot tell at this precision*
when our interval is too wide (upper/lower > 1.5) or the ranking's CIs overlap. The paper says
"380%" without saying whether that is the ratio (3.8×) or the gain (4.8×), so both readings are
judged. Where a claim differs, the sentence names what separates the two setups (precision,
threads, CPU generation, library versions), read from this session's own header.

A claim is judged only when the session holds what it needs: the paper's average needs at least
``_BREADTH`` specs, "the pattern that gains most" needs dwbottleneck and another pattern, "the
network that gains most" needs darts and another network, "lowest latency" needs MobileNetV2 at
its published size. Otherwise its verdict is *not measured in this session* with what is
missing, and the section is left out when no claim at all can be judged (issue 28: a session
without dwbottleneck said "differs: dwseparable gains more than dwbottleneck here").
"""

from __future__ import annotations

from reports import fmt, trends
from reports.document import Heading, Paragraph, table
from reports.header import cpu_features, llc_bytes
from reports.sections import section
from reports.summary import SummaryRow
from reports.tables import Report
from reports.views import latency_view

AGREES, DIFFERS, UNSURE = "agrees", "differs", "cannot tell at this precision"
NOT_MEASURED = "not measured in this session"
_BREADTH = 10  # fewer specs than this cannot stand for the paper's average
_WIDE = 1.5  # an interval whose ends differ by more than this factor cannot settle a figure
_NETWORKS = ("mobilenetv2", "darts", "resnet")  # whole networks, as opposed to design patterns


def _verdict(ci: tuple[float, float], target: float) -> str:
    lo, hi = ci
    if lo <= target <= hi:
        return AGREES
    return UNSURE if lo > 0 and hi / lo > _WIDE else DIFFERS


def _setup(report: Report) -> str:
    """The differences that most move a speed-up, in a few words: precision, threads, the
    newest matrix instructions of this CPU, and OpenVINO's version against the paper's 2021."""
    m = report.machine or {}
    precs = ", ".join(sorted({c.key.precision for c in report.cells}))
    thr = ", ".join(str(t) for t in sorted({c.key.threads for c in report.cells}))
    feats = [f.removesuffix(" yes") for f in (cpu_features(m) or "").split(", ")
             if f.endswith(" yes")]
    isa = f"a CPU with {feats[-1]}" if feats else "this CPU"
    ov = (m.get("versions") or {}).get("openvino", "?")
    return f"here {precs}, {thr} threads, {isa}, OpenVINO {ov}; the paper's CPU and OpenVINO are of 2021"


def _ratio_ci(s: SummaryRow) -> str:
    return f"{fmt.times(s.geomean)} {fmt.ci(*s.ci95, fmt=fmt.ratio)}"


def _unjudged(claim: str, paper: str, here: str, needs: str) -> dict[str, str]:
    return {"claim": claim, "paper": paper, "here": here, "verdict": NOT_MEASURED,
            "why": f"needs {needs}."}


def judged(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows whose claim this session could judge."""
    return [r for r in rows if r["verdict"] != NOT_MEASURED]


def claims(report: Report) -> list[dict[str, str]]:
    """One row per claim of the paper; those the session cannot judge say what they need."""
    rows: list[dict[str, str]] = []
    setup = _setup(report)
    if report.summary:
        s = report.summary[0]
        for label, target in (("as a ratio, 3.8×", 3.8), ("as a gain, 4.8×", 4.8)):
            claim, here = f"average speed-up 380% ({label})", \
                f"geomean {_ratio_ci(s)} over {s.n_specs} specs"
            if s.n_specs < _BREADTH:  # a few specs are no sample of the paper's grid
                rows.append(_unjudged(claim, f"{target}×", here, (
                    f"at least {_BREADTH} specs (this session has {s.n_specs}): an average over "
                    f"{s.n_specs} says little about the paper's whole grid (run the paper preset)")))
                continue
            v = _verdict(s.ci95, target)
            why = "" if v == AGREES else \
                f"the average is {'lower' if s.ci95[1] < target else 'higher'}: {setup}."
            rows.append({"claim": claim, "paper": f"{target}×", "here": here,
                         "verdict": v, "why": why})
    fams = dict(trends.per_family(report))
    pats = sorted(((f, s) for f, s in fams.items() if f in trends.PATTERNS),
                  key=lambda fs: -fs[1].geomean)
    rows.append(_top("design pattern that gains most", "dwbottleneck", 5.5, pats, setup,
                     "design pattern"))
    nets = sorted(((f, s) for f, s in fams.items() if f in _NETWORKS), key=lambda fs: -fs[1].geomean)
    rows.append(_top("network that gains most", "darts", 12.0, nets, setup, "network"))
    low = _lowest_latency(report)
    if low["verdict"] != NOT_MEASURED:
        why = low.pop("_why")
        low["why"] = "" if low["verdict"] == AGREES else f"{why}; {setup}."
    rows.append(low)
    return rows


def _top(claim: str, paper_fam: str, paper_x: float, ranked, setup: str,
         kind: str) -> dict[str, str]:
    paper = f"{paper_fam}, {paper_x * 100:.0f}% ({paper_x:g}× or {paper_x + 1:g}×)"
    mine = dict(ranked).get(paper_fam)
    if mine is None or len(ranked) < 2:  # the paper's winner, and a rival, both measured
        have = ", ".join(f for f, _ in ranked) or "none"
        return _unjudged(claim, paper, f"{kind}s here: {have}",
                         f"{paper_fam} and at least one other {kind}")
    (top, ts), (_, second) = ranked[0], ranked[1]
    here = f"{top} {_ratio_ci(ts)}"
    if mine is not None and top != paper_fam:
        here += f"; {paper_fam} {_ratio_ci(mine)}"
    if top == paper_fam:
        verdict = AGREES if ts.ci95[0] > second.ci95[1] else UNSURE
        why = "" if verdict == AGREES else "its CI overlaps the runner-up's"
        much = max((_verdict(ts.ci95, x) for x in (paper_x, paper_x + 1)),
                   key=[DIFFERS, UNSURE, AGREES].index)
        if much != AGREES:  # right network, but how much it gains is a separate claim
            verdict = f"{verdict} on which; {much} on how much"
            why = (why + "; " if why else "") + (
                f"it gains {fmt.times(ts.geomean)}, not {paper_x:g}× or {paper_x + 1:g}×: {setup}")
    elif mine.ci95[1] >= ts.ci95[0]:
        verdict, why = UNSURE, f"{paper_fam}'s CI overlaps {top}'s"
    else:
        verdict = DIFFERS
        why = f"{top} gains more than {paper_fam} here: {setup}"
    return {"claim": claim, "paper": paper, "here": here, "verdict": verdict,
            "why": why + ("." if why and not why.endswith(".") else "")}


def _lowest_latency(report: Report) -> dict[str, str]:
    """The whole network with the lowest latency on the fastest backend, each at its default
    (published) size: a spec without parameters, as the paper timed them."""
    timed = [(c.median_ms, c) for c in report.cells if c.status == "done"
             and c.median_ms is not None and c.key.spec in _NETWORKS]
    if not any(c.key.spec == "mobilenetv2" for _, c in timed):
        have = ", ".join(sorted({c.key.spec for _, c in timed})) or "none"
        return _unjudged("lowest latency", "MobileNetV2, about 2.4 ms",
                         f"networks at their published size here: {have}",
                         "mobilenetv2 at its published size (the spec `mobilenetv2`)")
    ms, best = min(timed, key=lambda mc: mc[0])
    fam = trends.family(best.key.spec)
    lo, hi = best.ci95_ms
    here = f"{best.key.spec} on {best.key.backend}: {fmt.ms(best.median_ms)} ms {fmt.ci(lo, hi)}"
    if fam != "mobilenetv2":
        return {"claim": "lowest latency", "paper": "MobileNetV2, about 2.4 ms", "here": here,
                "verdict": DIFFERS, "_why": f"{fam} is faster than MobileNetV2 here"}
    near = 2.4 / 1.25 <= ms <= 2.4 * 1.25  # "about": within 25%
    return {"claim": "lowest latency", "paper": "MobileNetV2, about 2.4 ms", "here": here,
            "verdict": AGREES if near else DIFFERS,
            "_why": f"MobileNetV2 is fastest, but at {fmt.ms(ms)} ms, not about 2.4 ms"}


def trend_rows(report: Report) -> list[dict[str, str]]:
    """FLOPs, working set and latency as depth and width grow; FLOPs as a latency predictor."""
    rows = []
    corr = trends.correlations(report)
    if len(corr) >= 2:
        (b1, c1), (b2, c2) = sorted(corr.items(), key=lambda bc: -bc[1].pearson)[:2]
        separated = c1.pearson_ci[0] > c2.pearson_ci[1]
        rows.append({"claim": "FLOPs predict latency better for one backend",
                     "paper": "FLOPs, cache and latency related as depth and width grow",
                     "here": f"log-log Pearson r {b1} {c1.pearson:.2f} "
                             f"{fmt.ci(*c1.pearson_ci, fmt=fmt.ratio)}, {b2} {c2.pearson:.2f} "
                             f"{fmt.ci(*c2.pearson_ci, fmt=fmt.ratio)}",
                     "verdict": (f"yes: better for {b1}" if separated else UNSURE),
                     "why": "" if separated else "the two correlations' CIs overlap."})
    llc = llc_bytes(report.machine or {})
    for axis in ("depth", "width"):
        sw = trends.sweep(report, axis)
        if sw:
            rows.append(_moves_together(report, axis, sw, llc))
    return rows


def _moves_together(report: Report, axis: str, sw, llc: float | None) -> dict[str, str]:
    """Between the smallest and largest value of ``axis`` in each pattern: do FLOPs and the
    baseline's latency rise together, and does the working set outgrow the LLC?"""
    flops_up, lat_up, together, over = [], [], 0, 0
    for fam, ps in sw.items():
        lo, hi = _cell(report, ps[0].row.spec), _cell(report, ps[-1].row.spec)
        f = (_num(hi, "flops") or 0) > (_num(lo, "flops") or 0)
        t = (_num(hi, "median") or 0) > (_num(lo, "median") or 0)
        flops_up += [fam] if f else []
        lat_up += [fam] if t else []
        together += f == t
        ws = _num(hi, "peak_working_set_bytes")
        over += bool(llc and ws and ws > llc)
    n = len(sw)
    here = (f"over {n} design patterns: FLOPs grow in {len(flops_up)}, the baseline's latency in "
            f"{len(lat_up)}, together in {together}; working set above the LLC in {over}")
    apart = sorted(set(flops_up) ^ set(lat_up))
    return {"claim": f"FLOPs, cache and latency move together as {axis} grows",
            "paper": "FLOPs, L3 cache efficacy and latency related as depth and width grow",
            "here": here, "verdict": AGREES if together == n else UNSURE if together > n / 2
            else DIFFERS,
            "why": "" if together == n else
            f"in {', '.join(apart)} FLOPs and latency part ways (fixed per-layer overheads, or "
            "blocks that shrink as the network deepens)."}


def _cell(report: Report, spec: str):
    return next((c for c in report.cells
                 if c.key.spec == spec and c.key.backend == report.baseline), None)


def _num(cell, key: str) -> float | None:
    if cell is None:
        return None
    v = cell.median_ms if key == "median" else cell.meta.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def ladder_claims(report: Report) -> list[dict[str, str]]:
    """Which PyTorch the study's "native framework" most likely was, from a ladder session:
    the rung over which OpenVINO's geometric-mean speed-up lands nearest the paper's 3.8x (or
    4.8x), and OpenVINO's speed-up over the fastest PyTorch rung beside the paper's figure."""
    import math

    from reports.ladder import ladder_rows

    rows = [r for r in ladder_rows(report) if r.total_speedup and r.rungs[-1].median_ms]
    if not rows:
        return []
    per_rung: dict[str, list[float]] = {}
    for r in rows:
        ov = r.rungs[-1].median_ms
        for g in r.rungs[:-1]:
            if g.median_ms and ov:
                per_rung.setdefault(g.label, []).append(math.log(g.median_ms / ov))
    means = {k: math.exp(sum(v) / len(v)) for k, v in per_rung.items() if len(v) == len(rows)}
    best = [r.openvino_over_best_torch for r in rows if r.openvino_over_best_torch]
    if len(means) < 2 or not best:  # no ladder here: one PyTorch rung names nothing
        return []
    nearest = min(means, key=lambda k: min(abs(math.log(means[k] / t)) for t in (3.8, 4.8)))
    over_best = math.exp(sum(math.log(b) for b in best) / len(best))
    here = "; ".join(f"over {k} {fmt.times(v)}" for k, v in means.items())
    if len(rows) < _BREADTH:  # both claims set an average beside the paper's 380%
        needs = (f"at least {_BREADTH} specs on the ladder (this session has {len(rows)}): "
                 f"the paper's 380% is an average over its whole grid")
        return [_unjudged("which PyTorch was the 'native framework'",
                          "not stated (380% over the native framework)",
                          f"OpenVINO's geomean speed-up over {len(rows)} specs: {here}", needs),
                _unjudged("OpenVINO over the best PyTorch this machine has",
                          "380% (over the native framework)",
                          f"{fmt.times(over_best)} geomean over the fastest rung per spec", needs)]
    near = 3.8 * 0.9 <= over_best <= 4.8 * 1.1
    return [
        {"claim": "which PyTorch was the 'native framework'",
         "paper": "not stated (380% over the native framework)",
         "here": f"OpenVINO's geomean speed-up over {len(rows)} specs: {here}",
         "verdict": f"most likely {nearest}",
         "why": "the rung whose speed-up lands nearest 3.8x or 4.8x; faster rungs leave "
                "OpenVINO less to gain"},
        {"claim": "OpenVINO over the best PyTorch this machine has",
         "paper": "380% (over the native framework)",
         "here": f"{fmt.times(over_best)} geomean over the fastest rung per spec",
         "verdict": AGREES if near else DIFFERS,  # a point, no CI: within 10% of a reading
         "why": "" if near else
                "graph optimization PyTorch can do itself (layout, compilation, freezing) takes "
                "part of what the study credits to OpenVINO"},
    ]


def study_view(report: Report) -> Report:
    """The report as the study saw it: the baseline against one runtime.

    Why: a session may time several candidates (the ladder's PyTorch rungs beside OpenVINO);
    the paper's claims are about the hardware-specific runtime, which the ladder names as its
    last rung. Without that rung, the first candidate of the summary stands for it.
    """
    from dataclasses import replace

    from harness.backends.ladder import LADDER

    candidates = [s.candidate for s in report.summary]
    if len(set(candidates)) < 2:
        return report
    chosen = LADDER[-1].backend if LADDER[-1].backend in candidates else candidates[0]
    keep = {report.baseline, chosen}
    return replace(report, cells=tuple(c for c in report.cells if c.key.backend in keep),
                   speedups=tuple(r for r in report.speedups if r.candidate == chosen),
                   summary=tuple(r for r in report.summary if r.candidate == chosen))


@section("paper", order=30, terminal=True)
def paper(report: Report):
    # the paper timed one image at a time: latency cells at batch 1 only (issue 24)
    report = latency_view(report, batch=1)
    ladder = ladder_claims(report)  # uses every rung; the claims below, the runtime alone
    report = study_view(report)
    if not any(trends.family(r.spec) in trends.PATTERNS + _NETWORKS for r in report.speedups):
        return None  # none of the study's architectures in this session: nothing to set beside
    rows = claims(report) + trend_rows(report) + ladder
    if not judged(rows):
        return None  # nothing this session can settle: a table of "not measured" helps no one
    cols = [("claim", "claim"), ("paper", "Abbasi et al. 2021"), ("here", "this machine (95% CI)"),
            ("verdict", "verdict"), ("why", "why it differs")]
    return [Heading("The paper and this machine"),
            Paragraph("Each claim of Abbasi, Shafiee, Chan and Wong (2021) beside this session's "
                      "figure. agrees: the paper's figure is inside our 95% CI; differs: the CI "
                      "excludes it; cannot tell: our CI is too wide or the ranking's CIs overlap; "
                      "not measured: this session lacks the families, sizes or specs the claim "
                      "needs."),
            table(cols, [r | {"tone": r["verdict"] if r["verdict"] in (AGREES, DIFFERS) else ""}
                         for r in rows], row_class="tone")]  # mixed verdicts stay uncoloured
