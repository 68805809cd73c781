"""The report's data: per-cell statistics, speed-ups with intervals, and a per-backend summary.

Why a separate data layer: Markdown, HTML, the terminal, the plots and ``--json`` must all say the
same numbers, so they are computed once here from the raw samples (``harness.measure.stats``) and every
renderer only formats. Nothing here reads the store or times anything; the CLI passes plain data.

A speed-up is only reported when both cells of a comparison are ``done``. A ``flagged`` cell ran,
but its outputs disagreed with the baseline's (or held NaN/Inf): its time is kept and shown, but
reading it as a speed-up would credit a backend for computing something else, so the comparison
goes to ``Report.excluded`` with the reason instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.backends import DEFAULT_BASELINE
from harness.machine import microarch
from harness.measure import parity, session_level, stats
from harness.measure.estimate import cell_speedup, cell_summary, latency_priors, speedup_prior
from harness.measure.results import (
    DONE,
    FLAGGED,
    LATENCY,
    THROUGHPUT,
    CellKey,
    CellResult,
    SessionInfo,
)

from .caveats import caveats, number
from .jsonable import jsonable
from .summary import SummaryRow, summarize_speedups

# Reported statistics come only from cells whose samples mean something: a failed or skipped
# cell may hold a partial run, which would read as a (misleading) latency.
_TIMED = (DONE, FLAGGED)


@dataclass(frozen=True)
class CellRow:
    """One cell as the report shows it: identity, outcome, derived statistics, metadata."""

    key: CellKey
    status: str
    reason: str | None
    stats: Mapping[str, Any]  # harness.measure.stats.summarize() of the samples ({"n": 0, ...} if none)
    warmup_ms: float | None
    meta: Mapping[str, Any]
    evidence: Mapping[str, Any] = field(default_factory=dict)  # CellResult.evidence()
    # where a repeat session's median lands (95%), from the machine's A/A session level
    repeat95: tuple[float, float] | None = None

    @property
    def median_ms(self) -> float | None:
        return self.stats.get("median")

    @property
    def ci95_ms(self) -> tuple[float | None, float | None]:
        lo, hi = self.stats.get("ci95") or (None, None)
        return (lo, hi)

    @property
    def flops(self) -> float | None:
        return number(self.meta.get("flops"))

    @property
    def batch(self) -> int:
        b = self.meta.get("batch")
        return b if isinstance(b, int) and not isinstance(b, bool) and b >= 1 else 1

    @property
    def images_per_s(self) -> tuple[float | None, tuple[float | None, float | None]]:
        """Images per second and its 95% interval: a throughput cell's median is ms per image
        (``estimate.per_image``), a latency cell's is ms per inference of ``batch`` images."""
        per = 1 if self.key.scenario == THROUGHPUT else self.batch
        med, (lo, hi) = self.median_ms, self.ci95_ms
        def rate(ms: float | None) -> float | None:
            return 1000.0 * per / ms if isinstance(ms, (int, float)) and ms > 0 else None
        return rate(med), (rate(hi), rate(lo))

    def as_json(self) -> dict[str, Any]:
        s, m = self.stats, self.meta
        return jsonable({
            "spec": self.key.spec, "backend": self.key.backend,
            "precision": self.key.precision, "threads": self.key.threads,
            "status": self.status, "reason": self.reason,
            "median_ms": s.get("median"), "p90_ms": s.get("p90"),
            "ci95_ms": list(self.ci95_ms), "n": s.get("n", 0),
            "flops": None if self.flops is None else int(self.flops),  # an int, as in `profile`
            "counters": dict(m.get("counters") or {}),
            "parity": dict(m.get("parity") or {}),
            # extras beyond DESIGN's contract
            "fraction_of_peak": (m.get("counters") or {}).get("fraction_of_peak"),  # the roofline
            # against the machine's GEMM roof at this precision: the best any runtime reached
            "fraction_of_machine_peak": (m.get("counters") or {}).get("fraction_of_machine_peak"),
            "reason_kind": reason_kind(self.status, self.reason),
            "scenario": self.key.scenario, "batch": self.batch,
            # a throughput cell's median_ms is per image; images/s for every cell
            "images_per_s": self.images_per_s[0], "images_per_s_ci95": list(self.images_per_s[1]),
            "throughput": m.get("throughput"),
            "ci_method": s.get("ci_method"),
            "repeat95_ms": None if self.repeat95 is None else list(self.repeat95),
            # process pairs the interval resampled, the variance components and what a
            # one-process interval cannot tell (harness.measure)
            "processes": s.get("processes", 1), "variance": s.get("variance"),
            "moderated": s.get("moderated"),
            "ci_note": s.get("ci_note"),
            "p99_ms": s.get("p99"), "mean_ms": s.get("mean"), "iqr_ms": s.get("iqr"),
            "min_ms": s.get("min"), "max_ms": s.get("max"),
            "first_inference_ms": self.warmup_ms, "warmup_ms": self.warmup_ms,  # old name
            "params": m.get("params"), "macs": m.get("macs"),
            "convert_s": m.get("convert_s"), "compile_s": m.get("compile_s"),
            "max_rss_bytes": m.get("max_rss_bytes"),
            # the allocator regime the worker ran in (harness.run.allocator) and its evidence
            "allocator": m.get("allocator"),
            "minor_faults_per_inference": m.get("minor_faults_per_inference"),
            "properties": dict(m.get("properties") or {}),
            **self.evidence,
            "layers": m.get("layers"),  # run --layers: harness.layers' per-layer table, or None
        })


# What a script switches on: the stage that failed (the worker protocol's kinds), a timeout, a
# crash, or a flag from the parity check. ``reason`` stays the sentence a person reads.
_REASON_KINDS = ("availability", "build", "conversion", "runtime", "protocol")


def reason_kind(status: str, reason: str | None) -> str | None:
    if not reason:
        return None
    head = reason.partition(":")[0].strip()
    if head in _REASON_KINDS:
        return head
    if reason.startswith("timeout"):
        return "timeout"
    if reason.startswith("worker crashed"):
        return "crash"
    return "parity" if status == FLAGGED else status


@dataclass(frozen=True)
class SpeedupRow:
    """baseline / candidate within one (spec, precision, threads) group, each side read at its
    ``quantile`` (``harness.measure.nested.SPEEDUP_QUANTILE``: its quiet state; 0.5, the
    median, for a cell timed in one process); ``speedup_median`` is the ratio of medians."""

    spec: str
    precision: str
    threads: int
    baseline: str
    candidate: str
    speedup: float
    ci95: tuple[float, float]
    ci_method: str | None = None  # nested-pairs | paired-blocks | blocks | iid (estimate.py)
    processes: int = 1  # process pairs the interval resampled (1: a one-process interval)
    variance: Mapping[str, Any] | None = None  # components (harness.measure.nested)
    ci_note: str | None = None  # what the interval cannot tell (one process, unpaired)
    moderated: Mapping[str, Any] | None = None  # the session prior it borrowed (nested.py)
    # latency: a ratio of latencies; throughput: of images per second (harness.measure.results)
    scenario: str = LATENCY
    # process pairs left out as timed in a host slow stretch (harness.measure.slowed)
    set_aside: tuple[Mapping[str, Any], ...] = ()
    # where a repeat session's speed-up lands (95%), from the machine's A/A session level
    repeat95: tuple[float, float] | None = None
    quantile: float | None = None  # the quantile each side is read at
    speedup_median: float | None = None  # median(baseline) / median(candidate)

    @property
    def significant(self) -> bool:
        """The interval excludes 1.0: the backends really differ at 95%."""
        return self.ci95[0] > 1.0 or self.ci95[1] < 1.0

    def as_json(self) -> dict[str, Any]:
        return jsonable({
            "spec": self.spec, "baseline": self.baseline, "candidate": self.candidate,
            "speedup": self.speedup, "ci95": list(self.ci95),
            "precision": self.precision, "threads": self.threads,
            "significant": self.significant, "ci_method": self.ci_method,
            "processes": self.processes, "variance": self.variance, "ci_note": self.ci_note,
            "moderated": self.moderated, "scenario": self.scenario,
            "set_aside": list(self.set_aside),
            "repeat95": None if self.repeat95 is None else list(self.repeat95),
            "quantile": self.quantile, "speedup_median": self.speedup_median,
        })


@dataclass(frozen=True)
class Excluded:
    """A comparison that was not made, and why (flagged, failed, no baseline, ...)."""

    spec: str
    precision: str
    threads: int
    baseline: str
    candidate: str
    why: str
    scenario: str = LATENCY

    def as_json(self) -> dict[str, Any]:
        return jsonable(dict(self.__dict__))


@dataclass(frozen=True)
class Report:
    session: SessionInfo
    store: str | None
    baseline: str
    machine_id: str | None
    machine_brand: str | None
    cells: tuple[CellRow, ...]
    speedups: tuple[SpeedupRow, ...]
    excluded: tuple[Excluded, ...]
    summary: tuple[SummaryRow, ...]
    counts: Mapping[str, int] = field(default_factory=dict)  # status -> number of cells
    warnings: tuple[str, ...] = ()  # what makes some figures less trustworthy than they look
    machine: Mapping[str, Any] = field(default_factory=dict)  # the stored fingerprint, as is
    # the machine's A/A session level behind every repeat95 (harness.machine.noise.provenance)
    session_level: Mapping[str, Any] | None = None

    def speedup_for(self, key: CellKey) -> SpeedupRow | None:
        return _find(self.speedups, key)

    def excluded_for(self, key: CellKey) -> Excluded | None:
        return _find(self.excluded, key)

    def quiet_quantile(self) -> float | None:
        """The quantile the speed-ups read each side at where it is below the median (their
        quiet state, ``harness.measure.nested.SPEEDUP_QUANTILE``); None when every speed-up is
        a ratio of medians (cells timed in one process). What the report's words must say."""
        return min((r.quantile for r in self.speedups
                    if r.quantile is not None and r.quantile < 0.5), default=None)

    def as_json(self) -> dict[str, Any]:
        """DESIGN's ``run --json`` / ``report --json`` shape (plus extra keys); strict JSON."""
        s = self.session
        return jsonable({
            "session": s.id,
            "store": self.store,
            "cells": [c.as_json() for c in self.cells],
            "speedups": [r.as_json() for r in self.speedups],
            # extras beyond DESIGN's contract
            "baseline": self.baseline,
            "excluded": [e.as_json() for e in self.excluded],
            "summary": [r.as_json() for r in self.summary],
            "machine": {"id": self.machine_id, "brand": self.machine_brand},
            "counts": dict(self.counts),
            "warnings": list(self.warnings),
            "session_level": self.session_level,
            "session_info": {"status": s.status, "started": s.started, "finished": s.finished,
                             "started_epoch_s": s.started, "finished_epoch_s": s.finished,
                             "version": s.version, "argv": list(s.argv), "config": s.config},
        })


def build_report(
    session: SessionInfo,
    cells: Sequence[CellResult],
    machine: Mapping[str, Any] | None,
    *,
    baseline: str = DEFAULT_BASELINE,
    store: str | None = None,
) -> Report:
    """Derive every number the renderers show from the cells' raw samples."""
    counts = Counter(c.key for c in cells)
    dup = [k for k, n in counts.items() if n > 1]
    if dup:  # a store invariant; two truths for one cell cannot both be shown
        raise ValueError(f"duplicate cell {dup[0]} in session {session.id!r}")

    groups: dict[tuple[str, str, int, str], list[CellResult]] = {}
    for c in cells:  # first-appearance order, so the report follows the session's order
        groups.setdefault(c.key.group(), []).append(c)
    ordered = [c for g in groups.values()
               for c in sorted(g, key=lambda c: c.key.backend != baseline)]  # stable

    # The session's cells share their process-level variance (harness.measure.moderate).
    priors = latency_priors([c for c in cells if c.status == DONE])
    # The machine's A/A session level (attached by harness.machine.noise.with_session_level)
    level = machine.get("session_level") if isinstance(machine, Mapping) else None
    terms = session_level.terms_of(level)
    rows = tuple(_row(c, priors.get(c.key.backend), terms.get("latency")) for c in ordered)
    speedups: list[SpeedupRow] = []
    excluded: list[Excluded] = []
    pairs: list[tuple[tuple[str, str, int, str], CellResult, CellResult]] = []
    for (spec, prec, thr, scen), group in groups.items():
        base = next((c for c in group if c.key.backend == baseline), None)
        for cand in group:
            if cand.key.backend == baseline:
                continue
            why = _why_not(base, cand, baseline)
            if why is not None or base is None:  # _why_not says why whenever base is None
                excluded.append(Excluded(spec, prec, thr, baseline, cand.key.backend,
                                         why or f"no {baseline} cell", scen))
            else:
                pairs.append(((spec, prec, thr, scen), base, cand))
    prior = speedup_prior([(b, c) for _, b, c in pairs])
    for (spec, prec, thr, scen), base, cand in pairs:
        # clean, alternated block pairs only (CellResult.clean), nested over processes
        r = cell_speedup(base, cand, prior=prior)
        speedups.append(SpeedupRow(spec, prec, thr, baseline, cand.key.backend,
                                   r["speedup"], tuple(r["ci95"]), r["ci_method"],
                                   r.get("processes") or 1, r.get("variance"),
                                   r.get("ci_note"), r.get("moderated"), scen,
                                   tuple(r.get("set_aside") or ()),
                                   session_level.repeat_interval(r["speedup"], r.get("log_se"),
                                                                 r.get("df"),
                                                                 terms.get("speedup")),
                                   r.get("quantile"), r.get("speedup_median")))

    mid, brand = _machine(machine, session)
    return Report(session=session, store=store, baseline=baseline, machine_id=mid,
                  machine_brand=brand, cells=rows, speedups=tuple(speedups),
                  excluded=tuple(excluded), summary=summarize_speedups(speedups),
                  counts=dict(Counter(c.status for c in cells)),
                  warnings=caveats(ordered, rows, machine),
                  machine=dict(machine) if isinstance(machine, Mapping) else {},
                  session_level=dict(level) if terms and isinstance(level, Mapping) else None)


def _row(c: CellResult, prior: Any = None, term: session_level.Term | None = None) -> CellRow:
    timed = c.status in _TIMED
    summary = cell_summary(c, prior=prior) if timed else stats.summarize([])
    repeat = (session_level.repeat_interval(summary.get("median"), summary.get("log_se"),
                                            summary.get("df"), term) if timed else None)
    return CellRow(key=c.key, status=c.status, reason=_reason(c), stats=summary,
                   warmup_ms=c.warmup_ms if timed else None, meta=dict(c.meta),
                   evidence=c.evidence(), repeat95=repeat)


def _reason(c: CellResult) -> str | None:
    """A flagged cell always says why, even when the harness left ``reason`` empty."""
    if c.reason or c.status != FLAGGED:
        return c.reason
    return parity.describe(c.meta.get("parity"))


def _why_not(base: CellResult | None, cand: CellResult, baseline: str) -> str | None:
    """None when the pair can be compared; otherwise the sentence the tables show."""
    if base is None:
        return f"no {baseline} cell to compare with"
    for role, c in (("baseline", base), ("candidate", cand)):
        if c.status != DONE:
            r = _reason(c)
            return f"{role} {c.status}" + (f": {r}" if r else "")
        if not c.samples_ms:
            return f"{role} has no samples"
    return None


def _machine(machine: Mapping[str, Any] | None, session: SessionInfo) -> tuple[str | None, str | None]:
    m = machine if isinstance(machine, Mapping) else {}
    cpu_m = m.get("cpu")
    cpu: Mapping[str, Any] = cpu_m if isinstance(cpu_m, Mapping) else {}
    mid = m.get("id") or session.machine_id
    brand = cpu.get("brand_raw") or cpu.get("brand") or m.get("brand")
    label = microarch.cpu_label(dict(m)) if brand is not None else None  # "AMD EPYC (Zen 4)"
    return (None if mid is None else str(mid), label)


def _find(rows, key: CellKey):
    """The comparison whose candidate is the cell ``key`` (None for baselines and lone cells)."""
    return next((r for r in rows if (r.spec, r.precision, r.threads, r.scenario, r.candidate)
                 == (*key.group(), key.backend)), None)
