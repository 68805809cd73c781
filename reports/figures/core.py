"""PNG plots of a ``Report``.

Why ``matplotlib.figure.Figure`` and not ``pyplot``: pyplot keeps global state and picks a GUI
backend; a ``Figure`` saved directly renders with Agg, needs no display, and is freed with its
last reference, so calling this from a long CLI process leaks nothing.

A plot with nothing to show is not written (the function returns None): an empty axis in a
report reads as "measured zero", which is worse than no figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator

from reports.tables import Report
from reports.views import latency_view

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]


def text(s: object) -> str:
    """Matplotlib parses ``$…$`` as mathtext (a bad spec could raise); show it literally."""
    return str(s).replace("$", r"\$")


def footer(fig: Figure, report: Report) -> None:
    """Every figure says where its numbers come from: session, machine, precision, threads."""
    precs = ",".join(sorted({c.key.precision for c in report.cells}))
    thr = ",".join(str(t) for t in sorted({c.key.threads for c in report.cells}))
    fig.supxlabel(text(f"accelbench session {report.session.id} · "
                        f"{report.machine_brand or 'unknown CPU'} · {precs} · {thr} threads"),
                  fontsize=7, color="#666")


def _label(spec: str, precision: str, threads: int, varied: bool) -> str:
    return text(f"{spec} ({precision}, {threads}t)" if varied else spec)


def plot_speedups(report: Report, path: str | Path) -> Path | None:
    """Horizontal bars: speed-up per spec (rows, grouped by family, each group sorted by its
    speed-up) and candidate (colours), CI whiskers, 1.0 line.

    Value labels sit right of the whisker's end so they never collide with it; comparisons
    that were not made are listed on their row, so a missing bar is explained. Latency
    speed-ups only (``reports.views``): throughput ones have their own figure.
    """
    report = latency_view(report)
    if not report.speedups:
        return None
    best: dict[tuple[str, str, int], float] = {}
    for r in report.speedups:
        g = (r.spec, r.precision, r.threads)
        best[g] = max(best.get(g, 0.0), r.speedup)
    for e in report.excluded:
        best.setdefault((e.spec, e.precision, e.threads), 0.0)
    fam_best: dict[str, float] = {}
    for (spec, _, _), v in best.items():
        fam = spec.split(":", 1)[0]
        fam_best[fam] = max(fam_best.get(fam, 0.0), v)
    groups = sorted(best, key=lambda g: (-fam_best[g[0].split(":", 1)[0]],
                                         g[0].split(":", 1)[0], -best[g], g))
    candidates = sorted({r.candidate for r in report.speedups})
    varied = len({(p, t) for _, p, t in groups}) > 1
    height = 0.8 / len(candidates)
    fig = Figure(figsize=(8.5, 1.6 + 0.32 * len(groups) * max(1, len(candidates) ** 0.5)),
                 layout="constrained")
    ax = fig.add_subplot()
    xmax = 1.0
    for i, cand in enumerate(candidates):
        ys: list[float] = []
        xs: list[float] = []
        his: list[float] = []
        errs: list[list[float]] = [[], []]
        for r in report.speedups:
            if r.candidate != cand:
                continue
            y = groups.index((r.spec, r.precision, r.threads)) + (i - (len(candidates) - 1) / 2) * height
            lo, hi = r.ci95
            ys.append(y)
            xs.append(r.speedup)
            errs[0].append(max(r.speedup - lo, 0.0))
            errs[1].append(max(hi - r.speedup, 0.0))
            his.append(max(hi, r.speedup))
            xmax = max(xmax, hi)
        ax.barh(ys, xs, height=height * 0.9, xerr=errs, capsize=2,
                color=COLORS[i % len(COLORS)], label=text(cand), error_kw={"lw": 0.8})
        for y, x, hi in zip(ys, xs, his, strict=True):
            ax.annotate(f"{x:.2f}×", (hi, y), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=7)
    for e in report.excluded:
        y = groups.index((e.spec, e.precision, e.threads))
        ax.text(0.02 * xmax, y, text(f"{e.candidate}: not reported ({e.why.split(':')[0]})"),
                va="center", fontsize=8, color="#a00", style="italic")
    prev = None
    for k, g in enumerate(groups):  # a faint line between families
        fam = g[0].split(":", 1)[0]
        if prev is not None and fam != prev:
            ax.axhline(k - 0.5, color="#bbb", lw=0.6)
        prev = fam
    ax.axvline(1.0, color="k", lw=1, ls="--")
    ax.set_yticks(range(len(groups)), [_label(*g, varied) for g in groups], fontsize=8)
    ax.set_ylim(len(groups) - 0.5, -0.5)
    ax.set_xlim(0, xmax * 1.18)
    reading = "median ratio" if report.quiet_quantile() is None else "quiet-state ratio"
    ax.set_xlabel(text(f"speed-up over {report.baseline} (×, {reading}, 95% bootstrap CI)"))
    ax.set_title(text(f"Speed-up over {report.baseline} per architecture, grouped by family"))
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    footer(fig, report)
    return save(fig, path)


def plot_latency_vs_flops(report: Report, path: str | Path) -> Path | None:
    """Median latency against FLOPs per backend, log-log, for done cells that carry FLOPs.

    Why log-log: specs span orders of magnitude in FLOPs, and a backend whose latency scales
    with compute shows as a line of slope ~1; offsets between backends are constant ratios.
    """
    report = latency_view(report)  # a throughput cell's median is per image, not per inference
    points: dict[str, list[tuple[float, float, float, float, str]]] = {}
    for c in report.cells:
        med, fl = c.median_ms, c.flops
        if c.status != "done" or med is None or fl is None or med <= 0 or fl <= 0:
            continue
        lo, hi = c.ci95_ms
        lo = med if lo is None else lo
        hi = med if hi is None else hi
        points.setdefault(c.key.backend, []).append((fl, med, med - lo, hi - med, c.key.spec))
    if not points:
        return None
    from reports.trends import correlations

    corr = correlations(report)
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.add_subplot()
    backends = sorted(points, key=lambda b: b != report.baseline)
    label_specs = sum(len(v) for v in points.values()) <= 16
    for i, b in enumerate(backends):
        arr = np.array([p[:4] for p in points[b]], dtype=float)
        k = corr.get(b)
        label = b if k is None else (
            f"{b}: Pearson r={k.pearson:.2f} [{k.pearson_ci[0]:.2f}, {k.pearson_ci[1]:.2f}], "
            f"Spearman ρ={k.spearman:.2f} [{k.spearman_ci[0]:.2f}, {k.spearman_ci[1]:.2f}]")
        ax.errorbar(arr[:, 0], arr[:, 1], yerr=np.clip(arr[:, 2:4].T, 0, None), fmt="o",
                    color=COLORS[i % len(COLORS)], capsize=2, label=text(label), ms=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    if label_specs:  # name the baseline's points; right-hand ones read leftwards to stay inside
        lx = np.log10([p[0] for v in points.values() for p in v])
        mid = (lx.min() + lx.max()) / 2
        for fl, med, *_, spec in points[backends[0]]:
            right = np.log10(fl) > mid
            ann = ax.annotate(text(spec), (fl, med), xytext=(-5 if right else 5, 4),
                              textcoords="offset points", ha="right" if right else "left",
                              fontsize=7, alpha=0.8)
            ann.set_in_layout(False)
    # Short ranges make matplotlib label every minor tick (overlapping 2×10^8 3×10^8 …): label
    # only 1-2-5 steps, with SI prefixes for FLOPs and plain numbers for milliseconds.
    for axis, fmt in ((ax.xaxis, EngFormatter(sep="")),
                      (ax.yaxis, FuncFormatter(lambda v, _: f"{v:g}"))):
        axis.set_major_locator(LogLocator(base=10))
        axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
        axis.set_major_formatter(fmt)
        axis.set_minor_formatter(fmt)
    ax.set_xlabel("FLOPs per inference (log scale)")
    ax.set_ylabel("median latency (ms, log scale)")
    ax.set_title("Latency against FLOPs per backend (correlations of log values, 95% CI)")
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    footer(fig, report)
    return save(fig, path)


def save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110)
    return path
