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
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from harness.counters.roofs import attainable, cache_roofs, roof_level, serving_level

from .tables import Report

__all__ = ["attainable", "cache_roofs", "roofline_points", "serving_level"]

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
        roof = attainable(intensity, row.key.backend, peaks, used)
        points.append({
            **row.key.as_dict(), "arithmetic_intensity": intensity, "achieved_gflops": achieved,
            "source": counters.get("source"),
            "intensity_basis": counters.get("arithmetic_intensity_basis"),
            "level": level, "roof_level": used,
            "attainable_gflops": roof, "fraction_of_peak": achieved / roof if roof else None,
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
    bandwidth = (peaks or {}).get("bandwidth_gbs")
    gflops = {k: v for k, v in ((peaks or {}).get("gflops") or {}).items() if v}
    if bandwidth:
        top = max(gflops.values(), default=float("inf"))
        grid = [lo * (hi / lo) ** (k / 64) for k in range(65)]
        ax.plot(grid, [min(x * bandwidth, top) for x in grid], color="0.3", lw=1.2,
                label=f"memory roof: DRAM triad {bandwidth:.1f} GB/s")
        for (level, bw), ls in zip(sorted(cache_roofs(peaks).items()), ("-.", "--"),
                                   strict=False):
            ax.plot(grid, [min(x * bw, top) for x in grid], color="0.55", lw=1.0, ls=ls,
                    label=f"cache roof: {level} triad {bw:.1f} GB/s")
    styles = ["--", ":", "-.", (0, (5, 1, 1, 1))]
    for i, (name, value) in enumerate(sorted(gflops.items())):  # greys: colours are backends
        ax.axhline(value, color="0.45", ls=styles[i % len(styles)], lw=1.1,
                   label=f"compute roof: GEMM via {name} {value:.1f} GFLOP/s")
    backends = sorted({p["backend"] for p in points})
    markers = {"perf": "o", "cachegrind": "s", "model": "^"}
    mixed = len({basis_words(p.get("intensity_basis")) for p in points}) > 1
    for i, backend in enumerate(backends):
        for source, basis in sorted({(str(p["source"]), basis_words(p.get("intensity_basis")))
                                     for p in points}):
            sel = [p for p in points if p["backend"] == backend and str(p["source"]) == source
                   and basis_words(p.get("intensity_basis")) == basis]
            if sel:
                # one colour per backend, one marker per source; hollow where the bytes are
                # only the compulsory ones (a lower bound of traffic, so an upper bound of x)
                color = _COLORS[i % len(_COLORS)]
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
