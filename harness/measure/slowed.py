"""Process pairs timed in a host slow stretch: set aside from a speed-up, kept in latencies.

Why: on the 2-core AMD EPYC VM (quick preset run twice, 2026-12-05), a cell's process pairs
mostly agreed within 1-2%, and now and then one pair landed in a stretch of 10-40 s in which
the host slowed everything timed on it by 1.2-2.3x, and not alike: eager PyTorch's OpenMP
threads suffered far more than OpenVINO's (``residual:depth=4`` torch 0.998 -> 2.31 ms,
OpenVINO 0.195 -> 0.277 ms, so that pair's speed-up read 8.3x against 5.1x and 5.2x for the
other two). Nothing on the guest sees such a stretch (``/proc/stat`` shows no foreign CPU and
almost no steal; five canaries beside the workload did not track it), so the interference gate
(``harness.run.interference``) cannot set it aside, and one such pair of three made the
speed-up's nested interval +-13.8% wide at the session's median.

Rule: a process pair is *slowed* when, on either side, its median is at least ``FACTOR`` times
that side's fastest process in the cell. The between-process spread of a quiet machine is a few
per cent (the same A/A: SD 1-4% for most cells), so 1.25x is far outside it. A speed-up sets its
slowed pairs aside — from its figure, its interval and the session's speed-up prior — while at
least two pairs, and more unslowed than slowed ones, remain; otherwise it keeps every pair (a
cell slowed most of the time has no quiet state to report). What is set aside is reported
with the speed-up (which pairs, how much slower, the speed-up they read), never dropped
silently. Latencies keep every process: how long an inference takes on this machine depends on
the host's state, and a repeat run's latency must land in that interval too.

The run replaces what it sets aside (``harness.run.passes``): while fewer unslowed pairs than
``processes`` remain, another pass times the group (minutes later, out of the stretch), and the
slowed pairs' timing is charged to the group's wait allowance, as disturbed blocks are.

Re-read with this rule, the same A/A pair flagged 0 of 22 speed-ups, 20 of 22 second-run
speed-ups fell inside the first run's interval, and the median half-width was +-3.5%.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.measure.nested import process_medians

FACTOR = 1.25


def slowed(sides: Sequence[Sequence[Sequence[np.ndarray]]], factor: float = FACTOR,
           ) -> dict[int, tuple[int, float]]:
    """Positions of the slowed processes: position -> (the side most slowed, how much slower
    than that side's fastest process). ``sides`` are the cells' processes, aligned by position
    (process pair k of every side at position k)."""
    out: dict[int, tuple[int, float]] = {}
    for s, parts in enumerate(sides):
        if len(parts) < 2:
            continue
        meds = process_medians(parts)
        fastest = min(meds)
        if fastest <= 0:
            continue
        for k, m in enumerate(meds):
            ratio = m / fastest
            if ratio >= factor and (k not in out or ratio > out[k][1]):
                out[k] = (s, ratio)
    return out


def set_aside(sides: Sequence[Sequence[Sequence[np.ndarray]]], factor: float = FACTOR,
              ) -> dict[int, tuple[int, float]]:
    """The slowed positions a figure may leave out: all of them when at least two positions,
    and more than are slowed, remain; none otherwise."""
    n = min((len(p) for p in sides), default=0)
    found = slowed(sides, factor)
    kept = n - len(found)
    return found if found and kept >= 2 and kept > len(found) else {}


def unslowed(sides: Sequence[Sequence[Sequence[np.ndarray]]], factor: float = FACTOR) -> int:
    """How many positions no side calls slowed (what ``passes`` counts against ``processes``)."""
    n = min((len(p) for p in sides), default=0)
    return n - len(slowed(sides, factor))


def drop(parts: Sequence[Any], positions: dict[int, Any]) -> list[Any]:
    return [p for k, p in enumerate(parts) if k not in positions]


def describe(found: dict[int, tuple[int, float]], names: Sequence[str],
             ratios: Sequence[float], process_ids: Sequence[int] | None = None,
             ) -> list[dict[str, Any]]:
    """The record of what a speed-up set aside: process (1-based, as reports count them), the
    side most slowed and by how much, and the speed-up that pair read."""
    ids = list(process_ids) if process_ids is not None else list(range(len(ratios)))
    return [{"process": ids[k] + 1, "side": names[s], "slower": round(r, 3),
             "speedup": ratios[k]} for k, (s, r) in sorted(found.items())]


def note(records: Sequence[dict[str, Any]], pairs: int) -> str | None:
    """One sentence for the reader of a table, or None when nothing was set aside."""
    if not records:
        return None
    what = "; ".join(f"pair {r['process']} ({r['side']} {r['slower']:.2f}x slower than its "
                     f"fastest, speed-up {r['speedup']:.2f}x)" for r in records)
    return (f"{len(records)} of {pairs} process pairs set aside as timed in a host slow "
            f"stretch: {what}")
