"""Markdown, HTML and terminal renderings of a ``Report``.

Why one plain-text layer under three renderers: every field is first formatted to plain text
(``_cell_fields``, ``_speedup_fields``, ``_summary_fields``) and each renderer then escapes *all*
of it for its medium. Specs, reasons, configs and machine names come from users, exceptions and
``/proc/cpuinfo``; a reason like ``<script>…`` or ``a|b`` must print as text, not as markup or a
broken table, and escaping everything at one choke point is the only way not to miss a field.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timezone

from rich.console import Console
from rich.markup import escape as rich_escape
from rich.table import Table

from harness.results import DONE, FAILED, FLAGGED, SKIPPED

from .tables import CellRow, Report, SpeedupRow, SummaryRow

_TERM_REASON = 160  # a full traceback stays in the Markdown/HTML/JSON; the terminal gets a line
_MD_SPECIAL = "\\`*_[]<>|&~"
_STATUS_STYLE = {DONE: "green", FLAGGED: "yellow", FAILED: "red", SKIPPED: "dim"}
_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.flagged{background:#fff6d5}tr.failed{background:#fde2e2}tr.skipped{color:#888}
img{max-width:100%;display:block;margin:1em 0}dt{font-weight:bold}"""


def md_escape(text: object) -> str:
    """Backslash-escape Markdown's inline syntax and fold newlines, so a value stays one cell."""
    s = " ".join(str(text).splitlines())
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in s)


def html_escape(text: object) -> str:
    return html.escape(str(text), quote=True)


# ---- plain-text fields, shared by every renderer -------------------------------------------

def _ms(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.1f}" if x >= 100 else f"{x:.2f}" if x >= 10 else f"{x:.3f}"


def _x(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def _ci(lo: float | None, hi: float | None, fmt=_ms) -> str:
    return "—" if lo is None or hi is None else f"[{fmt(lo)}, {fmt(hi)}]"


def _flops(x: float | None) -> str:
    if x is None:
        return "—"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}FLOP"
    return f"{x:.3g} FLOP"


def _speedup_note(report: Report, row: CellRow) -> tuple[str, str]:
    """(speed-up text, its CI) for a cell: baseline, a number, or why there is none."""
    if row.key.backend == report.baseline:
        return ("baseline", "")
    s = report.speedup_for(row.key)
    if s is not None:
        return (_x(s.speedup), _ci(*s.ci95, fmt=lambda v: f"{v:.2f}"))
    e = report.excluded_for(row.key)
    return (f"not reported ({e.why.split(':')[0]})" if e else "not reported", "")


def _cell_fields(report: Report, row: CellRow) -> dict[str, str]:
    lo, hi = row.ci95_ms
    half = "" if lo is None or hi is None else f" ± {_ms((hi - lo) / 2)}"
    sp, sp_ci = _speedup_note(report, row)
    return {
        "spec": row.key.spec, "backend": row.key.backend, "precision": row.key.precision,
        "threads": str(row.key.threads), "status": row.status,
        "median": _ms(row.median_ms), "median_pm": _ms(row.median_ms) + half,
        "ci": _ci(lo, hi), "p90": _ms(row.stats.get("p90")), "n": str(row.stats.get("n", 0)),
        "flops": _flops(row.flops), "speedup": sp, "speedup_ci": sp_ci,
        "reason": _one_line(row.reason or ""),
    }


def _one_line(s: str) -> str:
    """Reasons can be multi-line tracebacks; a table cell holds one line."""
    return " ".join(line.strip() for line in str(s).splitlines() if line.strip())


def _speedup_fields(r: SpeedupRow) -> dict[str, str]:
    return {"spec": r.spec, "precision": r.precision, "threads": str(r.threads),
            "candidate": r.candidate, "speedup": _x(r.speedup),
            "ci": _ci(*r.ci95, fmt=lambda v: f"{v:.2f}"),
            "note": "" if r.significant else "CI includes 1.0: no clear difference"}


def _summary_fields(r: SummaryRow) -> dict[str, str]:
    return {"candidate": r.candidate, "baseline": r.baseline, "precision": r.precision,
            "threads": str(r.threads), "geomean": _x(r.geomean),
            "ci": _ci(*r.ci95, fmt=lambda v: f"{v:.2f}"), "n": str(r.n_specs),
            "best": f"{r.best[0]} ({_x(r.best[1])})", "worst": f"{r.worst[0]} ({_x(r.worst[1])})"}


def _header_fields(report: Report) -> list[tuple[str, str]]:
    s = report.session
    when = "" if s.started is None else datetime.fromtimestamp(s.started, timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")
    machine = report.machine_brand or "unknown CPU"
    if report.machine_id:
        machine += f" (id {report.machine_id})"
    counts = ", ".join(f"{n} {st}" for st, n in report.counts.items()) or "no cells"
    fields = [("Session", f"{s.id} — {s.status}, started {when}"), ("Machine", machine),
              ("Store", report.store or "—"), ("Baseline", report.baseline), ("Cells", counts)]
    return fields + [("Warning", w) for w in report.warnings]


def _summary_sentence(r: SummaryRow) -> str:
    f = _summary_fields(r)
    def s_(n: object) -> str:
        return "" if str(n) == "1" else "s"

    return (f"{f['candidate']} vs {f['baseline']} ({f['precision']}, "
            f"{f['threads']} thread{s_(f['threads'])}): "
            f"geomean {f['geomean']} {f['ci']} over {f['n']} spec{s_(f['n'])}; "
            f"best {f['best']}, worst {f['worst']}")


_CELL_COLS = [("spec", "spec"), ("backend", "backend"), ("precision", "precision"),
              ("threads", "threads"), ("status", "status"), ("median", "median ms"),
              ("ci", "95% CI ms"), ("p90", "p90 ms"), ("n", "n"), ("flops", "FLOPs"),
              ("speedup", "speed-up"), ("speedup_ci", "speed-up CI"), ("reason", "reason")]
_SPEEDUP_COLS = [("spec", "spec"), ("precision", "precision"), ("threads", "threads"),
                 ("candidate", "candidate"), ("speedup", "speed-up"), ("ci", "95% CI"),
                 ("note", "note")]
_SUMMARY_COLS = [("candidate", "candidate"), ("baseline", "vs"), ("precision", "precision"),
                 ("threads", "threads"), ("geomean", "geomean speed-up"), ("ci", "95% CI"),
                 ("n", "specs"), ("best", "best"), ("worst", "worst")]
_NUMERIC = {"threads", "median", "ci", "p90", "n", "flops", "speedup", "geomean"}


_CI_METHOD_TEXT = {
    "paired-blocks": "bootstrap over the paired timed blocks of both backends",
    "blocks": "bootstrap over each backend's timed blocks",
    "iid": "bootstrap over single iterations (no block lengths stored)",
}


def ci_methods_text(report: Report) -> str:
    """How the speed-up intervals were made, from the rows themselves (a store may mix)."""
    methods = sorted({r.ci_method or "iid" for r in report.speedups})
    parts = [_CI_METHOD_TEXT.get(m, m) for m in methods]
    return "; ".join(parts) if parts else "bootstrap"


def _speedup_table_rows(report: Report) -> list[dict[str, str]]:
    """Speed-ups, then the comparisons that were not made, each saying why."""
    rows = [_speedup_fields(r) for r in report.speedups]
    rows += [{"spec": e.spec, "precision": e.precision, "threads": str(e.threads),
              "candidate": e.candidate, "speedup": "not reported", "ci": "—",
              "note": _one_line(e.why)}
             for e in report.excluded]
    return rows


# ---- Markdown --------------------------------------------------------------------------------

def _md_table(cols: Sequence[tuple[str, str]], rows: Sequence[dict[str, str]]) -> list[str]:
    out = ["| " + " | ".join(md_escape(h) for _, h in cols) + " |",
           "|" + "|".join("---:" if k in _NUMERIC else "---" for k, _ in cols) + "|"]
    out += ["| " + " | ".join(md_escape(r[k]) for k, _ in cols) + " |" for r in rows]
    return out


def render_markdown(report: Report, *, images: Sequence[str] = ()) -> str:
    """GitHub-flavoured Markdown; ``images`` are file names relative to the .md file."""
    lines = [f"# accelbench report — {md_escape(report.session.id)}", ""]
    lines += [f"- **{k}:** {md_escape(v)}" for k, v in _header_fields(report)]
    if report.summary:
        lines += ["", "## Summary", ""] + _md_table(
            _SUMMARY_COLS, [_summary_fields(r) for r in report.summary])
    sp = _speedup_table_rows(report)
    if sp:
        lines += ["", "## Speed-ups", "",
                  f"median({md_escape(report.baseline)}) / median(candidate); "
                  f"95% CI: {ci_methods_text(report)}. "
                  "Flagged, failed or skipped cells are not compared.", ""]
        lines += _md_table(_SPEEDUP_COLS, sp)
    lines += ["", "## Cells", ""]
    lines += _md_table(_CELL_COLS, [_cell_fields(report, c) for c in report.cells])
    if images:
        lines += ["", "## Plots", ""]
        lines += [f"![{md_escape(name)}]({_md_url(name)})" for name in images]
    return "\n".join(lines) + "\n"


def _md_url(name: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in " ()<>[]\\" else c for c in str(name))


# ---- HTML ------------------------------------------------------------------------------------

def _html_table(cols, rows, row_class=lambda r: "") -> list[str]:
    out = ["<table>", "<tr>" + "".join(f"<th>{html_escape(h)}</th>" for _, h in cols) + "</tr>"]
    for r in rows:
        cls = row_class(r)
        cells = "".join(
            f'<td{" class=num" if k in _NUMERIC else ""}>{html_escape(r[k])}</td>'
            for k, _ in cols)
        out.append(f'<tr class="{html_escape(cls)}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return out + ["</table>"]


def render_html(report: Report, *, images: Sequence[str] = ()) -> str:
    """A self-contained page (inline CSS, no scripts); images referenced by relative name."""
    title = f"accelbench report — {report.session.id}"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html_escape(title)}</title>", f"<style>{_CSS}</style></head><body>",
             f"<h1>{html_escape(title)}</h1>", "<dl>"]
    parts += [f"<dt>{html_escape(k)}</dt><dd>{html_escape(v)}</dd>"
              for k, v in _header_fields(report)]
    parts.append("</dl>")
    if report.summary:
        parts.append("<h2>Summary</h2>")
        parts += _html_table(_SUMMARY_COLS, [_summary_fields(r) for r in report.summary])
    sp = _speedup_table_rows(report)
    if sp:
        parts += ["<h2>Speed-ups</h2>",
                  f"<p>median({html_escape(report.baseline)}) / median(candidate); 95% CI: "
                  f"{html_escape(ci_methods_text(report))}. "
                  "Flagged, failed or skipped cells are not compared.</p>"]
        parts += _html_table(_SPEEDUP_COLS, sp)
    parts.append("<h2>Cells</h2>")
    parts += _html_table(_CELL_COLS, [_cell_fields(report, c) for c in report.cells],
                         row_class=lambda r: r["status"])
    if images:
        parts.append("<h2>Plots</h2>")
        parts += [f'<img src="{html_escape(n)}" alt="{html_escape(n)}">' for n in images]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---- terminal --------------------------------------------------------------------------------

def render_terminal(report: Report, console: Console) -> None:
    """One rich table of cells, then a summary line per candidate; all data markup-escaped."""
    table = Table(title=rich_escape(f"accelbench session {report.session.id}"),
                  caption=rich_escape(dict(_header_fields(report))["Machine"]))
    table.add_column("spec", overflow="fold", min_width=22)
    table.add_column("backend", no_wrap=True)
    table.add_column("prec/thr")
    table.add_column("median ms ± CI", justify="right")
    table.add_column("speed-up [95% CI]", justify="right")
    table.add_column("status / reason", overflow="fold")
    for row in report.cells:
        f = _cell_fields(report, row)
        style = _STATUS_STYLE.get(row.status, "")
        status = f"[{style}]{rich_escape(f['status'])}[/]" if style else rich_escape(f["status"])
        if f["reason"]:
            reason = f["reason"]
            reason = reason if len(reason) <= _TERM_REASON else reason[:_TERM_REASON - 1] + "…"
            status += ": " + rich_escape(reason)
        speed = " ".join(x for x in (f["speedup"], f["speedup_ci"]) if x)
        table.add_row(rich_escape(f["spec"]), rich_escape(f["backend"]),
                      rich_escape(f"{f['precision']}/{f['threads']}"),
                      rich_escape(f["median_pm"]), rich_escape(speed), status)
    console.print(table)
    for r in report.summary:
        console.print(rich_escape(_summary_sentence(r)))
    if not report.summary:
        console.print(rich_escape(f"no speed-ups: no pair of done cells against {report.baseline}"))
    for w in report.warnings:
        console.print("[yellow]warning:[/] " + rich_escape(w))
