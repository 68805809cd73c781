"""The study's figures: speed-up against depth and width per design pattern, working set
against depth with the LLC marked, and speed-up against kernel overlap at matched size.

Same rules as ``reports.figures.core``: a ``Figure`` (no pyplot state), None when there is nothing to
draw, every axis labelled with its unit, every figure titled with what it shows and footed
with where its numbers come from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from reports import trends
from reports.header import llc_bytes
from reports.tables import Report

from .core import COLORS, footer, save, text

_MARKERS = "osD^vP*X"


class _NO:  # stands in for a missing cell: no counters
    meta: dict = {}


def plot_sweep(report: Report, axis: str, path: str | Path) -> Path | None:
    """Speed-up against depth (or width) for each design pattern: lines, 95% CI bands."""
    sweeps = trends.sweep(report, axis)
    if not sweeps:
        return None
    get = trends.depth_of if axis == "depth" else trends.width_of
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    xs_all: set[float] = set()
    for i, (fam, ps) in enumerate(sorted(sweeps.items())):
        x = np.array([get(p.params) for p in ps])
        y = np.array([p.row.speedup for p in ps])
        lo = np.array([p.row.ci95[0] for p in ps])
        hi = np.array([p.row.ci95[1] for p in ps])
        color = COLORS[i % len(COLORS)]
        ax.plot(x, y, marker=_MARKERS[i % len(_MARKERS)], color=color, label=text(fam))
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
        xs_all.update(x.tolist())
    _swept_axis(ax, xs_all)
    ax.axhline(1.0, color="k", lw=1, ls="--")
    what = "depth (blocks)" if axis == "depth" else "width (channels of the first stage)"
    ax.set_xlabel(what + ", log scale")
    ax.set_ylabel(text(f"speed-up over {report.baseline} (×, 95% CI band)"))
    ax.set_ylim(bottom=0)
    ax.set_title(f"Speed-up against {axis} for each design pattern")
    ax.legend(fontsize=8, ncols=2, loc="best")
    ax.grid(alpha=0.3)
    footer(fig, report)
    return save(fig, path)


def plot_working_set(report: Report, axis: str, path: str | Path) -> Path | None:
    """Peak working set (or measured LLC misses, where a cell has them) against depth or width."""
    sweeps = trends.sweep(report, axis)
    get = trends.depth_of if axis == "depth" else trends.width_of
    if not sweeps:
        return None
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    def base(spec: str):
        return next((c for c in report.cells
                     if c.key.spec == spec and c.key.backend == report.baseline), None)

    # Measured misses and modelled bytes are different quantities: plot one kind only.
    measured = any(trends.llc_misses((base(p.row.spec) or _NO).meta.get("counters")) is not None
                   for ps in sweeps.values() for p in ps)
    swept: set[float] = set()
    for i, (fam, ps) in enumerate(sorted(sweeps.items())):
        xs: list[float] = []
        ys: list[float] = []
        for p in ps:
            cell = base(p.row.spec)
            if cell is None:
                continue
            v = (trends.llc_misses(cell.meta.get("counters")) if measured
                 else cell.meta.get("peak_working_set_bytes"))
            if not isinstance(v, (int, float)) or v <= 0:
                continue
            xs.append(get(p.params) or 0.0)
            ys.append(v)
        if len(xs) >= 2:
            swept.update(xs)
            ax.plot(xs, ys, marker=_MARKERS[i % len(_MARKERS)], color=COLORS[i % len(COLORS)],
                    label=text(fam))
    if not ax.lines:
        return None
    llc = None if measured else llc_bytes(report.machine)
    if llc:
        ax.axhline(llc, color="#a00", ls="--", lw=1.2, label=f"LLC size ({llc / 2**20:.0f} MiB)")
    _swept_axis(ax, swept)
    ax.set_yscale("log")
    if not measured:
        ax.yaxis.set_major_locator(LogLocator(base=4))  # 1, 4, 16, 64 MiB: round binary sizes
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _bytes(v)))
    else:  # 1-2-5 steps with plain numbers, so a short range still has labelled ticks
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel(("depth (blocks)" if axis == "depth" else "width (channels of the first stage)")
                  + ", log scale")
    ax.set_ylabel("LLC misses (counted, log scale)" if measured else
                  "peak working set (bytes, log scale; analytic model)")
    ax.set_title(f"{'LLC misses' if measured else 'Working set'} against {axis}"
                 + (", with the last-level cache marked" if llc else ""))
    ax.legend(fontsize=8, ncols=2, loc="best")
    ax.grid(which="both", alpha=0.3)
    footer(fig, report)
    return save(fig, path)


def _swept_axis(ax, values) -> None:
    """Log-2 x axis ticked at exactly the swept values (4, 8, 16), never at 2^k in between."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sorted(values)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _bytes(v: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if v >= scale:
            return f"{v / scale:g} {unit}"
    return f"{v:g} B"


def overlap_points(report: Report) -> list[tuple[int, trends.SpeedupPoint]]:
    """(kernel, point) of the ``overlap`` family at matched size (``match`` set), by kernel."""
    out = []
    for p in trends.points(report):
        if p.family == "overlap" and isinstance(p.params.get("kernel"), int):
            out.append((p.params["kernel"], p))
    return sorted(out, key=lambda kp: kp[0])


def plot_overlap(report: Report, path: str | Path) -> Path | None:
    """Speed-up against kernel size (overlap = kernel - stride) for the overlapping ConvNets."""
    pts = overlap_points(report)
    if len(pts) < 2:
        return None
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for i, match in enumerate(sorted({str(p.params.get("match")) for _, p in pts})):
        sub = [(k, p) for k, p in pts if str(p.params.get("match")) == match]
        x = np.array([k - int(p.params.get("stride", 0)) for k, p in sub], float)
        y = np.array([p.row.speedup for _, p in sub])
        err = np.array([[p.row.speedup - p.row.ci95[0] for _, p in sub],
                        [p.row.ci95[1] - p.row.speedup for _, p in sub]]).clip(0)
        ax.errorbar(x, y, yerr=err, marker=_MARKERS[i], capsize=3, color=COLORS[i],
                    label=text("no size matching" if match in ("none", "None")
                               else f"size matched by {match}"))
    ax.axhline(1.0, color="k", lw=1, ls="--")
    ax.set_xlabel("overlap (kernel − stride, pixels)")
    ax.set_ylabel(text(f"speed-up over {report.baseline} (×, 95% CI)"))
    ax.set_ylim(bottom=0)
    ax.set_title("Speed-up against convolution overlap at matched size")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    footer(fig, report)
    return save(fig, path)
