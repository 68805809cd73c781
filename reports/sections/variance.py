"""How sure: at which level the session's latencies varied, and what its intervals can tell.

Why a section: an interval is honest only when a repeat run lands in it, and that depends on
whether the level that varies most — processes (allocation, placement, the VM host's minute),
blocks (drift within a process) or iterations — was sampled (``harness.measure.nested``). The
section says how many process pairs each cell had, which level dominated, and, for sessions
timed in one process per cell, what their intervals cannot tell.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from reports import fmt
from reports.document import Heading, Paragraph, table
from reports.sections import section
from reports.tables import Report
from reports.views import scenario_label

_LEVEL = {"processes": "between processes", "blocks": "between blocks",
          "iterations": "within blocks"}


@section("variance", order=65, terminal=True)
def variance(report: Report):
    timed = [c for c in report.cells if c.stats.get("median") is not None]
    if not timed:
        return None
    procs = [int(c.stats.get("processes") or 1) for c in timed]
    nested = [c for c in timed if c.stats.get("ci_method") == "nested"]
    blocks = [Heading("How sure")]
    if not nested:
        blocks.append(Paragraph(
            "Every cell of this session was timed in one worker process, in one stretch of "
            "seconds: its interval covers the blocks of that process only. What changes between "
            "processes and minutes — allocation and page layout, thread placement, what the "
            "machine's host was doing — is one draw these intervals never see, so a repeat run "
            "may land outside them (two identical runs on one machine disagreed by up to 20%). "
            "Run again with --processes 3 or more for intervals that cover it.", "warning"))
        return blocks
    dominant = Counter(c.stats["variance"].get("dominant") for c in nested
                       if c.stats.get("variance"))
    said = ", ".join(f"{_LEVEL.get(k, k)} in {n}" for k, n in dominant.most_common() if k)
    halves = [_half(c.stats) for c in nested]
    sp_halves = [(r.ci95[1] - r.ci95[0]) / 2 / r.speedup for r in report.speedups
                 if r.speedup and r.processes > 1]
    counts = (f"{min(procs)}" if min(procs) == max(procs) else
              f"{min(procs)}–{max(procs)} (median {int(np.median(procs))})")
    text = (f"Each cell was timed in {counts} worker process pairs spread over "
            f"the session; intervals resample the process "
            f"pairs, then the blocks within each. The level that dominated the uncertainty of "
            f"the median: {said or 'none measurable'}. Median half-width of a cell's interval "
            f"±{np.median(halves):.1%}")
    if sp_halves:
        text += f", of a speed-up's ±{np.median(sp_halves):.1%}"
    text += "."
    quiet = report.quiet_quantile()
    if quiet is not None:
        text += (f" A speed-up reads each side at its quiet state, its "
                 f"{round(100 * quiet)}th percentile: a host slow stretch slows "
                 "eager PyTorch more than OpenVINO and would read the speed-up high; the ratio "
                 "of medians is speedup_median in --json.")
    blocks.append(Paragraph(text))
    priors = {c.key.backend: c.stats["moderated"]["prior"] for c in nested
              if c.stats.get("moderated")}
    if priors:
        said = "; ".join(f"{b}: spread ±{np.sqrt(p['s2']):.1%} per process on {p['df']:.1f} "
                         f"degrees of freedom, from {p['cells']} cells"
                         for b, p in sorted(priors.items()))
        blocks.append(Paragraph(
            "Each interval also borrows the process-level variance this session's cells share "
            f"(empirical Bayes, as limma does; {said}): a cell whose few processes agreed by "
            "chance is not believed too far, and every cell gets more degrees of freedom than "
            "its own processes give. The more the cells differ, the less is borrowed."))
    blocks.append(_session_level(report))
    blocks += _slow_stretches(report)
    if len(nested) < len(timed):
        blocks.append(Paragraph(f"{len(timed) - len(nested)} cells had one process only: their "
                                "intervals cannot show the variation between processes.",
                                "warning"))
    rows = []
    for c in nested:
        v = c.stats["variance"]
        share = v.get("share") or {}
        label = scenario_label(report, c.key.scenario)  # both scenarios: say which row is which
        rows.append({"spec": c.key.spec + (f" ({label})" if label else ""),
                     "backend": c.key.backend,
                     "processes": str(c.stats.get("processes")),
                     "proc": fmt.percent(share.get("processes")),
                     "block": fmt.percent(share.get("blocks")),
                     "iter": fmt.percent(share.get("iterations")),
                     "dominant": _LEVEL.get(v.get("dominant") or "", "—"),
                     "half": f"±{_half(c.stats):.1%}"})
    cols = [("spec", "spec"), ("backend", "backend"), ("processes", "processes", True),
            ("proc", "share: processes", True, "page"), ("block", "blocks", True, "page"),
            ("iter", "iterations", True, "page"), ("dominant", "dominant level"),
            ("half", "CI half-width", True)]
    blocks.append(table(cols, rows))
    return blocks


def _session_level(report: Report) -> Paragraph:
    """What the intervals leave out between sessions, and where a repeat session lands when the
    machine's A/A run measured it (``harness.measure.session_level``)."""
    level = report.session_level
    if not level:
        return Paragraph(
            "These intervals cover processes and blocks within this session, not the session "
            "itself: what the machine's host does over tens of minutes moves every process of "
            "a session together, and two sessions of one command on one shared VM have "
            "differed by up to 20% on some cells, far beyond their intervals. No A/A run is "
            "recorded for this machine, so no repeat interval is shown: run the same command "
            "twice, minutes apart, then `accelbench compare A B --record-noise`.", "warning")
    sd = level.get("session_sd") or {}
    said = ", ".join(f"{k} ±{v['sd']:.1%} (from {v.get('cells')} cells)" for k, v in sd.items()
                     if isinstance(v, dict))
    promise = min((v.get("coverage") or 0.95 for v in sd.values() if isinstance(v, dict)),
                  default=0.95)
    when = time.strftime("%Y-%m-%d", time.gmtime(level.get("measured_at") or 0))
    sessions = " and ".join(map(str, level.get("sessions") or []))
    reps = [(r.repeat95[1] - r.repeat95[0]) / 2 / r.speedup for r in report.speedups
            if r.repeat95 and r.speedup]
    text = (f"Between sessions: this machine's A/A run of {when} (sessions {sessions}) showed a "
            f"session level of {said} (one standard deviation, log scale, fitted so that a new "
            f"A/A's cell lands inside its interval with probability {promise:.0%}): how far a whole session lands "
            f"from the next, beyond every interval above. A repeat session's figure lands "
            f"within value × exp(±t·√(2se² + 2σ²)) that often (repeat95 in --json")
    text += (f"; median half-width for a speed-up ±{np.median(reps):.1%})." if reps else ").")
    return Paragraph(text)


def _half(stats) -> float:
    lo, hi = stats.get("ci95") or (None, None)
    med = stats.get("median")
    if lo is None or hi is None or not med:
        return float("nan")
    return (hi - lo) / 2 / med


def _slow_stretches(report: Report) -> list:
    """The process pairs speed-ups left out as timed in a host slow stretch, each with the
    speed-up it read (``harness.measure.slowed``): never dropped silently."""
    from harness.measure.slowed import FACTOR

    hit = [r for r in report.speedups if r.set_aside]
    if not hit:
        return []
    pairs = sum(len(r.set_aside) for r in hit)
    text = (f"Host slow stretches: {pairs} process pairs of {len(hit)} speed-ups were set "
            f"aside, each {FACTOR:g}× or more slower on one side than that side's fastest "
            "process of the cell (a shared machine's host can slow everything timed on it for "
            "tens of seconds, one backend more than the other, and nothing on the guest shows "
            "it). The speed-ups below are "
            "from the other pairs; a replacement pair was timed where budget allowed. Latencies "
            "keep every process: a repeat run may meet such a stretch again.")
    rows = [{"spec": r.spec, "candidate": r.candidate, "pair": str(a["process"]),
             "side": str(a["side"]), "slower": fmt.times(a["slower"]),
             "pair_sp": fmt.times(a["speedup"]), "kept": fmt.times(r.speedup)}
            for r in hit for a in r.set_aside]
    cols = [("spec", "spec"), ("candidate", "candidate"), ("pair", "pair", True),
            ("side", "slowed side"), ("slower", "slower by", True),
            ("pair_sp", "its speed-up", True), ("kept", "speed-up reported", True)]
    return [Paragraph(text), table(cols, rows)]
