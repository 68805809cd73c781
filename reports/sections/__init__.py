"""The report's sections, registered by name and ordered by number.

A report is the ordered list of registered sections. Each section is a pure function of the
``Report`` (``reports.tables``) that returns a list of document blocks (``reports.document``:
``Heading``, ``Paragraph``, ``Fields``, ``Bullets``, ``Table``/``table()``, ``Figure``) or None
when the session holds nothing for it. One renderer turns the blocks into Markdown, one into
HTML (figures embedded) and one into the terminal, so no section writes markup.

How to add a section (one module, nothing else to edit):

1. Create ``reports/sections/<name>.py`` (every module in this package is imported, so the
   file's presence registers it)::

       from reports.document import Figure, Heading, Paragraph, table
       from reports.sections import section

       @section("ladder", order=55)          # where it goes among the others (see ORDER below)
       def ladder(report):
           rows = ladder_rows(report)        # your pure computation over report.cells
           if not rows:
               return None                   # nothing in this session: the section is left out
           return [Heading("Optimisation ladder"),
                   table([("spec", "spec"), ("ms", "median ms", True)], rows),
                   Figure("ladder", lambda path: plot_ladder(report, path),
                          caption="where it comes from: source, precision, threads")]

2. Add a test that builds a small ``Report`` and checks the blocks (or the rendered Markdown).

A section that speaks of latency reads ``reports.views.latency_view(report)`` first: a session
run with ``--scenario latency,throughput`` holds throughput cells too, whose median is ms per
image (the Throughput section, ``throughput.py``, reads them).

``terminal=True`` also prints the section after ``accelbench run``/``report``; keep that for
short sections. Orders in use: header 10, summary 20, families 25, paper 30, speedups 40,
throughput 42, sweeps 50, flops 55, cells 60, variance 65, parity 70, problems 80, cache 90,
layers 100 (a simple time-by-layer-kind table in ``cache.py``; a fuller ``layers`` section
replaces it by deleting that function, since a name may be registered once). Free for wiring: ladder 45, roofline 92,
compare 35. A figure's ``draw`` is ``lambda path: plot_x(report, path)`` for any
``plot_x(report, path) -> Path | None``; its caption says where the numbers come from
(``reports.sections.core.source(report)`` gives session, machine, precision and threads).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from reports.document import Block

SectionFn = Callable[[Any], Sequence[Block] | None]


@dataclass(frozen=True)
class Section:
    name: str
    order: float
    fn: SectionFn
    terminal: bool = False


_SECTIONS: dict[str, Section] = {}
_loaded = False


def section(name: str, *, order: float, terminal: bool = False) -> Callable[[SectionFn], SectionFn]:
    """Register ``fn(report) -> blocks | None`` as section ``name`` at position ``order``."""

    def register(fn: SectionFn) -> SectionFn:
        old = _SECTIONS.get(name)
        if old is not None and old.fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"report section {name!r} is registered twice")
        _SECTIONS[name] = Section(name, order, fn, terminal)
        return fn

    return register


def registered() -> list[Section]:
    """Every registered section in report order (importing this package's modules first)."""
    global _loaded
    if not _loaded:
        for mod in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{mod.name}")
        _loaded = True
    return sorted(_SECTIONS.values(), key=lambda s: (s.order, s.name))


def document(report: Any, *, terminal: bool = False) -> list[Block]:
    """The report as blocks: each section's output, in order (terminal: short sections only)."""
    blocks: list[Block] = []
    for s in registered():
        if terminal and not s.terminal:
            continue
        out = s.fn(report)
        if out:
            blocks.extend(out)
    return blocks
