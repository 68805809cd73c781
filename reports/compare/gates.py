"""Regression gates over a ``Comparison``, in pytest-benchmark's rule style.

Why the interval and not the point: ``median:5%`` fails only when the whole 95% interval of the
ratio lies beyond +5%, so noise alone cannot fail a CI job, while a real regression still does
once the sessions are long enough to show it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .analysis import Change, Comparison

_RULE = re.compile(r"^(median|speedup):(\d+(?:\.\d+)?)(%|ms|s|x|×)?$")
_UNITS = {"median": ("%", "ms", "s"), "speedup": ("%", "x")}


@dataclass(frozen=True)
class Rule:
    """A regression gate in pytest-benchmark's style: ``median:5%`` (latency up by more than
    5%), ``median:1ms`` or ``median:0.001s`` (up by more than 1 ms), ``speedup:5%`` (speed-up
    down by more than 5%), ``speedup:0.2x`` (down by more than 0.2x).

    Why the unit is required: pytest-benchmark reads a bare number as seconds, so
    ``median:5`` meant "5 s slower" and passed a 1.9x slowdown of a millisecond model
    (issue 28); nobody writing ``median:5`` meant that."""

    field: str
    amount: float
    unit: str  # "%", "ms", "s" (median) or "%", "x" (speedup)

    @property
    def percent(self) -> bool:
        return self.unit == "%"

    @classmethod
    def parse(cls, text: str) -> Rule:
        m = _RULE.match(text.strip())
        usage = ("write FIELD:AMOUNTUNIT: median:5% (latency up by 5%), median:2ms or "
                 "median:0.002s (up by 2 ms), speedup:5% (speed-up down by 5%) or speedup:0.2x")
        if not m:
            raise ValueError(f"malformed regression rule {text!r}: {usage}")
        field, unit = m.group(1), (m.group(3) or "").replace("×", "x")
        if not unit:
            raise ValueError(f"regression rule {text!r} has no unit: {usage} (a bare number is "
                             f"refused: pytest-benchmark would read it as seconds)")
        if unit not in _UNITS[field]:
            raise ValueError(f"regression rule {text!r}: {field} takes "
                             f"{' or '.join(_UNITS[field])}, not {unit}; {usage}")
        return cls(field, float(m.group(2)), unit)

    def __str__(self) -> str:
        return f"{self.field}:{self.amount:g}{self.unit}"

    def regressed(self, ch: Change) -> bool:
        """Only when the whole interval lies beyond the threshold."""
        if self.field == "median":
            if self.percent:
                return ch.ci95[0] > 1 + self.amount / 100
            return ch.diff_ci95[0] > self.amount * (1000 if self.unit == "s" else 1)  # in ms
        if self.percent:
            return ch.ci95[1] < 1 - self.amount / 100
        return ch.diff_ci95[1] < -self.amount


def regressions(cmp: Comparison, rules: Sequence[Rule]) -> list[str]:
    """One line per regressed cell and rule, naming the cell, the machines and the interval."""
    out = []
    labels = [s.label for s in cmp.sources]
    for rule in rules:
        rows: Sequence[Any] = cmp.latencies if rule.field == "median" else cmp.speedups
        for row in rows:
            for i, ch in enumerate(row.change, start=1):
                if ch is None or not rule.regressed(ch):
                    continue
                what = (f"{row.key.spec} {row.key.backend} {row.key.precision} "
                        f"t={row.key.threads}" if rule.field == "median" else
                        f"{row.spec} {row.candidate}/{row.baseline} {row.precision} t={row.threads}")
                out.append(f"{rule}: {what}: {labels[i]} vs {labels[0]} ×{ch.ratio:.3f} "
                           f"[{ch.ci95[0]:.3f}, {ch.ci95[1]:.3f}]")
    return out
