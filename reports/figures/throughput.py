"""Images per second against batch: one panel per spec, one line per backend and scenario.

Same rules as ``reports.figures.core``: a ``Figure`` (no pyplot state), None when there is
nothing to draw, every axis labelled with its unit, a title saying what is shown and a footer
saying where the numbers come from. Why log axes: batches double (1, 4, 16), and backends differ
by a factor (OpenVINO several times PyTorch), so a ratio reads as the same distance everywhere.
Why colour by backend and dash by scenario: the question is how far the runtimes stand apart,
and then what requests in flight add to each. The knee (``reports.throughput.knee``) is ringed.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from reports.tables import Report
from reports.throughput import KNEE, curves, knee, throughput_rows

from .core import COLORS, footer, save, text

_STYLE = {"latency": ("--", "s"), "throughput": ("-", "o")}  # (line, marker) per scenario
_DODGE = {"latency": 0.96, "throughput": 1.04}  # apart in x, so error bars at a batch do not hide


def plot_throughput(report: Report, path: str | Path) -> Path | None:
    """images/s (95% CI error bars) against batch, log-log; None unless some curve has two
    batches or more (one batch is a table's row, not a curve)."""
    lines = curves(throughput_rows(report))
    if not any(len(v) >= 2 for v in lines.values()):
        return None
    panels = list(dict.fromkeys((k[0], k[2], k[3]) for k in lines))
    varied = len({(p, t) for _, p, t in panels}) > 1
    backends = sorted({k[1] for k in lines}, key=lambda b: (b != report.baseline, b))
    scenarios = sorted({k[4] for k in lines}, key=lambda s: (s not in _STYLE, s))
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.4 * cols + 2.6, 3.4 * rows + 1.0), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (spec, prec, thr) in zip(axes, panels, strict=False):
        batches: set[int] = set()
        for (s, backend, p, t, scenario), pts in lines.items():
            if (s, p, t) != (spec, prec, thr):
                continue
            color = COLORS[backends.index(backend) % len(COLORS)]
            ls, marker = _STYLE.get(scenario, (":", "^"))
            x = [r.batch for r in pts]
            y = [r.images_per_s or 0.0 for r in pts]  # curves() holds rows with images/s
            dx = [b * _DODGE.get(scenario, 1.0) for b in x]
            err = [[max(v - (r.ci95[0] or v), 0.0) for v, r in zip(y, pts, strict=True)],
                   [max((r.ci95[1] or v) - v, 0.0) for v, r in zip(y, pts, strict=True)]]
            ax.errorbar(dx, y, yerr=err, color=color, ls=ls, marker=marker, ms=4, capsize=3,
                        lw=1.3, elinewidth=0.8)
            k = knee(list(zip(x, y, strict=True)))
            if k is not None and len(pts) >= 2:
                i = x.index(k)
                ax.plot([dx[i]], [y[i]], marker="o", ms=13, mfc="none", mec=color, mew=1.4,
                        ls="none")
            batches.update(x)
        _batch_axis(ax, sorted(batches))
        ax.set_title(text(f"{spec} ({prec}, {thr}t)" if varied else spec), fontsize=9)
        ax.grid(which="both", alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes[::cols][:rows]:
        ax.set_ylabel("images per second (log scale)")
    for ax in axes[:len(panels)][-cols:]:
        ax.set_xlabel("batch (images per request, log scale)")
    handles = [Line2D([], [], color=COLORS[i % len(COLORS)], lw=2, label=text(b))
               for i, b in enumerate(backends)]
    handles += [Line2D([], [], color="#444", ls=_STYLE.get(s, (":", "^"))[0],
                       marker=_STYLE.get(s, (":", "^"))[1], ms=4,
                       label=s + (" scenario:\nrequests in flight where\nthe runtime queues them"
                                  if s == "throughput" else " scenario:\none request at a time")) for s in scenarios]
    handles.append(Line2D([], [], marker="o", ms=10, mfc="none", mec="#444", ls="none",
                          label=f"knee: smallest batch with\n≥{KNEE:.0%} of the best images/s"))
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    fig.suptitle(text(f"Images per second against batch per backend (95% CI; baseline "
                      f"{report.baseline})"), fontsize=11)
    footer(fig, report)
    return save(fig, path)


def _batch_axis(ax, batches: list[int]) -> None:
    """Log-2 batch axis ticked at the batches timed, labelled as plain integers; log images/s
    labelled as plain numbers (no 10^3 notation)."""
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator(batches))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    if len(batches) == 1:
        ax.set_xlim(batches[0] / 2, batches[0] * 2)
    else:
        ax.set_xlim(batches[0] / 1.4, batches[-1] * 1.4)
    plain = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")
    ax.yaxis.set_major_locator(LogLocator(base=10))
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))  # 1-2-5 steps, as core
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
