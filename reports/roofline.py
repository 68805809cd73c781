"""The roofline: each cell's achieved GFLOP/s against its arithmetic intensity, under the
machine's measured roofs (``accelbench peak``).

Why pure data first: ``roofline_points`` is what ``report --json`` and any renderer share;
``plot_roofline`` only draws it. Achieved GFLOP/s is recomputed from the report's median (the
statistic the report states), not taken from the stored counters, so the point and the table
always agree. The intensity comes from the cell's counters and names their source: measured
LLC misses (perf), simulated misses (cachegrind, AVX2 code) or the analytic model's DRAM or
compulsory bytes - points of different sources are not the same kind of figure.

Why one roof per cache level: a cell whose working set lives in L2 or L3 is fed by that level,
whose bandwidth is several times DRAM's; under the DRAM roof such a cell sits "above its roof"
and the report would blame the roofs. ``serving_level`` takes the level from the analytic
model's counters (the largest level any layer needs, DRAM as soon as any byte comes from it)
and the point's roof is that level's triad bandwidth (``accelbench peak`` measures one per
level). Measured counters (perf, cachegrind) count LLC misses, i.e. DRAM traffic: DRAM roof.

Why two compute roofs (issue 23): each point is judged against its own runtime's GEMM roof at
its precision (``fraction_of_peak``) and against the machine's, the best any runtime reached at
that precision (``fraction_of_machine_peak``); the figure draws both, so a cell close to a slow
library's roof is not read as close to what the machine can do.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from harness.counters.roofs import (
    attainable,
    cache_roofs,
    far_below,
    machine_roof,
    roof_level,
    roof_precision,
    runtime_roof,
    serving_level,
)

from .tables import Report

__all__ = ["attainable", "cache_roofs", "far_below", "roofline_points", "serving_level"]

_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def roofline_points(report: Report, peaks: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One point per timed cell that has FLOPs, a median and an arithmetic intensity."""
    points = []
    for row in report.cells:
        counters = row.meta.get("counters") or {}
        intensity = counters.get("arithmetic_intensity")
        if not row.flops or not row.median_ms or not intensity:
            continue
        achieved = row.flops / (row.median_ms * 1e6)
        level = serving_level(counters)
        used = roof_level(level, peaks)
        backend, precision = row.key.backend, row.key.precision
        roof = attainable(intensity, backend, peaks, used, precision)
        top = attainable(intensity, backend, peaks, used, precision, machine=True)
        best = machine_roof(peaks, precision)
        points.append({
            **row.key.as_dict(), "arithmetic_intensity": intensity, "achieved_gflops": achieved,
            "source": counters.get("source"),
            "intensity_basis": counters.get("arithmetic_intensity_basis"),
            "level": level, "roof_level": used,
            "attainable_gflops": roof, "fraction_of_peak": achieved / roof if roof else None,
            "machine_attainable_gflops": top,
            "fraction_of_machine_peak": achieved / top if top else None,
            # the compute roofs themselves: the runtime's own and the machine's (best) one
            "roof_precision": roof_precision(precision, peaks) if peaks else None,
            "runtime_roof_gflops": runtime_roof(backend, peaks, precision),
            "machine_roof_gflops": best[0] if best else None,
            "machine_roof_runtime": best[1] if best else None,
        })
    return points


# What the bytes under "FLOP / byte" are, per ``arithmetic_intensity_basis``; perf's and
# cachegrind's bases read "<source> LLC misses x 64 B".
_BASIS_WORDS = {"compulsory_bytes": "compulsory bytes (weights + input + output)",
                "dram_bytes": "modelled DRAM bytes"}


def basis_words(basis: Any) -> str:
    text = str(basis or "")
    if text in _BASIS_WORDS:
        return _BASIS_WORDS[text]
    return "LLC-miss traffic" if "LLC misses" in text else (text or "unknown bytes")


def axis_label(points: list[dict[str, Any]]) -> str:
    """The x axis says which bytes the intensity divides by; mixed bases say so too."""
    bases = sorted({basis_words(p.get("intensity_basis")) for p in points})
    if len(bases) == 1:
        return f"arithmetic intensity (FLOP / byte of {bases[0]})"
    return "arithmetic intensity (FLOP / byte; bytes per point: see legend)"


def above_roof(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points faster than their attainable figure: the roof was measured in a slower spell (or
    another state) of the machine than the cell, so that roof understates what it can do."""
    return [p for p in points if (p.get("fraction_of_peak") or 0) > 1.0]


def compute_roof_lines(points: list[dict[str, Any]]
                       ) -> tuple[dict[str, tuple[float, str]], dict[tuple[str, str], float]]:
    """The compute roofs a figure draws: the machine's per precision of the points
    (``{precision: (GFLOP/s, runtime)}``) and each point's backend's own at that precision
    (``{(backend, precision): GFLOP/s}``) where it is below the machine's (the best runtime's
    own roof is the machine's line)."""
    machine: dict[str, tuple[float, str]] = {}
    own: dict[tuple[str, str], float] = {}
    for p in points:
        precision, best = p.get("roof_precision"), p.get("machine_roof_gflops")
        if not precision or not best:
            continue
        machine[precision] = (best, str(p.get("machine_roof_runtime")))
        mine = p.get("runtime_roof_gflops")
        if mine and mine < best:
            own[(p["backend"], precision)] = mine
    return machine, own


def plot_roofline(points: list[dict[str, Any]], peaks: Mapping[str, Any] | None,
                  path: str | Path, title: str = "roofline") -> Path | None:
    """Log-log roofline PNG; nothing is written without points (an empty plot reads as zero)."""
    if not points:
        return None
    xs = [p["arithmetic_intensity"] for p in points]
    lo, hi = min(xs) / 4, max(xs) * 4
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_yscale("log")
    backends = sorted({p["backend"] for p in points})
    colors = {b: _COLORS[i % len(_COLORS)] for i, b in enumerate(backends)}
    machine, own = compute_roof_lines(points)
    bandwidth = (peaks or {}).get("bandwidth_gbs")
    if bandwidth:
        top = max(machine.values(), key=lambda v: v[0], default=(float("inf"), ""))[0]
        grid = [lo * (hi / lo) ** (k / 64) for k in range(65)]
        ax.plot(grid, [min(x * bandwidth, top) for x in grid], color="0.3", lw=1.2,
                label=f"memory roof: DRAM triad {bandwidth:.1f} GB/s")
        for (level, bw), ls in zip(sorted(cache_roofs(peaks).items()), ("-.", "--"),
                                   strict=False):
            ax.plot(grid, [min(x * bw, top) for x in grid], color="0.55", lw=1.0, ls=ls,
                    label=f"cache roof: {level} triad {bw:.1f} GB/s")
    # solid black: the machine's roof per precision; dashed in a backend's colour: its own
    # runtime's roof, where it is below the machine's (the best runtime's is the black line)
    widths = {p: w for p, w in zip(sorted(machine), (1.8, 1.3, 0.9), strict=False)}
    for precision, (value, runtime) in sorted(machine.items()):
        ax.axhline(value, color="0.1", ls="-", lw=widths.get(precision, 0.9),
                   label=f"machine roof {precision}: best GEMM {value:.1f} GFLOP/s ({runtime})")
    for (backend, precision), value in sorted(own.items()):
        ax.axhline(value, color=colors[backend], ls="--", lw=widths.get(precision, 0.9),
                   label=f"{backend} roof {precision}: its GEMM {value:.1f} GFLOP/s "
                   f"({value / machine[precision][0]:.0%} of the machine's)")
    markers = {"perf": "o", "cachegrind": "s", "model": "^"}
    mixed = len({basis_words(p.get("intensity_basis")) for p in points}) > 1
    for backend in backends:
        for source, basis in sorted({(str(p["source"]), basis_words(p.get("intensity_basis")))
                                     for p in points}):
            sel = [p for p in points if p["backend"] == backend and str(p["source"]) == source
                   and basis_words(p.get("intensity_basis")) == basis]
            if sel:
                # one colour per backend, one marker per source; hollow where the bytes are
                # only the compulsory ones (a lower bound of traffic, so an upper bound of x)
                color = colors[backend]
                hollow = basis == _BASIS_WORDS["compulsory_bytes"]
                label = f"{backend} ({source}" + (f", {basis})" if mixed else ")")
                ax.scatter([p["arithmetic_intensity"] for p in sel],
                           [p["achieved_gflops"] for p in sel], marker=markers.get(source, "x"),
                           facecolors="none" if hollow else color, edgecolors=color, label=label)
    ax.set_xlim(lo, hi)
    ax.set_xlabel(axis_label(points))
    ax.set_ylabel("achieved performance (GFLOP/s)")
    ax.set_title(title.replace("$", r"\$"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2,
              frameon=False)  # below the axes: inside, it hid the points
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    return out
