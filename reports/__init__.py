"""Reports: pure functions from a session's cells to tables, text, pages and plots.

``build_report(session, cells, machine, baseline=..., store=...) -> Report`` computes every number
once; the registered sections (``reports.sections``: how to add one is written there) turn it
into a neutral document; ``render_markdown`` / ``render_html`` / ``render_terminal`` format that
document; ``report_json(report)`` is its ``--json``; ``write_report(report, outdir)`` writes it all. Nothing here opens the store or times
anything: the CLI reads the store and passes plain data in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .document import Figure
from .figures.core import plot_latency_vs_flops, plot_speedups
from .render import (
    blocks_to_html,
    blocks_to_markdown,
    html_escape,
    md_escape,
    render_html,
    render_markdown,
    render_terminal,
)
from .sections import document, section
from .summary import SummaryRow
from .tables import CellRow, Excluded, Report, SpeedupRow, build_report
from .throughput import throughput_json


def report_json(report: Report) -> dict[str, Any]:
    """What ``--json`` and report.json say: ``Report.as_json()`` (the tables) and what a topic
    adds beyond them: ``throughput`` (``reports.throughput``: images/s per cell, the throughput
    speed-up beside the latency one, knees and a sentence per family; null when the session
    holds no throughput or batched cells). Why here: the topic modules read ``tables``, so
    ``tables`` cannot call them back."""
    return {**report.as_json(), "throughput": throughput_json(report)}


def write_report(report: Report, outdir: str | Path) -> dict[str, Path]:
    """Write report.md, report.html (figures embedded), report.json and the PNGs into ``outdir``.

    Returns ``{"markdown", "html", "json", <figure name>...}`` -> path. Figures are drawn first,
    so the pages show only figures that exist (a figure with nothing to plot is not written).
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    blocks = document(report)
    paths: dict[str, Path] = {}
    for b in blocks:
        if isinstance(b, Figure) and b.name not in paths:
            p = b.draw(out / f"{b.name}.png")
            if p is not None:
                paths[b.name] = Path(p)
    images = dict(paths)
    title = f"accelbench report — {report.session.id}"
    texts = {"markdown": ("report.md", blocks_to_markdown(blocks, images)),
             "html": ("report.html", blocks_to_html(blocks, images, title=title)),
             "json": ("report.json",
                      json.dumps(report_json(report), indent=2, allow_nan=False) + "\n")}
    for key, (fname, text) in texts.items():
        path = out / fname
        path.write_text(text, encoding="utf-8")
        paths[key] = path
    return paths


__all__ = [
    "CellRow", "Excluded", "Report", "SpeedupRow", "SummaryRow", "build_report", "document",
    "html_escape", "md_escape", "plot_latency_vs_flops", "plot_speedups", "render_html",
    "render_markdown", "render_terminal", "report_json", "section", "write_report",
]
