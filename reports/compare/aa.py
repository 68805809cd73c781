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

from harness.measure import nested, session_level


class AAComparison(Protocol):
    """What is read of a ``reports.compare.analysis.Comparison``."""

    @property
    def sources(self) -> Sequence[Any]: ...  # each with .session.machine_id

    @property
    def latencies(self) -> Sequence[Any]: ...  # each with .latency: per source, an Estimate or None

    @property
    def speedups(self) -> Sequence[Any]: ...  # each with .speedup: per source, an Estimate or None


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


# Two sessions equally precise, each interval honest for the true value: their difference has
# sqrt(2) times one session's error, so one lands inside the other's 95% interval with
# probability P(|Z| < 1.96 / sqrt(2)) = 83%, not 95%. Where a repeat lands is what the repeat
# interval (``session_level.repeat_interval``) is for.
INSIDE_EXPECTED = 0.834
# The test that is not muddied by the sqrt(2): the two intervals' own test of the pair's ratio
# (Welch on the log scale, ``nested.ratio_of``), with no noise threshold, calls an A/A pair
# different at 95% for 5% of pairs when the intervals are honest, more when they are too narrow.
DIFFER_EXPECTED = 0.05


def repeats(cmp: AAComparison, terms: dict[str, session_level.Term] | None = None
            ) -> dict[str, dict[str, Any]] | None:
    """Whether a repeat lands inside its interval, the check an honest interval must pass: per
    metric, over every ordered pair of sessions (a, b) of an A/A, how often b's figure lies
    inside a's 95% interval (of ``cases``) and inside a's repeat interval (of ``repeat_cases``,
    the estimates with a log-scale error: ``value · exp(± t · sqrt(2 se² + 2 σ²))``, σ the
    machine's session level from ``terms``, 0 without one); and, over every unordered pair with
    log-scale errors (``differ_cases``), how often the two intervals' own test of the pair's
    ratio, σ added to each side, excludes 1 at 95% with no noise threshold (``differ95``): about
    ``DIFFER_EXPECTED`` when the intervals are honest. None unless the sessions share a
    machine."""
    if not same_machine(cmp):
        return None
    out: dict[str, dict[str, Any]] = {}
    for name, pairs in _pairs(cmp).items():
        term = (terms or {}).get(name) or session_level.Term(0.0, 2, 0)
        n = inside = with_repeat = in_repeat = tested = differ = 0
        for x, y in pairs:
            got = nested.ratio_of(x.as_summary(term), y.as_summary(term))
            if got is not None:
                tested += 1
                differ += int(not got["ci95"][0] <= 1.0 <= got["ci95"][1])
            for a, b in ((x, y), (y, x)):
                lo, hi = a.ci95
                if np.isfinite(lo) and np.isfinite(hi):
                    n += 1
                    inside += int(lo <= b.value <= hi)
                rep = session_level.repeat_interval(a.value, a.log_se, a.df, term)
                if rep is not None:  # an estimate without a log-scale error has none
                    with_repeat += 1
                    in_repeat += int(rep[0] <= b.value <= rep[1])
        if n or with_repeat:
            out[name] = {"cases": n, "inside_ci95": inside, "repeat_cases": with_repeat,
                         "inside_repeat95": in_repeat, "differ_cases": tested,
                         "differ95": differ, "session_sd": term.sd}
    return out or None


def repeats_sentence(got: dict[str, dict[str, Any]]) -> str:
    """``repeats``'s figures as one clause, for the command line and the comparison pages."""
    name = {"latency": "latencies", "speedup": "speed-ups"}

    def each(field: str, of: str) -> str:
        return ", ".join(f"{name.get(k, k)} {v[field]} of {v[of]}" for k, v in got.items())

    level = ", ".join(f"{name.get(k, k)} ±{v['session_sd']:.1%}" for k, v in got.items())
    return (f"one session's figure lay inside another's 95% interval for "
            f"{each('inside_ci95', 'cases')} (intervals each honest for the true value hold each "
            f"other's figure about {INSIDE_EXPECTED:.0%} of the time: the two differ by √2 times "
            f"one's error), and inside its repeat interval (session level {level}), which should "
            f"hold 95%, for {each('inside_repeat95', 'repeat_cases')}; the two intervals' own test "
            f"(no noise threshold) called a pair different at 95% for "
            f"{each('differ95', 'differ_cases')} (honest intervals: about {DIFFER_EXPECTED:.0%})")
