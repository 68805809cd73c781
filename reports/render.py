"""Markdown, HTML and terminal renderings of a report's document (``reports.document``).

The sections (``reports.sections``) decide what a report says and in what order; this module only
decides how each block looks in each medium. Why everything is escaped here: specs, reasons,
configs and machine names come from users, exceptions and ``/proc/cpuinfo``; a reason like
``<script>…`` or ``a|b`` must print as text, not as markup or a broken table, and escaping every
block's text at one choke point is the only way not to miss a field.

The HTML page is self-contained: figures are embedded as ``data:`` URIs when their PNG exists,
so the one file can be mailed or attached to a CI run and still show its figures.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape as rich_escape
from rich.table import Table as RichTable

from .document import Block, Bullets, Fields, Figure, Heading, Paragraph, Table
from .sections import document

_TERM_CELL = 160  # a full traceback stays in the Markdown/HTML/JSON; the terminal gets a line
_MD_SPECIAL = "\\`*_[]<>|&~"
_TERM_STYLE = {"flagged": "yellow", "failed": "red", "skipped": "dim",
               "invalid": "red"}
# Why the wrapper and the wrapping: a page must fit a 1280-pixel window. Wide tables (many
# columns, long specs or reasons) scroll inside their own box (div.table) instead of widening
# the page; figures shrink to the text width; long unbroken words (paths, ids) break.
_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:84em;color:#222}
div.table{overflow-x:auto;max-width:100%;margin:1em 0}table{border-collapse:collapse}
p,li,dd,figcaption,caption{overflow-wrap:anywhere}th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.flagged{background:#fff6d5}tr.failed,tr.invalid{background:#fde2e2}tr.skipped{color:#888}
tr.differs{background:#fde2e2}tr.agrees{background:#e6f4e6}
figure{margin:1.5em 0}img{max-width:100%;height:auto;display:block}figcaption{color:#555;font-size:90%}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em}dd{margin:0}
dt{font-weight:bold}p.warning{background:#fff6d5;padding:.4em .6em}caption{text-align:left;color:#555}"""

Images = Mapping[str, str | Path] | Sequence[str | Path]


def md_escape(text: object) -> str:
    """Backslash-escape Markdown's inline syntax and fold newlines, so a value stays one cell."""
    s = " ".join(str(text).splitlines())
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in s)


def md_inline(text: object, *, in_table: bool = False) -> str:
    """``md_escape``, except that a pair of backticks stays a code span: the report's own
    sentences name commands (`accelbench peak`), which read as code, not as backslashed text.
    A code span's content is literal in Markdown (no links, emphasis or HTML); in a table its
    ``|`` is still escaped, as GFM requires."""
    s = " ".join(str(text).splitlines())
    parts = s.split("`")
    if len(parts) < 3:
        return md_escape(s)
    if len(parts) % 2 == 0:  # an odd backtick out: the last one stays escaped text
        parts[-2:] = [parts[-2] + "`" + parts[-1]]
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(md_escape(part))
        elif part.strip():
            out.append("`" + (part.replace("|", "\\|") if in_table else part) + "`")
        else:
            out.append(md_escape("`" + part + "`"))
    return "".join(out)


def html_escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def _images(images: Images) -> dict[str, Path]:
    """``{figure name: png path}`` from a mapping or from a list of file names or paths."""
    if isinstance(images, Mapping):
        return {str(k): Path(v) for k, v in images.items()}
    return {Path(p).stem: Path(p) for p in images}


# ---- Markdown --------------------------------------------------------------------------------

def _md_url(name: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in " ()<>[]\\" else c for c in str(name))


def _page(t: Table) -> list:
    return [c for c in t.columns if c.show != "terminal"]


def _md_table(t: Table) -> list[str]:
    cols = _page(t)
    out = [f"*{md_escape(t.caption)}*", ""] if t.caption else []
    out += ["| " + " | ".join(md_escape(c.title) for c in cols) + " |",
            "|" + "|".join("---:" if c.numeric else "---" for c in cols) + "|"]
    out += ["| " + " | ".join(md_inline(r.get(c.key, ""), in_table=True) for c in cols) + " |"
            for r in t.rows]
    return out


def blocks_to_markdown(blocks: Sequence[Block], images: Images = ()) -> str:
    """GitHub-flavoured Markdown; figures link their PNG by file name (beside the .md)."""
    drawn = _images(images)
    parts: list[list[str]] = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(["#" * b.level + " " + md_escape(b.text)])
        elif isinstance(b, Paragraph):
            text = md_inline(b.text)
            parts.append([f"> **Warning:** {text}" if b.tone == "warning" else text])
        elif isinstance(b, Fields):
            parts.append([f"- **{md_escape(k)}:** {md_escape(v)}" for k, v in b.items])
        elif isinstance(b, Bullets):
            parts.append([f"- {md_inline(i)}" for i in b.items])
        elif isinstance(b, Table):
            parts.append(_md_table(b))
        elif isinstance(b, Figure) and b.name in drawn:
            fig = [f"![{md_escape(b.caption or b.name)}]({_md_url(drawn[b.name].name)})"]
            parts.append(fig + ([f"*{md_escape(b.caption)}*"] if b.caption else []))
    return "\n\n".join("\n".join(p) for p in parts) + "\n"


def render_markdown(report, *, images: Images = ()) -> str:
    return blocks_to_markdown(document(report), images)


# ---- HTML ------------------------------------------------------------------------------------

def _html_table(t: Table) -> list[str]:
    out = ['<div class="table"><table>'] + ([f"<caption>{html_escape(t.caption)}</caption>"] if t.caption else [])
    cols = _page(t)
    out.append("<tr>" + "".join(f"<th>{html_escape(c.title)}</th>" for c in cols) + "</tr>")
    for r in t.rows:
        cls = r.get(t.row_class, "") if t.row_class else ""
        cells = "".join(f'<td{" class=num" if c.numeric else ""}>{html_escape(r.get(c.key, ""))}</td>'
                        for c in cols)
        out.append(f'<tr class="{html_escape(cls)}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return out + ["</table></div>"]


def _img_src(path: Path) -> str:
    if path.is_file():
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return html_escape(path.name)


def blocks_to_html(blocks: Sequence[Block], images: Images = (), *, title: str = "") -> str:
    """A self-contained page: inline CSS, no scripts, figures embedded when their PNG exists."""
    drawn = _images(images)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html_escape(title)}</title>", f"<style>{_CSS}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            level = min(max(b.level, 1), 6)
            parts.append(f"<h{level}>{html_escape(b.text)}</h{level}>")
        elif isinstance(b, Paragraph):
            cls = f' class="{html_escape(b.tone)}"' if b.tone else ""
            parts.append(f"<p{cls}>{html_escape(b.text)}</p>")
        elif isinstance(b, Fields):
            parts += ["<dl>"] + [f"<dt>{html_escape(k)}</dt><dd>{html_escape(v)}</dd>"
                                 for k, v in b.items] + ["</dl>"]
        elif isinstance(b, Bullets):
            parts += ["<ul>"] + [f"<li>{html_escape(i)}</li>" for i in b.items] + ["</ul>"]
        elif isinstance(b, Table):
            parts += _html_table(b)
        elif isinstance(b, Figure) and b.name in drawn:
            alt = html_escape(b.caption or b.name)
            parts += ["<figure>", f'<img src="{_img_src(drawn[b.name])}" alt="{alt}" '
                      f'data-file="{html_escape(drawn[b.name].name)}">',
                      f"<figcaption>{html_escape(b.caption)}</figcaption>" if b.caption else "",
                      "</figure>"]
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"


def render_html(report, *, images: Images = ()) -> str:
    return blocks_to_html(document(report), images,
                          title=f"accelbench report — {report.session.id}")


# ---- terminal --------------------------------------------------------------------------------

def _short(s: str) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= _TERM_CELL else s[:_TERM_CELL - 1] + "…"


def blocks_to_terminal(blocks: Sequence[Block], console: Console) -> None:
    """Rich output; all data markup-escaped; figures are named, not drawn."""
    for b in blocks:
        if isinstance(b, Heading):
            console.print(f"\n[bold]{rich_escape(b.text)}[/]")
        elif isinstance(b, Paragraph):
            prefix = "[yellow]warning:[/] " if b.tone == "warning" else ""
            console.print(prefix + rich_escape(b.text))
        elif isinstance(b, Fields):
            for k, v in b.items:
                console.print(f"[bold]{rich_escape(k)}:[/] {rich_escape(v)}", highlight=False)
        elif isinstance(b, Bullets):
            for i in b.items:
                console.print("• " + rich_escape(i), highlight=False)
        elif isinstance(b, Table) and any(c.show != "page" for c in b.columns):
            t = RichTable(caption=rich_escape(b.caption) if b.caption else None)
            cols = [c for c in b.columns if c.show != "page"]
            for c in cols:
                t.add_column(rich_escape(c.title), justify="right" if c.numeric else "left",
                             overflow="fold")
            for r in b.rows:
                cells = [rich_escape(_short(r.get(c.key, ""))) for c in cols]
                style = _TERM_STYLE.get(r.get(b.row_class, "")) if b.row_class else None
                t.add_row(*cells, style=style)
            console.print(t)


def render_terminal(report, console: Console) -> None:
    """The short sections (header, summary, paper verdicts, cells, problems) on a console."""
    blocks_to_terminal(document(report, terminal=True), console)
