"""What makes some of a report's figures less trustworthy than they look: cells timed on a busy
machine, cells stopped by their budget before the CI met its target, and cells whose timed
inferences page-faulted (``harness.run.allocator``). ``Report.warnings`` holds these sentences;
every renderer prints them at the top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from harness.measure.results import CellResult

from . import fmt


class RowInterval(Protocol):
    """What a caveat reads of a cell's row: its median and that median's 95% CI, in ms.

    Why a protocol and not ``reports.tables.CellRow``: tables builds the rows and then asks for
    their caveats, so naming its class here would point the arrow back (tables <-> caveats).
    """

    @property
    def median_ms(self) -> float | None: ...

    @property
    def ci95_ms(self) -> tuple[float | None, float | None]: ...


# Minor page faults per timed inference above which a cell's time includes memory mapping. A
# steady-state inference faults ~0 times; the glibc regime allocator.py describes, thousands.
FAULTS_PER_INFERENCE_WARN = 100


def number(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def caveats(cells: Sequence[CellResult], rows: Sequence[RowInterval],
            machine: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Cells timed on a busy machine, stopped by the budget before their CI was tight, or whose
    timed inferences page-faulted.

    A worker's own threads put about ``threads`` on the load average; anything above the core
    count plus one means other work competed for the cores during the cell.
    """
    cores = number(((machine or {}).get("cpu") or {}).get("count"))
    busy, loose, reached, faulting = [], [], [], []
    for c, row in zip(cells, rows, strict=True):
        meta = c.meta if isinstance(c.meta, Mapping) else {}
        load = meta.get("loadavg")
        faults = number(meta.get("minor_faults_per_inference"))
        if faults is not None and faults >= FAULTS_PER_INFERENCE_WARN:
            faulting.append(f"{c.key.spec} {c.key.backend} ({faults:,.0f})")
        if cores and isinstance(load, Mapping):
            peak = max((number(load.get(k)) or 0.0) for k in ("before", "after"))
            if peak > cores + 1:
                busy.append(f"{c.key.spec} {c.key.backend} (load {peak:g})")
        if c.status == "done" and not c.evidence()["converged"]:
            loose.append(f"{c.key.spec} {c.key.backend}")
            lo, hi = row.ci95_ms
            if lo is not None and hi is not None and row.median_ms:
                reached.append((hi - lo) / 2 / row.median_ms)
    out = []
    if busy:
        out.append(f"{fmt.count(len(busy), 'cell')} ran while the machine was busier than its {cores:g} cores "
                   f"(e.g. {busy[0]}); their times and speed-ups may be inflated")
    if loose:
        target = next((t for c in cells if isinstance(t := c.meta.get("target"), (int, float))),
                      None)
        goal = f"±{target:.1%}" if target else "its target"
        got = f"; their CIs reach ±{float(np.median(reached)):.1%} (median)" if reached else ""
        out.append(f"{fmt.count(len(loose), 'cell')} reached their time budget before the median's CI met "
                   f"{goal} (e.g. {loose[0]}){got}; where the process level dominates (the "
                   f"\"How sure\" section), more --processes narrow them, elsewhere a longer "
                   f"--budget")
    if faulting:
        out.append(f"{fmt.count(len(faulting), 'cell')} page-faulted in their timed blocks (e.g. {faulting[0]} "
                   f"minor faults per inference): their times include the kernel mapping and "
                   f"zeroing memory each inference, which depends on the allocator's regime in "
                   f"that process (see harness/run/allocator.py)")
    return tuple(out)

