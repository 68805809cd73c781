"""The baseline ladder: where the eager->OpenVINO speed-up comes from (issue 16).

Pure functions over stored cells: ``ladder_rows`` gives, per spec, the latency on each rung of
``harness.backends.ladder.LADDER`` with its CI and each rung's share of the total gain;
``plot_ladder`` draws one stacked "where the speed-up comes from" bar per spec, grouped by
family; ``depth_trend`` says whether OpenVINO's own share grows or shrinks with depth.

How a share is defined, and why: speed-ups multiply, so the gain is measured in log latency
(``scale="log"``; ``"ms"`` is offered too). A PyTorch rung's step is its improvement over the
best rung *below* it (a user keeps the best so far, so a rung that is slower than an earlier one
earns nothing rather than a negative share); OpenVINO's step is its speed-up over the best
PyTorch rung, which may be negative when PyTorch wins. The steps telescope, so the shares add up
to exactly the eager->OpenVINO gain. A rung that did not run (compile failure, flagged parity)
has no share and its reason is kept.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.ladder import LADDER, OTHERS, Rung
from harness.backends.precision import QUANTIZED
from harness.measure.estimate import cell_summary, latency_priors
from harness.measure.results import DONE, LATENCY

_COLORS = {"baseline": "#7f7f7f", "layout": "#1f77b4", "compilation": "#ff7f0e",
           "graph optimization (freezing)": "#2ca02c", "OpenVINO's own kernels": "#d62728"}


@dataclass(frozen=True)
class RungResult:
    """One rung for one spec. ``step``: speed-up over the best rung below (OpenVINO: over the
    best PyTorch rung); ``share``: fraction of the total eager->OpenVINO gain."""

    backend: str
    label: str
    adds: str
    median_ms: float | None
    ci95_ms: tuple[float | None, float | None]
    compile_s: float | None
    step: float | None
    share: float | None
    note: str | None = None
    over_eager: float | None = None
    over_best_torch: float | None = None  # the fastest PyTorch rung of the chain
    precision: str | None = None


@dataclass(frozen=True)
class LadderRow:
    spec: str
    family: str
    precision: str
    threads: int
    rungs: tuple[RungResult, ...]
    total_speedup: float | None  # eager latency / OpenVINO latency
    best_torch: str | None  # the fastest PyTorch rung
    openvino_over_best_torch: float | None
    others: tuple[RungResult, ...] = ()  # OTHERS: int8 and other runtimes, not in the chain

    def share_of(self, adds: str) -> float | None:
        return next((r.share for r in self.rungs if r.adds == adds), None)


def _cells_of(report_or_cells: Any) -> list[tuple[Any, str, str | None, Mapping[str, Any], Mapping]]:
    """``(key, status, reason, stats, meta)`` from a ``Report`` (its rows) or ``CellResult``s."""
    rows = list(getattr(report_or_cells, "cells", report_or_cells))
    raw = [c for c in rows if hasattr(c, "samples_ms") and c.status == DONE]
    priors = latency_priors(raw) if raw else {}
    out: list[tuple[Any, str, str | None, Mapping[str, Any], Mapping]] = []
    for c in rows:
        if hasattr(c, "samples_ms"):  # a CellResult: derive statistics from its raw samples
            # nested over processes where recorded, moderated by the session's cells
            summary = cell_summary(c, prior=priors.get(c.key.backend))
        else:
            summary = c.stats
        out.append((c.key, c.status, c.reason, summary, c.meta))
    return out


def ladder_rows(report_or_cells: Any, rungs: Sequence[Rung] = LADDER, *,
                scale: str = "log", others: Sequence[Rung] = OTHERS) -> list[LadderRow]:
    """One row per (spec, precision, threads) that ran any rung of the chain; quantized
    precisions are no rows of their own: their cells are the int8 rungs of the f32 row."""
    if scale not in ("log", "ms"):
        raise ValueError(f"scale={scale!r}: expected 'log' or 'ms'")
    by_group: dict[tuple[str, str, int, str], dict[str, tuple]] = {}
    for key, status, reason, summary, meta in _cells_of(report_or_cells):
        by_group.setdefault(key.group(), {})[key.backend] = (status, reason, summary, meta)
    rows = []
    for (spec, precision, threads, scenario), cells in by_group.items():
        # the ladder is a latency question; throughput cells have their own section
        if scenario != LATENCY or precision in QUANTIZED or not any(r.backend in cells
                                                                     for r in rungs):
            continue
        row = _row(spec, precision, threads, cells, rungs, scale)
        extra = []
        for rung in others:
            if rung.precision and precision != "f32":  # int8 rungs stand against f32 only
                continue
            group = by_group.get((spec, rung.precision or precision, threads, scenario), {})
            if rung.backend in group:
                extra.append(_other(rung, group[rung.backend], row))
        rows.append(dataclasses.replace(row, others=tuple(extra)))
    return rows


def _other(rung: Rung, cell: tuple, row: LadderRow) -> RungResult:
    """An alternative's latency and its speed-ups over eager and over the best PyTorch rung."""
    status, reason, summary, meta = cell
    median = summary.get("median") if status == DONE else None
    ci = tuple(summary.get("ci95") or (None, None)) if status == DONE else (None, None)
    note = None if median else (f"{status}: {reason}" if reason else status)
    eager = row.rungs[0].median_ms
    best = next((r.median_ms for r in row.rungs if r.backend == row.best_torch), None)
    return RungResult(rung.backend, rung.label, rung.adds, median, ci, meta.get("compile_s"),
                      None, None, note,
                      over_eager=eager / median if eager and median else None,
                      over_best_torch=best / median if best and median else None,
                      precision=rung.precision or row.precision)


def _row(spec: str, precision: str, threads: int, cells: Mapping[str, tuple],
         rungs: Sequence[Rung], scale: str) -> LadderRow:
    measured: list[tuple[Rung, float | None, tuple, float | None, str | None]] = []
    for rung in rungs:
        status, reason, summary, meta = cells.get(rung.backend, ("missing", "not run", {}, {}))
        median = summary.get("median") if status == DONE else None
        ci = tuple(summary.get("ci95") or (None, None)) if status == DONE else (None, None)
        note = None if median else (f"{status}: {reason}" if reason else status)
        measured.append((rung, median, ci, meta.get("compile_s"), note))

    def gain(a: float, b: float) -> float:
        return math.log(a / b) if scale == "log" else a - b

    eager, ov = measured[0][1], measured[-1][1]
    total = gain(eager, ov) if eager and ov else None
    usable = total is not None and abs(total) > 1e-12
    out: list[RungResult] = []
    best, best_backend = eager, rungs[0].backend if eager else None
    for i, (rung, median, ci, compile_s, note) in enumerate(measured):
        step = share = None
        if i == 0:
            step, share = (1.0, 0.0) if median else (None, None)
        elif median and best:
            last = i == len(measured) - 1
            new_best = median if last else min(best, median)
            step = best / new_best
            share = gain(best, new_best) / total if usable and total is not None else None
            if not last and median < best:
                best, best_backend = median, rung.backend
        out.append(RungResult(rung.backend, rung.label, rung.adds, median, ci, compile_s,
                              step, share, note))
    return LadderRow(
        spec, spec.partition(":")[0], precision, threads, tuple(out),
        total_speedup=eager / ov if eager and ov else None,
        best_torch=best_backend,
        openvino_over_best_torch=best / ov if best and ov else None,
    )


def _depth(spec: str) -> int | None:
    m = re.search(r"(?:^|[:,])depth=(\d+)", spec)
    if m:
        return int(m.group(1))
    import archs  # the family's default depth (canonical specs omit defaults)

    value = archs.resolve(spec).get("depth")
    return value if isinstance(value, int) else None


# Shares within this many points of each other across depth read as flat: a rung's share moves
# by a few points between sessions on the same machine (2 s budgets, CIs of +-4%).
FLAT_SHARE = 0.05


def depth_trend(rows: Iterable[LadderRow], adds: str = LADDER[-1].adds,
                depth_of: Callable[[str], int | None] = _depth) -> dict[str, dict[str, Any]]:
    """Per family with two or more depths: ``{"points": [(depth, share)...], "trend"}``, where
    trend is ``stays flat`` (spread under ``FLAT_SHARE``), ``grows``, ``shrinks`` or ``mixed``
    for the share of ``adds`` (OpenVINO's own)."""
    points: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        share = row.share_of(adds)
        depth = depth_of(row.spec)
        if share is not None and depth is not None:
            points.setdefault(row.family, []).append((depth, share))
    out = {}
    for family, pts in points.items():
        pts.sort()
        if len({d for d, _ in pts}) < 2:
            continue
        diffs = [b[1] - a[1] for a, b in zip(pts, pts[1:], strict=False)]
        spread = max(s for _, s in pts) - min(s for _, s in pts)
        trend = ("stays flat" if spread < FLAT_SHARE
                 else "grows" if all(d > 0 for d in diffs)
                 else "shrinks" if all(d < 0 for d in diffs) else "mixed")
        out[family] = {"points": pts, "trend": trend}
    return out


def row_label(row: LadderRow, several: bool) -> str:
    """The spec, with its precision and threads when the rows hold several (a session run at
    f32 and bf16 has two rows per spec, which would otherwise read as one spec twice)."""
    if not several:
        return row.spec
    return f"{row.spec} ({row.precision}, {row.threads}t)"


def plot_ladder(rows: Sequence[LadderRow], path: str | Path, *, source: str = "") -> Path | None:
    """Stacked horizontal bars, one per spec grouped by family: each rung's share (%) of the
    eager->OpenVINO gain, the total speed-up written at the bar's end. ``source`` (session,
    machine) goes in the title with the precision and threads. None when nothing can be drawn."""
    from matplotlib.figure import Figure

    rows = sorted((r for r in rows if r.total_speedup), key=lambda r: r.family)
    if not rows:
        return None
    kinds = [r.adds for r in LADDER[1:]]
    fig = Figure(figsize=(9, 1.6 + 0.4 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    drawn: set[str] = set()
    labels = []
    lo_x, hi_x = 0.0, 100.0
    several = len({(r.precision, r.threads) for r in rows}) > 1
    for y, row in enumerate(rows):
        labels.append(row_label(row, several).replace("$", r"\$"))
        left_pos = left_neg = 0.0
        for rung in row.rungs[1:]:
            if rung.share is None:
                continue
            width = 100 * rung.share
            start = left_pos if width >= 0 else left_neg
            ax.barh(y, width, left=start, color=_COLORS.get(rung.adds, "#9467bd"),
                    label=rung.adds if rung.adds not in drawn else None)
            drawn.add(rung.adds)
            if width >= 0:
                left_pos += width
            else:
                left_neg += width
        ax.text(max(left_pos, 0) + 1, y, f"{row.total_speedup:.2f}×", va="center", fontsize=8)
        lo_x, hi_x = min(lo_x, left_neg), max(hi_x, left_pos)
    families = [r.family for r in rows]
    for y in range(1, len(rows)):
        if families[y] != families[y - 1]:
            ax.axhline(y - 0.5, color="black", lw=0.6)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("share of the eager->OpenVINO gain (% of log latency); total speed-up at right")
    where = {f"{r.precision}, {r.threads} thread{'' if r.threads == 1 else 's'}" for r in rows}
    # the source (session, machine) already says precision and threads; one line each
    second = source or "; ".join(sorted(where))
    ax.set_title(f"Where the speed-up comes from\n{second}".replace("$", r"\$"), fontsize=9)
    handles, names = ax.get_legend_handles_labels()
    order = sorted(range(len(names)), key=lambda i: kinds.index(names[i]) if names[i] in kinds else 99)
    fig.legend([handles[i] for i in order], [names[i] for i in order], fontsize=8, ncol=4,
               loc="outside lower center")
    ax.set_xlim(lo_x - 2, hi_x + 12)  # room for the total speed-up written after each bar
    ax.grid(axis="x", alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110)
    return path
