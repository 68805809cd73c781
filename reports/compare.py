"""Cross-machine comparison: join sessions on cell identity, with significance and gates.

Why ratios carry intervals: on a shared machine a cell's latency drifts by tens of percent
between runs, so "B is 7% slower than A" means nothing until we know whether the interval of
that ratio contains 1. Each session's median is bootstrapped over its own timed blocks
(``harness.stats.median_draws``); two sessions ran apart, so their draws are independent and
their elementwise ratio is the bootstrap distribution of the ratio between machines. A speed-up
within one session keeps its pairing: both backends are drawn with the same seed, so equal
block counts pick the same blocks (the blocks ran side by side), as ``stats.speedup`` does.

Regression gates over a comparison live in ``reports.compare_gates``.

The first source is the reference; every other one is compared with it. Nothing here opens a
store: the CLI reads the sessions and passes ``Source`` values in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness import microarch, stats
from harness.results import DONE, CellKey, CellResult, SessionInfo

from .tables import _jsonable

RESAMPLES = 2000


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
    """A point value with its bootstrap 95% interval (``method``: blocks or iid)."""

    value: float
    ci95: tuple[float, float]
    method: str

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value, "ci95": list(self.ci95), "ci_method": self.method}


@dataclass(frozen=True)
class Change:
    """other / reference for one figure: ratio and difference, each with its interval."""

    ratio: float
    ci95: tuple[float, float]
    diff: float
    diff_ci95: tuple[float, float]
    method: str

    @property
    def significant(self) -> bool:
        """The interval excludes 1: the machines really differ at 95%."""
        return self.ci95[0] > 1.0 or self.ci95[1] < 1.0

    def as_json(self) -> dict[str, Any]:
        return {"ratio": self.ratio, "ci95": list(self.ci95), "diff": self.diff,
                "diff_ci95": list(self.diff_ci95), "significant": self.significant,
                "ci_method": self.method}


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

    def as_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "precision": self.precision, "threads": self.threads,
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

    def as_json(self) -> dict[str, Any]:
        return _jsonable({
            "reference": self.sources[0].label,
            "sources": [s.as_json() for s in self.sources],
            "latencies": [r.as_json() for r in self.latencies],
            "speedups": [r.as_json() for r in self.speedups],
            "warnings": list(self.warnings), "unmatched": dict(self.unmatched),
            "ci_method": "bootstrap over the timed blocks of each session; ratio of independent "
                         "draws between machines",
        })


def build_comparison(sources: Sequence[Source], *, resamples: int = RESAMPLES) -> Comparison:
    """Join the sources' done cells on identity and derive every figure the renderers show."""
    if len(sources) < 2:
        raise ValueError("a comparison needs at least two sessions")
    done = [{c.key: c for c in s.cells if c.status == DONE and c.samples_ms} for s in sources]
    # the reference's order; a cell counts once another session also has it
    shared = [k for k in done[0] if any(k in d for d in done[1:])]
    draws: dict[tuple[int, CellKey], tuple[np.ndarray, str]] = {}

    def drawn(i: int, key: CellKey) -> tuple[np.ndarray, str]:
        if (i, key) not in draws:
            c = done[i][key]
            # one seed per source: the backends of one session share picks (paired blocks),
            # two sessions do not (they ran apart)
            draws[i, key] = stats.median_draws(c.samples_ms, _blocks(c), resamples=resamples,
                                               seed=i)
        return draws[i, key]

    def estimate(i: int, key: CellKey) -> Estimate | None:
        if key not in done[i]:
            return None
        d, method = drawn(i, key)
        lo, hi = np.percentile(d, [2.5, 97.5])
        return Estimate(float(np.median(done[i][key].samples_ms)), (float(lo), float(hi)), method)

    latencies = []
    for key in shared:
        ests = tuple(estimate(i, key) for i in range(len(sources)))
        first = ests[0]
        changes = tuple(
            _change(first.value, e.value, drawn(0, key), drawn(i, key))
            if first is not None and e is not None else None
            for i, e in enumerate(ests) if i > 0)
        latencies.append(LatencyRow(key, ests, changes))

    speedups = []
    base = sources[0].baseline()
    for key in shared:
        if key.backend == base:
            continue
        bkey = CellKey(key.spec, base, key.precision, key.threads)
        per: list[tuple[float, np.ndarray, str] | None] = []
        for i in range(len(sources)):
            if key in done[i] and bkey in done[i]:
                (bd, bm), (cd, cm) = drawn(i, bkey), drawn(i, key)
                point = float(np.median(done[i][bkey].samples_ms) / np.median(done[i][key].samples_ms))
                per.append((point, bd / cd, bm if bm == cm else "iid"))
            else:
                per.append(None)
        if sum(p is not None for p in per) < 2 or per[0] is None:
            continue
        ests = tuple(Estimate(p[0], _ci95(p[1]), p[2]) if p else None for p in per)
        changes = tuple(_change(per[0][0], p[0], per[0][1:], p[1:]) if p else None
                        for p in per[1:])
        speedups.append(SpeedupCompare(key.spec, key.precision, key.threads, base, key.backend,
                                       ests, changes))

    unmatched = {s.label: sum(k not in shared for k in d) for s, d in zip(sources, done, strict=True)}
    return Comparison(tuple(sources), tuple(latencies), tuple(speedups),
                      _pair_warnings(sources, shared), unmatched)


def _change(ref: float, other: float, ref_draws: tuple, other_draws: tuple) -> Change:
    (rd, rm), (od, om) = ref_draws, other_draws
    lo, hi = np.percentile(od / rd, [2.5, 97.5])
    dlo, dhi = np.percentile(od - rd, [2.5, 97.5])
    return Change(other / ref, (float(lo), float(hi)), other - ref, (float(dlo), float(dhi)),
                  rm if rm == om else "iid")


def _blocks(cell: CellResult) -> list | None:
    blocks = cell.meta.get("blocks") if isinstance(cell.meta, Mapping) else None
    return blocks if isinstance(blocks, list) else None


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


def _ci95(draws: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return float(lo), float(hi)
