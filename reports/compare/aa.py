"""What an A/A comparison (sessions of one machine, the same command) tells about the machine.

Two or more sessions of one command on one machine differ only by noise: the 95th percentile of
their changes is the machine's run-to-run spread (below which a noise threshold calls noise a
change), and their changes against their own intervals fit the session level
(``harness.measure.session_level``). Every pair of sessions counts: an A/A over several sessions,
hours apart, meets more of the host's states than one pair.

A comparison is read through its attributes only (``AAComparison``), so this module does not
import ``reports.compare.analysis``, which imports it for ``Comparison.as_json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from harness.measure import session_level


class AAComparison(Protocol):
    """What is read of a ``reports.compare.analysis.Comparison``."""

    sources: Sequence[Any]  # each with .session.machine_id
    latencies: Sequence[Any]  # each with .latency: per source, an Estimate or None
    speedups: Sequence[Any]  # each with .speedup: per source, an Estimate or None


def same_machine(cmp: AAComparison) -> bool:
    """Every compared session ran on one machine: an A/A run (two sessions or more)."""
    return len({s.session.machine_id for s in cmp.sources}) == 1 and len(cmp.sources) >= 2


def _pairs(cmp: AAComparison) -> dict[str, list[tuple[Any, Any]]]:
    """Per metric, every pair of sessions' estimates of one cell."""
    out: dict[str, list[tuple[Any, Any]]] = {"latency": [], "speedup": []}
    n = len(cmp.sources)
    for name, per_row in (("latency", [r.latency for r in cmp.latencies]),
                          ("speedup", [r.speedup for r in cmp.speedups])):
        for ests in per_row:
            out[name] += [(ests[i], ests[j]) for i in range(n) for j in range(i + 1, n)
                          if ests[i] is not None and ests[j] is not None]
    return out


def run_to_run_spread(cmp: AAComparison) -> dict[str, float] | None:
    """The 95th percentile of |change| over latencies and over speed-ups, every pair of
    sessions counted; None unless the sessions share a machine."""
    if not same_machine(cmp):
        return None
    out = {}
    for name, pairs in _pairs(cmp).items():
        ratios = [abs(np.log(b.value / a.value)) for a, b in pairs]
        if ratios:
            out[name] = float(np.expm1(np.percentile(ratios, 95)))
    return out or None


def session_terms_of(cmp: AAComparison) -> dict[str, session_level.Term]:
    """Per metric, the session level fitted to the comparison's changes (judged without session
    terms) against their log-scale errors (``session_level.calibrate``); empty unless the
    sessions share a machine and carry log-scale errors."""
    if not same_machine(cmp):
        return {}
    out = {}
    for name, pairs in _pairs(cmp).items():
        ok = [(a, b) for a, b in pairs if a.log_se is not None and b.log_se is not None]
        got = session_level.calibrate([float(np.log(b.value / a.value)) for a, b in ok],
                                      [float(a.log_se) ** 2 + float(b.log_se) ** 2
                                       for a, b in ok])
        if got is not None:
            out[name] = got
    return out
