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

_RULE = re.compile(r"^(median|speedup):(\d+(?:\.\d+)?)(%?)$")


@dataclass(frozen=True)
class Rule:
    """A regression gate in pytest-benchmark's style: ``median:5%`` (latency up by more than
    5%), ``median:0.001`` (up by more than 1 ms; seconds, as pytest-benchmark), ``speedup:5%``
    (speed-up down by more than 5%), ``speedup:0.2`` (down by more than 0.2x)."""

    field: str
    amount: float
    percent: bool

    @classmethod
    def parse(cls, text: str) -> Rule:
        m = _RULE.match(text.strip())
        if not m:
            raise ValueError(f"malformed regression rule {text!r}: write FIELD:AMOUNT with FIELD "
                             f"median or speedup and AMOUNT a percentage (median:5%) or an "
                             f"absolute value (median:0.001 seconds, speedup:0.2)")
        return cls(m.group(1), float(m.group(2)), bool(m.group(3)))

    def __str__(self) -> str:
        return f"{self.field}:{self.amount:g}{'%' if self.percent else ''}"

    def regressed(self, ch: Change) -> bool:
        """Only when the whole interval lies beyond the threshold."""
        if self.field == "median":
            if self.percent:
                return ch.ci95[0] > 1 + self.amount / 100
            return ch.diff_ci95[0] > self.amount * 1000  # seconds -> ms
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
                out.append(f"{rule}: {what}: {labels[i]} vs {labels[0]} x{ch.ratio:.3f} "
                           f"[{ch.ci95[0]:.3f}, {ch.ci95[1]:.3f}]")
    return out
