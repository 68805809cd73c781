"""The neutral document a report section returns: headings, text, tables and figures.

Why a document model between the data and the pages: Markdown, HTML and the terminal must show
the same sections in the same order with the same numbers. A section builds these few blocks
once, as plain text (never markup), and ``reports.render`` turns them into each medium, escaping
everything at one choke point. A section therefore never writes Markdown or HTML, and a new
medium is one renderer, not one more copy of every section.

A ``Figure`` carries a ``draw(path) -> Path | None`` callable instead of pixels: ``write_report``
draws each figure once into the output folder; a figure whose ``draw`` returns None (nothing to
plot) is left out of every page, so no page references an image that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """Plain text; ``tone="warning"`` is shown highlighted (yellow in the terminal)."""

    text: str
    tone: str = ""


@dataclass(frozen=True)
class Fields:
    """Label: value pairs (the report's header)."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Column:
    """``show``: "all", "page" (Markdown and HTML only) or "terminal" (a compact view)."""

    key: str
    title: str
    numeric: bool = False
    show: str = "all"


@dataclass(frozen=True)
class Table:
    """Rows are ``{column key: plain text}``; ``row_class`` names the key whose value styles a
    row in HTML (e.g. the cell status, so failed rows are red)."""

    columns: tuple[Column, ...]
    rows: tuple[Mapping[str, str], ...]
    row_class: str | None = None
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG drawn by ``draw(path)`` (None: nothing to plot) with a caption saying its source."""

    name: str  # file stem: <name>.png; unique within a report
    draw: Callable[[Path], Path | None] = field(compare=False)
    caption: str = ""


Block = Heading | Paragraph | Fields | Bullets | Table | Figure


def table(columns: Sequence[tuple[Any, ...]],
          rows: Sequence[Mapping[str, str]], **kw) -> Table:
    """Shorthand: ``table([("spec", "spec"), ("median", "median ms", True)], rows)``."""
    cols = tuple(Column(*c) for c in columns)
    return Table(cols, tuple({c.key: str(r.get(c.key, "")) for c in cols} | (
        {kw["row_class"]: str(r.get(kw["row_class"], ""))} if kw.get("row_class") else {})
        for r in rows), **kw)
