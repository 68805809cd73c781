"""The report seen through one scenario: what every latency section reads.

Why a view and not a filter in each section: a session run with ``--scenario latency,throughput``
holds two cells per spec and backend, one timed one request at a time and one with requests in
flight, whose medians mean different things (ms per inference against ms per image,
``harness.measure.estimate.per_image``). A latency table that read both printed ms per image as
a latency; a geometric mean over both averaged two questions; a look-up keyed by spec and
backend kept whichever cell came last. So each latency section reads ``latency_view(report)``:
the same ``Report`` with only its latency cells, speed-ups, exclusions and summaries. The
throughput section (``reports.sections.throughput``) reads the whole report.

Sections that speak of every cell (the summary, the family table, problems, parity) keep both
scenarios and name each row's with ``scenario_label``: nothing when every cell is a latency
cell, so a latency-only report reads exactly as before.
"""

from __future__ import annotations

from dataclasses import replace

from harness.measure.scenarios import LATENCY, SCENARIOS

from .summary import SummaryRow, summarize_speedups
from .tables import Report


def scenarios(report: Report) -> tuple[str, ...]:
    """The scenarios the session's cells were timed in, in ``SCENARIOS`` order."""
    held = {c.key.scenario for c in report.cells}
    return tuple(s for s in SCENARIOS if s in held) + tuple(sorted(held - set(SCENARIOS)))


def several(report: Report) -> bool:
    """Does the session hold more than one scenario (so rows must say which)?"""
    return len(scenarios(report)) > 1


def labelled(report: Report) -> bool:
    """Must rows name their scenario? Yes unless every cell is a latency cell: a session of
    several scenarios must tell them apart, and a throughput-only one must not read as the
    latency report it resembles."""
    return scenarios(report) not in ((), (LATENCY,))


def scenario_label(report: Report, scenario: str) -> str:
    """The scenario's name where rows must say it (``labelled``), else ""."""
    return scenario if labelled(report) else ""


def latency_view(report: Report, *, batch: int | None = None) -> Report:
    """The report with its latency cells only (and, given ``batch``, only specs timed at that
    batch: the paper's claims are about one image at a time). Idempotent."""
    specs = None
    if batch is not None:
        specs = {c.key.spec for c in report.cells if c.batch == batch}

    def keep(spec: str, scenario: str) -> bool:
        return scenario == LATENCY and (specs is None or spec in specs)

    return replace(
        report,
        cells=tuple(c for c in report.cells if keep(c.key.spec, c.key.scenario)),
        speedups=tuple(r for r in report.speedups if keep(r.spec, r.scenario)),
        excluded=tuple(e for e in report.excluded if keep(e.spec, e.scenario)),
        summary=tuple(s for s in report.summary if s.scenario == LATENCY) if specs is None
        else _summary_of(report, specs),
    )


def _summary_of(report: Report, specs: set[str]) -> tuple[SummaryRow, ...]:
    """The latency summary over ``specs`` only (re-estimated: fewer specs, another mean)."""
    return summarize_speedups([r for r in report.speedups
                               if r.scenario == LATENCY and r.spec in specs])
