"""Reports: pure functions from a session's cells to tables, text, pages and plots.

``build_report(session, cells, machine, baseline=..., store=...) -> Report`` computes every number
once; ``render_markdown`` / ``render_html`` / ``render_terminal`` and the ``plot_*`` functions only
format it; ``write_report(report, outdir)`` writes them all. Nothing here opens the store or times
anything: the CLI reads the store and passes plain data in.
"""

from __future__ import annotations

import json
from pathlib import Path

from .plots import plot_latency_vs_flops, plot_speedups
from .render import html_escape, md_escape, render_html, render_markdown, render_terminal
from .tables import CellRow, Excluded, Report, SpeedupRow, SummaryRow, build_report

PLOTS = {"speedups": plot_speedups, "latency_vs_flops": plot_latency_vs_flops}


def write_report(report: Report, outdir: str | Path) -> dict[str, Path]:
    """Write report.md, report.html, report.json and the PNGs that have data into ``outdir``.

    Returns ``{"markdown", "html", "json", "speedups"?, "latency_vs_flops"?}`` -> path. Plots are
    drawn first so the pages reference only images that exist.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, plot in PLOTS.items():
        p = plot(report, out / f"{name}.png")
        if p is not None:
            paths[name] = p
    images = [p.name for p in paths.values()]
    texts = {"markdown": ("report.md", render_markdown(report, images=images)),
             "html": ("report.html", render_html(report, images=images)),
             "json": ("report.json",
                      json.dumps(report.as_json(), indent=2, allow_nan=False) + "\n")}
    for key, (fname, text) in texts.items():
        path = out / fname
        path.write_text(text, encoding="utf-8")
        paths[key] = path
    return paths


__all__ = [
    "CellRow", "Excluded", "PLOTS", "Report", "SpeedupRow", "SummaryRow", "build_report",
    "html_escape", "md_escape", "plot_latency_vs_flops", "plot_speedups", "render_html",
    "render_markdown", "render_terminal", "write_report",
]
