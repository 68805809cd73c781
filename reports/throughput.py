"""Throughput: images per second against batch, the throughput speed-up beside the latency one,
and whether the candidate's edge grows when batching and requests in flight are allowed.

Why these three: a user who serves a model or runs it offline asks how many images per second
this machine gives, at which batch or with how many requests in flight, and whether the runtime
that wins one request at a time still wins then (issue 24). The latency report answers none of
it. Every figure here is read from the ``Report`` (``reports.tables``), never recomputed from
samples: images/s is ``CellRow.images_per_s`` (a throughput cell's median is ms per image,
``harness.measure.estimate.per_image``), a throughput speed-up is the report's ``SpeedupRow`` of
the throughput scenario (a ratio of images per second).

A *curve* is one spec (its text without the ``batch=`` key) on one backend in one scenario,
over the batches the session timed. Its *knee* is the smallest batch that reaches 90% of the
curve's best images/s: past it, a larger batch buys little throughput and costs latency.

The family sentence compares, per spec, the throughput speed-up at the batch where the candidate
finishes the most images per second (batched latency cells stand in where the session has no
throughput cells) with the latency speed-up at batch 1; the ratio of the two has an interval from both (their
log-scale errors add), and a family's specs are pooled by the summary's hierarchical bootstrap
(``tables.summarize_speedups``). The edge *grows* when that interval lies above 1, *shrinks*
when below, and the CIs *cannot tell* otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from harness.measure.scenarios import LATENCY, THROUGHPUT

from . import fmt
from .jsonable import jsonable
from .summary import Z95, SummaryRow, log_sd, summarize_speedups
from .tables import CellRow, Excluded, Report, SpeedupRow
from .trends import family

KNEE = 0.9  # the knee: the smallest batch reaching this share of the best images/s
GROWS, SHRINKS, UNSURE, NOTHING = "grows", "shrinks", "cannot tell", "not measured"


def unbatched(spec: str) -> str:
    """``mobilenetv2:width=0.5,batch=4`` -> ``mobilenetv2:width=0.5``: the spec a batch sweep
    expanded (canonical specs leave the default batch out, so batch 1 is the bare spec)."""
    family, sep, rest = spec.partition(":")
    if not sep or spec.startswith("@"):  # a user's model sets its batch in its example input
        return spec
    kept = [kv for kv in rest.split(",") if kv and not kv.startswith("batch=")]
    return family + (":" + ",".join(kept) if kept else "")


def in_scope(report: Report) -> set[str]:
    """The (unbatched) specs the session timed in the throughput scenario or at a batch above 1:
    the section is about them, and is left out when there are none."""
    return {unbatched(c.key.spec) for c in report.cells
            if c.key.scenario == THROUGHPUT or c.batch > 1}


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _map(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


@dataclass(frozen=True)
class ThroughputRow:
    """One cell seen as throughput: images/s with its interval, and how it was driven."""

    spec: str  # without the batch key: one curve per spec
    batch: int
    scenario: str
    backend: str
    precision: str
    threads: int
    status: str
    images_per_s: float | None
    ci95: tuple[float | None, float | None]
    requests: int | None  # kept in flight (an asynchronous queue), else 1: one call at a time
    streams: int | None  # the runtime's own (None where it has none)
    in_flight: float | None  # time-weighted mean requests in flight, measured
    request_p50_ms: float | None  # one request's latency (a batch of ``batch`` images)
    request_p99_ms: float | None
    cell_spec: str  # as timed, batch key included

    def as_json(self) -> dict[str, Any]:
        return jsonable({
            "spec": self.spec, "cell_spec": self.cell_spec, "batch": self.batch,
            "scenario": self.scenario, "backend": self.backend, "precision": self.precision,
            "threads": self.threads, "status": self.status, "images_per_s": self.images_per_s,
            "images_per_s_ci95": list(self.ci95), "requests": self.requests,
            "streams": self.streams, "in_flight_mean": self.in_flight,
            "request_p50_ms": self.request_p50_ms, "request_p99_ms": self.request_p99_ms})


def throughput_row(c: CellRow) -> ThroughputRow:
    """A cell's images/s and, from its ``meta["throughput"]`` when an asynchronous queue ran it,
    requests, streams and per-request percentiles; otherwise one request at a time, whose
    latency is the sample itself (a throughput cell's stats are per image: times the images a
    sample finished)."""
    ips, ci = c.images_per_s if c.status in ("done", "flagged") else (None, (None, None))
    tp = _map(c.meta.get("throughput"))
    req, flight = _map(tp.get("request_ms")), _map(tp.get("in_flight"))
    if req:
        p50, p99 = _num(req.get("p50")), _num(req.get("p99"))
    else:
        per = (_int(c.meta.get("images_per_sample")) or 1) if c.key.scenario == THROUGHPUT else 1
        p50, p99 = (None if (v := _num(c.stats.get(k))) is None else v * per
                    for k in ("median", "p99"))
    return ThroughputRow(
        spec=unbatched(c.key.spec), batch=c.batch, scenario=c.key.scenario,
        backend=c.key.backend, precision=c.key.precision, threads=c.key.threads,
        status=c.status, images_per_s=ips, ci95=ci,
        requests=_int(tp.get("requests")) if tp else 1, streams=_int(tp.get("streams")),
        in_flight=_num(flight.get("mean")), request_p50_ms=p50, request_p99_ms=p99,
        cell_spec=c.key.spec)


def throughput_rows(report: Report) -> list[ThroughputRow]:
    """Every cell of the specs in scope, latency ones included (their images/s is batch over
    latency: the curve a backend gives one request at a time), sorted spec, scenario, batch."""
    scope, order = in_scope(report), _order(report)
    rows = [throughput_row(c) for c in report.cells if unbatched(c.key.spec) in scope]
    return sorted(rows, key=lambda r: (order[r.spec], r.precision, r.threads,
                                       r.scenario != LATENCY, r.batch,
                                       r.backend != report.baseline))


def _order(report: Report) -> dict[str, int]:
    """Unbatched specs in the session's order (the report follows the session)."""
    return {s: i for i, s in enumerate(dict.fromkeys(unbatched(c.key.spec)
                                                     for c in report.cells))}


Curve = tuple[str, str, str, int, str]  # (spec, backend, precision, threads, scenario)


def curves(rows: Sequence[ThroughputRow]) -> dict[Curve, list[ThroughputRow]]:
    """Rows with images/s, grouped into curves over batch (each sorted by batch)."""
    out: dict[Curve, list[ThroughputRow]] = {}
    for r in rows:
        if r.status == "done" and r.images_per_s:
            out.setdefault((r.spec, r.backend, r.precision, r.threads, r.scenario), []).append(r)
    return {k: sorted(v, key=lambda r: r.batch) for k, v in out.items()}


def knee(points: Sequence[tuple[int, float | None]], share: float = KNEE) -> int | None:
    """The smallest batch whose images/s reaches ``share`` of the best: where the curve flattens."""
    pts = [(b, v) for b, v in points if v is not None and v > 0]  # failed cells have none
    if not pts:
        return None
    best = max(v for _, v in pts)
    return min(b for b, v in pts if v >= share * best)


@dataclass(frozen=True)
class SpeedupPair:
    """One spec at one batch against the baseline: its latency and its throughput speed-up."""

    spec: str
    batch: int
    candidate: str
    baseline: str
    precision: str
    threads: int
    latency: SpeedupRow | None
    throughput: SpeedupRow | None
    latency_why: str | None = None  # why a speed-up is missing (excluded), if it is
    throughput_why: str | None = None

    def as_json(self) -> dict[str, Any]:
        def one(r: SpeedupRow | None, why: str | None) -> dict[str, Any] | None:
            if r is None:
                return None if why is None else {"speedup": None, "why": why}
            return {"speedup": r.speedup, "ci95": list(r.ci95), "significant": r.significant}
        return jsonable({"spec": self.spec, "batch": self.batch, "candidate": self.candidate,
                          "baseline": self.baseline, "precision": self.precision,
                          "threads": self.threads,
                          "latency": one(self.latency, self.latency_why),
                          "throughput": one(self.throughput, self.throughput_why)})


def _batches(report: Report) -> dict[str, int]:
    return {c.key.spec: c.batch for c in report.cells}


def speedup_pairs(report: Report) -> list[SpeedupPair]:
    """Per spec in scope, batch and candidate: the latency and throughput speed-ups side by
    side (same spec, same batch), or why one is missing."""
    scope, batch = in_scope(report), _batches(report)
    found: dict[tuple, dict[str, Any]] = {}
    both: list[SpeedupRow | Excluded] = [*report.speedups, *report.excluded]
    for r in both:
        if unbatched(r.spec) not in scope:
            continue
        key = (unbatched(r.spec), batch.get(r.spec, 1), r.candidate, r.baseline, r.precision,
               r.threads)
        slot = found.setdefault(key, {})
        if isinstance(r, SpeedupRow):
            slot[r.scenario] = r
        else:
            slot[r.scenario + "_why"] = r.why
    order = _order(report)
    return [SpeedupPair(spec, b, cand, base, prec, thr, latency=s.get(LATENCY),
                        throughput=s.get(THROUGHPUT), latency_why=s.get(LATENCY + "_why"),
                        throughput_why=s.get(THROUGHPUT + "_why"))
            for (spec, b, cand, base, prec, thr), s in sorted(found.items(), key=lambda kv: (order[kv[0][0]], kv[0][1:]))]


@dataclass(frozen=True)
class FamilyEdge:
    """Does the candidate's edge over the baseline grow when batching is allowed, per family?"""

    family: str
    candidate: str
    baseline: str
    precision: str
    threads: int
    latency: SummaryRow | None  # speed-up one request at a time, batch 1, over the specs
    allowed: SummaryRow | None  # speed-up at each spec's best configuration
    change: SummaryRow | None  # allowed / latency, per spec, pooled
    best: tuple[tuple[str, str, int], ...]  # per spec: (spec, scenario, batch) chosen
    verdict: str
    sentence: str

    def as_json(self) -> dict[str, Any]:
        def one(s: SummaryRow | None) -> dict[str, Any] | None:
            return None if s is None else {"geomean": s.geomean, "ci95": list(s.ci95),
                                           "n_specs": s.n_specs}
        return jsonable({
            "family": self.family, "candidate": self.candidate, "baseline": self.baseline,
            "precision": self.precision, "threads": self.threads, "verdict": self.verdict,
            "latency_batch1": one(self.latency), "batching_allowed": one(self.allowed),
            "change": one(self.change),
            "best": [{"spec": s, "scenario": sc, "batch": b} for s, sc, b in self.best],
            "sentence": self.sentence})


def _ratio(allowed: SpeedupRow, latency: SpeedupRow) -> SpeedupRow:
    """allowed / latency as a row the summary can pool: log errors of independent cells add."""
    x = allowed.speedup / latency.speedup
    sd = math.hypot(log_sd(allowed.ci95) or 0.0, log_sd(latency.ci95) or 0.0)
    return SpeedupRow(allowed.spec, allowed.precision, allowed.threads, allowed.baseline,
                      allowed.candidate, x, (x * math.exp(-Z95 * sd), x * math.exp(Z95 * sd)))


def family_edges(report: Report) -> list[FamilyEdge]:
    """One verdict per family (and candidate, precision, threads) in scope."""
    batch = _batches(report)
    ips = {(c.key.spec, c.key.backend, c.key.precision, c.key.threads, c.key.scenario):
           c.images_per_s[0] for c in report.cells if c.status == "done"}
    groups: dict[tuple, dict[str, dict[str, SpeedupRow]]] = {}
    scope = in_scope(report)
    for r in report.speedups:
        base = unbatched(r.spec)
        if base not in scope or not (r.speedup and r.speedup > 0):
            continue
        g = groups.setdefault((family(base), r.candidate, r.baseline, r.precision, r.threads), {})
        g.setdefault(base, {})[f"{r.scenario}@{batch.get(r.spec, 1)}"] = r
    out = []
    for (fam, cand, base, prec, thr), specs in groups.items():
        lat, allowed, best = [], [], []
        for spec, rows in specs.items():
            one = rows.get(f"{LATENCY}@1")
            # the throughput scenario where the session has it; else batching one call at a time
            others = [r for r in rows.values() if r.scenario == THROUGHPUT] or \
                [r for k, r in rows.items() if k != f"{LATENCY}@1"]
            if one is None or not others:
                continue
            top = max(others, key=lambda r: ips.get((r.spec, r.candidate, r.precision,
                                                     r.threads, r.scenario)) or 0.0)
            lat.append(one)
            allowed.append(top)
            best.append((spec, top.scenario, batch.get(top.spec, 1)))
        out.append(_edge(fam, cand, base, prec, thr, lat, allowed, best, specs))
    return out


def _edge(fam: str, cand: str, base: str, prec: str, thr: int, lat: list[SpeedupRow],
          allowed: list[SpeedupRow], best: list[tuple[str, str, int]],
          specs: Mapping[str, Any]) -> FamilyEdge:
    if not lat:
        have_one = any(f"{LATENCY}@1" in rows for rows in specs.values())
        why = ("no throughput or batched speed-up to set beside the latency one at batch 1"
               if have_one else "no latency speed-up at batch 1 to compare with (run "
               "--scenario latency,throughput with 1 among the --batch sizes)")
        return FamilyEdge(fam, cand, base, prec, thr, None, None, None, (), NOTHING,
                          f"{fam}: {cand} against {base}: {why}.")
    s_lat, s_all, s_chg = (_pool(rs) for rs in (
        lat, allowed, [_ratio(a, b) for a, b in zip(allowed, lat, strict=True)]))
    lo, hi = s_chg.ci95
    verdict = GROWS if lo > 1.0 else SHRINKS if hi < 1.0 else UNSURE
    where = "; ".join(f"{sc} at batch {b}" for _, sc, b in best)
    over = "" if len(lat) == 1 else f" (geomean over {len(lat)} specs)"
    said = {GROWS: f"{cand}'s edge over {base} grows when batching is allowed",
            SHRINKS: f"{cand}'s edge over {base} shrinks when batching is allowed",
            UNSURE: f"the CIs cannot tell whether {cand}'s edge over {base} grows or shrinks "
                    f"when batching is allowed"}[verdict]
    sentence = (f"{fam}: {said}{over}: {_x(s_lat)} one request at a time at batch 1, "
                f"{_x(s_all)} where {cand} finishes the most images per second ({where}); "
                f"the second over the first: {_x(s_chg)}.")
    return FamilyEdge(fam, cand, base, prec, thr, s_lat, s_all, s_chg, tuple(best), verdict,
                      sentence)


def _pool(rows: Sequence[SpeedupRow]) -> SummaryRow:
    """The family's geomean with the summary's hierarchical CI; the rows may mix scenarios (each
    spec's best configuration is its own), so they are pooled as one question."""
    (one,) = summarize_speedups([replace(r, scenario=rows[0].scenario) for r in rows])
    return one


def _x(s: SummaryRow) -> str:
    return f"{fmt.times(s.geomean)} {fmt.ci(*s.ci95, fmt=fmt.ratio)}"


def throughput_json(report: Report) -> dict[str, Any] | None:
    """The section's figures for ``--json``: None when the session holds no throughput or
    batched cells."""
    if not in_scope(report):
        return None
    rows = throughput_rows(report)
    knees = [{"spec": k[0], "backend": k[1], "precision": k[2], "threads": k[3],
              "scenario": k[4], "knee_batch": knee([(r.batch, r.images_per_s) for r in rs])}
             for k, rs in curves(rows).items() if len(rs) >= 2]  # one batch: no curve
    return {"rows": [r.as_json() for r in rows],
            "speedups": [p.as_json() for p in speedup_pairs(report)],
            "knees": knees,
            "families": [e.as_json() for e in family_edges(report)]}
