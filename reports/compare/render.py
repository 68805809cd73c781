"""Markdown, self-contained HTML and a grouped bar chart of a ``Comparison``.

Why the HTML embeds its image (base64): a CI job publishes the page as one artifact or a job
summary, where relative image links break. Every table names the machines it compares and the
footer says how the intervals were made, so a figure never travels without its source.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from harness.measure.scenarios import LATENCY
from reports.render import html_escape, md_escape

from .analysis import Change, Comparison, Estimate

_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
_METHOD = ("Intervals are 95%: each session's from a nested bootstrap (its cell's process "
           "pairs, then the blocks within each); a ratio between sessions combines their "
           "log-scale errors. \"within noise\": the ratio's interval does not lie wholly beyond "
           "the noise threshold.")


def method(cmp: Comparison) -> str:
    """The footer: how the intervals were made, and which session-level terms they carry."""
    text = _METHOD
    machines = list(dict.fromkeys(str(s.session.machine_id) for s in cmp.sources))
    with_term = [m for m in machines if cmp.session_terms.get(m)]
    for m in with_term:
        said = ", ".join(f"{k} ±{t.sd:.1%} (from {t.cells} A/A cells)"
                         for k, t in cmp.session_terms[m].items())
        text += (f" Changes of machine {m} also carry the session level its A/A run showed "
                 f"(one sd: {said}): how far a whole session lands from the next.")
    without = [m for m in machines if m not in with_term]
    if without:
        text += (f" No session level is added for machine {', '.join(without)} (no A/A run "
                 f"recorded, or --within-session): those intervals cover the variation within "
                 f"each session only, and two sessions on a shared machine can differ beyond "
                 f"them (record one with `accelbench compare A B --record-noise`).")
    return text + _aa_check(cmp)


def _aa_check(cmp: Comparison) -> str:
    """For an A/A (one machine): whether a repeat landed inside each interval."""
    from .aa import repeats_sentence

    got = cmp.repeats
    return f" These sessions ran on one machine (an A/A): {repeats_sentence(got)}." if got else ""


def _est(e: Estimate | None, unit: str) -> str:
    if e is None:
        return "-"
    fmt = "{:.3g}" if unit == "ms" else "{:.2f}"
    return f"{fmt.format(e.value)}{' ms' if unit == 'ms' else '×'} [{fmt.format(e.ci95[0])}, {fmt.format(e.ci95[1])}]"


def _chg(c: Change | None) -> str:
    if c is None:
        return "-"
    text = f"×{c.ratio:.3f} [{c.ci95[0]:.3f}, {c.ci95[1]:.3f}]"
    return text if c.significant else f"{text} within noise"


def tables(cmp: Comparison) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the two tables, shared by Markdown and HTML."""
    labels = [s.label for s in cmp.sources]
    ref = labels[0]
    sp_head = ["spec", "precision", "threads", "speed-up"] + labels + \
              [f"{x} / {ref}" for x in labels[1:]]
    sp_rows = [[_named(r.spec, r.scenario), r.precision, str(r.threads), f"{r.candidate} over {r.baseline}",
                *(_est(e, "x") for e in r.speedup), *(_chg(c) for c in r.change)]
               for r in cmp.speedups]
    lat_head = ["spec", "backend", "precision", "threads"] + [f"{x} median" for x in labels] + \
               [f"{x} / {ref} time" for x in labels[1:]]
    lat_rows = [[_named(r.key.spec, r.key.scenario), r.key.backend, r.key.precision, str(r.key.threads),
                 *(_est(e, "ms") for e in r.latency), *(_chg(c) for c in r.change)]
                for r in cmp.latencies]
    return [("Speed-ups per machine", sp_head, sp_rows),
            ("Latencies per machine", lat_head, lat_rows)]


def _named(spec: str, scenario: str) -> str:
    """A spec as compare shows it: a throughput row says so (its figures are per image, its
    speed-up a ratio of images per second)."""
    return spec if scenario == LATENCY else f"{spec} [{scenario}, per image]"


def _sources_lines(cmp: Comparison) -> list[tuple[str, str]]:
    out = []
    for i, s in enumerate(cmp.sources):
        v = ", ".join(f"{k} {x}" for k, x in sorted(s.versions.items()))
        role = " (reference)" if i == 0 else ""
        out.append((s.label + role, f"{s.brand}, machine {s.session.machine_id}, session "
                    f"{s.session.id} in {s.path}; {v}"))
    return out


def render_markdown(cmp: Comparison, *, regressions: Sequence[str] = (),
                    image: str | None = None) -> str:
    lines = ["# accelbench compare", ""]
    lines += [f"- **{md_escape(k)}**: {md_escape(v)}" for k, v in _sources_lines(cmp)]
    lines.append("")
    for w in cmp.warnings:
        lines.append(f"> warning: {md_escape(w)}")
    if cmp.warnings:
        lines.append("")
    for title, head, rows in tables(cmp):
        lines += [f"## {title}", "", "| " + " | ".join(map(md_escape, head)) + " |",
                  "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(map(md_escape, r)) + " |" for r in rows]
        lines.append("")
    if image:
        lines += [f"![speed-ups and latencies per machine]({image})", ""]
    if regressions:
        lines += ["## Regressions", ""] + [f"- {md_escape(r)}" for r in regressions] + [""]
    only = ", ".join(f"{k}: {n}" for k, n in cmp.unmatched.items() if n)
    if only:
        lines += [f"Cells without a counterpart (not compared): {md_escape(only)}.", ""]
    lines.append(md_escape(method(cmp)))
    return "\n".join(lines) + "\n"


def render_html(cmp: Comparison, *, regressions: Sequence[str] = (),
                png: bytes | None = None) -> str:
    h = html_escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>accelbench compare</title>",
             # Fits a 1280-pixel window: wide tables scroll in their own box, the chart shrinks.
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             ".table{overflow-x:auto;max-width:100%}img{max-width:100%;height:auto}"
             "li,p{overflow-wrap:anywhere}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}"
             ".warn{color:#a60}</style></head><body><h1>accelbench compare</h1><ul>"]
    parts += [f"<li><b>{h(k)}</b>: {h(v)}</li>" for k, v in _sources_lines(cmp)]
    parts.append("</ul>")
    parts += [f"<p class='warn'>warning: {h(w)}</p>" for w in cmp.warnings]
    for title, head, rows in tables(cmp):
        parts.append(f"<h2>{h(title)}</h2><div class='table'><table><tr>" + "".join(f"<th>{h(x)}</th>" for x in head)
                     + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{h(x)}</td>" for x in r) + "</tr>" for r in rows]
        parts.append("</table></div>")
    if png:
        parts.append("<img alt='speed-ups and latencies per machine' src='data:image/png;base64,"
                     + base64.b64encode(png).decode("ascii") + "'>")
    if regressions:
        parts.append("<h2>Regressions</h2><ul>" + "".join(f"<li>{h(r)}</li>" for r in regressions)
                     + "</ul>")
    parts.append(f"<p>{h(method(cmp))}</p></body></html>")
    return "\n".join(parts) + "\n"


def plot_png(cmp: Comparison) -> bytes | None:
    """Grouped bars: speed-up per spec (top) and median latency per cell (bottom, log scale),
    one colour per machine, 95% intervals as error bars. None when nothing was joined."""
    if not cmp.latencies:
        return None
    labels = [s.label for s in cmp.sources]
    panels = [p for p in (
        ("speed-up (x)", [f"{_named(r.spec, r.scenario)}\n{r.candidate}" for r in cmp.speedups],
         [r.speedup for r in cmp.speedups], False),
        ("median latency (ms)", [f"{_named(r.key.spec, r.key.scenario)}\n{r.key.backend}"
                                 for r in cmp.latencies],
         [r.latency for r in cmp.latencies], True)) if p[1]]
    width = max(8.0, 0.5 * max(len(p[1]) for p in panels) * len(labels))
    fig = Figure(figsize=(min(width, 40.0), 4.5 * len(panels)), layout="constrained")
    step = 0.8 / len(labels)
    for n, (ylabel, names, ests, log) in enumerate(panels, start=1):
        ax = fig.add_subplot(len(panels), 1, n)
        for i, label in enumerate(labels):
            xs: list[float] = []
            ys: list[float] = []
            err: list[list[float]] = [[], []]
            for j, row in enumerate(ests):
                e = row[i]
                if e is None:
                    continue
                xs.append(j + (i - (len(labels) - 1) / 2) * step)
                ys.append(e.value)
                err[0].append(max(e.value - e.ci95[0], 0.0))
                err[1].append(max(e.ci95[1] - e.value, 0.0))
            ax.bar(xs, ys, step, yerr=err, capsize=2, label=label.replace("$", r"\$"),
                   color=_COLORS[i % len(_COLORS)])
        ax.set_xticks(range(len(names)), [x.replace("$", r"\$") for x in names],
                      rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        else:
            ax.axhline(1.0, color="grey", lw=0.8)
        ax.legend(fontsize=8)
    fig.suptitle("accelbench compare: " + " vs ".join(labels).replace("$", r"\$"), fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def write_comparison(cmp: Comparison, outdir: str | Path, *,
                     regressions: Sequence[str] = ()) -> dict[str, Path]:
    """compare.md, compare.html (image embedded), compare.png and compare.json in ``outdir``."""
    import json

    from reports.jsonable import jsonable

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    png = plot_png(cmp)
    if png:
        paths["png"] = out / "compare.png"
        paths["png"].write_bytes(png)
    paths["markdown"] = out / "compare.md"
    paths["markdown"].write_text(render_markdown(cmp, regressions=regressions,
                                                 image="compare.png" if png else None))
    paths["html"] = out / "compare.html"
    paths["html"].write_text(render_html(cmp, regressions=regressions, png=png))
    paths["json"] = out / "compare.json"
    data = {**cmp.as_json(), "regressions": jsonable(list(regressions))}
    paths["json"].write_text(json.dumps(data, indent=2) + "\n")
    return paths
