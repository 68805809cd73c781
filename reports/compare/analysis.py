"""Cross-machine comparison: join sessions on cell identity, with significance and gates.

Why ratios carry intervals: on a shared machine a cell's latency drifts by tens of percent
between runs, so "B is 7% slower than A" means nothing until we know whether the interval of
that ratio contains 1. Each session's median is bootstrapped over its own timed blocks
(``harness.measure.stats.median_draws``); two sessions ran apart, so their draws are independent and
their elementwise ratio is the bootstrap distribution of the ratio between machines. A speed-up
within one session keeps its pairing: both backends are drawn with the same seed, so equal
block counts pick the same blocks (the blocks ran side by side), as ``stats.speedup`` does.

Regression gates over a comparison live in ``reports.compare.gates``.

The first source is the reference; every other one is compared with it. Nothing here opens a
store: the CLI reads the sessions and passes ``Source`` values in.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.machine import microarch
from harness.measure import nested, session_level
from harness.measure.estimate import (
    cell_speedup,
    cell_summary,
    latency_priors,
    processes_of,
    speedup_prior,
)
from harness.measure.results import DONE, LATENCY, CellKey, CellResult, SessionInfo
from reports.compare import aa
from reports.jsonable import jsonable


@dataclass(frozen=True)
class Source:
    """One session of one store, as read by the CLI (identity, machine, cells)."""

    label: str
    path: str
    session: SessionInfo
    machine: Mapping[str, Any] | None
    cells: tuple[CellResult, ...]

    @property
    def brand(self) -> str:
        """The brand with the microarchitecture when the brand does not name it (``AMD EPYC
        (Zen 4)``): two VMs both called "AMD EPYC" may be a generation apart."""
        return microarch.cpu_label(self.machine) or "unknown CPU"

    @property
    def versions(self) -> dict[str, str]:
        v = dict((self.machine or {}).get("versions") or {})
        if self.session.version:
            v["accelbench"] = self.session.version
        return {str(k): str(x) for k, x in v.items()}

    def baseline(self) -> str:
        cfg = self.session.config if isinstance(self.session.config, Mapping) else {}
        return str(cfg.get("baseline", "torch"))

    def as_json(self) -> dict[str, Any]:
        return {"label": self.label, "store": self.path, "session": self.session.id,
                "machine": self.session.machine_id, "brand": self.brand,
                "versions": self.versions, "cells": len(self.cells)}


@dataclass(frozen=True)
class Estimate:
    """A point value with its 95% interval (``method``: nested, nested-pairs, or the
    one-process blocks / paired-blocks / iid), the process pairs behind it, and the log-scale
    standard error and degrees of freedom that comparisons combine."""

    value: float
    ci95: tuple[float, float]
    method: str
    processes: int = 1
    log_se: float | None = None
    df: float | None = None
    quantile: float | None = None  # a speed-up's: each side read at it (estimate.cell_speedup)

    @classmethod
    def of(cls, summary: Mapping[str, Any], field_name: str) -> Estimate:
        lo, hi = summary.get("ci95") or (float("nan"), float("nan"))
        return cls(float(summary[field_name]),
                   (float(lo if lo is not None else "nan"), float(hi if hi is not None else "nan")),
                   str(summary.get("ci_method")), int(summary.get("processes") or 1),
                   summary.get("log_se"), summary.get("df"), summary.get("quantile"))

    def as_summary(self, term: session_level.Term | None = None) -> dict[str, Any]:
        """What ``nested.ratio_of`` combines; with ``term``, the session level added."""
        se, df = session_level.widened(self.log_se, self.df, term)
        return {"median": self.value, "log_se": se, "df": df}

    def as_json(self) -> dict[str, Any]:
        out = {"value": self.value, "ci95": list(self.ci95), "ci_method": self.method,
               "processes": self.processes}
        if self.quantile is not None:
            out["quantile"] = self.quantile
        return out


@dataclass(frozen=True)
class Change:
    """other / reference for one figure: ratio and difference, each with its interval."""

    ratio: float
    ci95: tuple[float, float]
    diff: float
    diff_ci95: tuple[float, float]
    method: str
    noise: float = 0.0  # the threshold: a change must lie wholly beyond ±noise to be real
    # the session-level sd (log scale) added for (reference, other): their machines' A/A terms
    session_sd: tuple[float | None, float | None] = (None, None)

    @property
    def significant(self) -> bool:
        """The whole interval lies beyond the noise threshold (1 ± noise on the ratio)."""
        return self.ci95[0] > 1.0 + self.noise or self.ci95[1] < 1.0 / (1.0 + self.noise)

    @property
    def verdict(self) -> str:
        if self.significant:
            return "up" if self.ci95[0] > 1.0 else "down"
        return "within noise"

    def as_json(self) -> dict[str, Any]:
        return {"ratio": self.ratio, "ci95": list(self.ci95), "diff": self.diff,
                "diff_ci95": list(self.diff_ci95), "significant": self.significant,
                "verdict": self.verdict, "noise": self.noise, "ci_method": self.method,
                "session_sd": list(self.session_sd)}


@dataclass(frozen=True)
class LatencyRow:
    """One cell identity across machines: median latency on each, change against the first."""

    key: CellKey
    latency: tuple[Estimate | None, ...]  # per source, in ms
    change: tuple[Change | None, ...]  # per source after the first: other / reference

    def as_json(self) -> dict[str, Any]:
        return {**self.key.as_dict(),
                "median_ms": [e.as_json() if e else None for e in self.latency],
                "change": [c.as_json() if c else None for c in self.change]}


@dataclass(frozen=True)
class SpeedupCompare:
    """One speed-up (baseline -> candidate in a spec, precision, threads) across machines."""

    spec: str
    precision: str
    threads: int
    baseline: str
    candidate: str
    speedup: tuple[Estimate | None, ...]
    change: tuple[Change | None, ...]
    scenario: str = LATENCY  # throughput: a ratio of images per second

    def as_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "precision": self.precision, "threads": self.threads,
                "scenario": self.scenario,
                "baseline": self.baseline, "candidate": self.candidate,
                "speedup": [e.as_json() if e else None for e in self.speedup],
                "change": [c.as_json() if c else None for c in self.change]}


@dataclass(frozen=True)
class Comparison:
    sources: tuple[Source, ...]
    latencies: tuple[LatencyRow, ...]
    speedups: tuple[SpeedupCompare, ...]
    warnings: tuple[str, ...]  # per pair: what changes the answer more than the hardware
    unmatched: Mapping[str, int] = field(default_factory=dict)  # label -> cells only it has
    noise: float = 0.0  # the threshold every Change was judged against
    # machine id -> metric -> the session-level term its changes carry (harness.measure.session_level)
    session_terms: Mapping[str, Mapping[str, session_level.Term]] = field(default_factory=dict)

    def machine_terms(self) -> dict[str, session_level.Term]:
        """The session-level terms of the compared machine, when there is one machine."""
        machines = {s.session.machine_id for s in self.sources}
        if len(machines) != 1:
            return {}
        return dict(self.session_terms.get(next(iter(machines)) or "", {}))

    @functools.cached_property
    def repeats(self) -> dict[str, dict[str, Any]] | None:
        """An A/A's check of its own intervals (``aa.repeats``), against the machine's terms;
        computed once for the command line, the pages and the JSON."""
        return aa.repeats(self, self.machine_terms())

    def as_json(self) -> dict[str, Any]:
        return jsonable({
            "reference": self.sources[0].label,
            "sources": [s.as_json() for s in self.sources],
            "latencies": [r.as_json() for r in self.latencies],
            "speedups": [r.as_json() for r in self.speedups],
            "warnings": list(self.warnings), "unmatched": dict(self.unmatched),
            "noise": self.noise, "spread": aa.run_to_run_spread(self),
            "repeats": self.repeats,
            "session_terms": {m: {k: t.as_json() for k, t in terms.items()}
                              for m, terms in self.session_terms.items()},
            "ci_method": "nested bootstrap (process pairs, then blocks) per session; a change "
                         "combines the two sessions' log-scale errors (Welch-Satterthwaite), "
                         "plus each machine's session-level term where its A/A run recorded "
                         "one, and is real only when its interval lies beyond the noise "
                         "threshold",
        })


NOISE = 0.05  # default noise threshold: changes whose interval lies within ±5% are noise


def build_comparison(sources: Sequence[Source], *, noise: float = NOISE,
                     session_terms: Mapping[str, Mapping[str, session_level.Term]] | None = None
                     ) -> Comparison:
    """Join the sources' done cells on identity and derive every figure the renderers show.

    Each session's estimate carries its nested interval's log-scale standard error and degrees
    of freedom (``harness.measure.estimate``); a change between two sessions combines them
    (Welch–Satterthwaite), with the session-level term of each session's machine added where
    ``session_terms`` (machine id -> metric -> term, from the machines' A/A records) has one,
    and is called real only when its whole interval lies beyond ``noise`` (as asv's change
    factor and criterion's noise threshold do).
    """
    terms = {m: dict(t) for m, t in (session_terms or {}).items() if t}

    def term(i: int, metric: str) -> session_level.Term | None:
        return terms.get(str(sources[i].session.machine_id), {}).get(metric)

    if len(sources) < 2:
        raise ValueError("a comparison needs at least two sessions")
    done = [{c.key: c for c in s.cells if c.status == DONE and c.samples_ms} for s in sources]
    # the reference's order; a cell counts once another session also has it
    shared = [k for k in done[0] if any(k in d for d in done[1:])]
    summaries: dict[tuple[int, CellKey], dict[str, Any]] = {}
    base = sources[0].baseline()
    # each session's own priors: its cells share their process-level variance (moderate.py)
    lat_priors = [latency_priors(d.values()) for d in done]
    sp_priors: dict[float, list[Any]] = {}  # per quantile a speed-up is read at, when first read

    def speedups_at(q: float, bkey: CellKey, key: CellKey) -> list[Estimate | None]:
        if q not in sp_priors:
            sp_priors[q] = [speedup_prior(_pairs(d, base), q=q) for d in done]
        return [Estimate.of(cell_speedup(d[bkey], d[key], seed=i, prior=sp_priors[q][i], q=q),
                            "speedup") if key in d and bkey in d else None
                for i, d in enumerate(done)]

    def summary(i: int, key: CellKey) -> dict[str, Any]:
        if (i, key) not in summaries:
            summaries[i, key] = cell_summary(done[i][key], seed=i,  # independent sessions
                                             prior=lat_priors[i].get(key.backend))
        return summaries[i, key]

    def estimate(i: int, key: CellKey) -> Estimate | None:
        if key not in done[i]:
            return None
        return Estimate.of(summary(i, key), "median")

    latencies = []
    for key in shared:
        ests = tuple(estimate(i, key) for i in range(len(sources)))
        first = ests[0]
        changes = tuple(_change(first, e, noise, term(0, "latency"), term(i, "latency"))
                        if first is not None and e is not None else None
                        for i, e in enumerate(ests[1:], start=1))
        latencies.append(LatencyRow(key, ests, changes))

    speedups = []
    for key in shared:
        if key.backend == base:
            continue
        bkey = dataclasses.replace(key, backend=base)
        per = speedups_at(nested.SPEEDUP_QUANTILE, bkey, key)
        if len({p.quantile for p in per if p is not None}) > 1:
            # a session read at its quiet state against one read at its median (one process,
            # an old store): compare like with like, both at the median
            per = speedups_at(0.5, bkey, key)
        first = per[0]
        if first is None or sum(p is not None for p in per) < 2:
            continue
        changes = tuple(_change(first, p, noise, term(0, "speedup"), term(i, "speedup"))
                        if p else None for i, p in enumerate(per[1:], start=1))
        speedups.append(SpeedupCompare(key.spec, key.precision, key.threads, base, key.backend,
                                       tuple(per), changes, key.scenario))

    unmatched = {s.label: sum(k not in shared for k in d) for s, d in zip(sources, done, strict=True)}
    warnings = _pair_warnings(sources, shared) + _process_warnings(sources, done, shared)
    used = {str(s.session.machine_id) for s in sources} & set(terms)
    return Comparison(tuple(sources), tuple(latencies), tuple(speedups), warnings, unmatched,
                      noise, {m: terms[m] for m in sorted(used)})


def _pairs(cells: dict[CellKey, Any], base: str) -> list[tuple[Any, Any]]:
    """(baseline cell, candidate cell) for every candidate of a session with its baseline."""
    return [(cells[b], c) for k, c in cells.items() if k.backend != base
            and (b := dataclasses.replace(k, backend=base)) in cells]


def _change(ref: Estimate, other: Estimate, noise: float,
            ref_term: session_level.Term | None = None,
            other_term: session_level.Term | None = None) -> Change:
    got = nested.ratio_of(ref.as_summary(ref_term), other.as_summary(other_term))
    ratio = other.value / ref.value
    lo, hi = got["ci95"] if got else (float("nan"), float("nan"))
    # the difference's interval from the ratio's, with the reference at its point
    diff_ci = (ref.value * (lo - 1), ref.value * (hi - 1))
    method = ref.method if ref.method == other.method else f"{ref.method}/{other.method}"
    return Change(ratio, (float(lo), float(hi)), other.value - ref.value, diff_ci, method, noise,
                  (ref_term.sd if ref_term else None, other_term.sd if other_term else None))


def _process_warnings(sources: Sequence[Source], done: Sequence[Mapping[CellKey, CellResult]],
                      shared: Sequence[CellKey]) -> tuple[str, ...]:
    """Say when a session's cells were timed in one process: their intervals cannot show the
    variation between processes, so a change that looks real may be a different draw."""
    out = []
    for s, cells in zip(sources, done, strict=True):
        one = sum(1 for k in shared if k in cells and processes_of(cells[k]) < 2)
        if one:
            out.append(f"{s.label}: {one} compared cells were timed in one worker process "
                       f"(a session from before process pairs were recorded, or --processes 1): "
                       f"their intervals cannot tell the variation between processes and "
                       f"minutes, so a change beyond them may still be noise")
    return tuple(out)


def _pair_warnings(sources: Sequence[Source], shared: Sequence[CellKey]) -> tuple[str, ...]:
    """Per pair (reference, other): differences that change the answer more than hardware."""
    out = [f"{s.label}: {n} compared cells ran while the machine was busier than its cores "
           f"(load average above cores + 1); their times may be inflated"
           for s in sources if (n := _busy(s, shared))]
    ref = sources[0]
    for other in sources[1:]:
        pair = f"{ref.label} vs {other.label}"
        for axis in ("precisions", "threads"):
            a, b = _axis(ref, axis), _axis(other, axis)
            if a != b:
                out.append(f"{pair}: sessions ran different {axis} ({a} vs {b}); only cells "
                           f"with the same identity are compared")
        va, vb = ref.versions, other.versions
        for lib in sorted(set(va) | set(vb)):
            if va.get(lib) != vb.get(lib):
                out.append(f"{pair}: {lib} {va.get(lib, '?')} vs {vb.get(lib, '?')}")
        eff = []
        for key in shared:
            pa, pb = _effective(ref, key), _effective(other, key)
            if pa and pb and pa != pb:
                eff.append(f"{key.spec} {key.backend} ({pa} vs {pb})")
        if eff:
            out.append(f"{pair}: the runtime ran a different effective precision in {len(eff)} "
                       f"cells, e.g. {eff[0]}")
    return tuple(out)


def _busy(s: Source, shared: Sequence[CellKey]) -> int:
    """Cells timed while other work competed for the cores (as ``reports.tables`` warns)."""
    cores = ((s.machine or {}).get("cpu") or {}).get("count")
    if not isinstance(cores, int):
        return 0
    keys = set(shared)
    n = 0
    for c in s.cells:
        load = c.meta.get("loadavg") if isinstance(c.meta, Mapping) else None
        if c.key in keys and isinstance(load, Mapping):
            peak = max((v for k in ("before", "after")
                        if isinstance(v := load.get(k), (int, float))), default=0.0)
            n += peak > cores + 1
    return n


def _axis(s: Source, name: str) -> list:
    cfg = s.session.config if isinstance(s.session.config, Mapping) else {}
    vals = cfg.get(name)
    if isinstance(vals, list):
        return sorted(map(str, vals))
    attr = "precision" if name == "precisions" else "threads"
    return sorted({str(getattr(c.key, attr)) for c in s.cells})


def _effective(s: Source, key: CellKey) -> str | None:
    c = next((c for c in s.cells if c.key == key), None)
    v = c.meta.get("precision_effective") if c is not None else None
    return str(v) if v else None
