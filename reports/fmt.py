"""Plain-text formatting of the report's numbers, shared by every section.

Why one place: the same latency or speed-up appears in several sections and all of them must
print it alike (same digits, same "—" for missing), or readers start comparing formats.
"""

from __future__ import annotations

from collections.abc import Callable


def ms(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.1f}" if x >= 100 else f"{x:.2f}" if x >= 10 else f"{x:.3f}"


def times(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def ci(lo: float | None, hi: float | None, fmt: Callable[[float], str] = ms) -> str:
    return "—" if lo is None or hi is None else f"[{fmt(lo)}, {fmt(hi)}]"


def si(x: float | None, unit: str) -> str:
    """``1.96e8, "FLOP"`` -> ``196 MFLOP``; bytes use binary prefixes (``KiB``, ``MiB``)."""
    if x is None:
        return "—"
    if unit == "B":
        binary: tuple[tuple[str, float], ...] = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
        for p, scale in binary:
            if abs(x) >= scale:
                return f"{x / scale:.3g} {p}"
        return f"{x:.0f} B"
    for p, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {p}{unit}"
    return f"{x:.3g} {unit}"


def flops(x: float | None) -> str:
    return si(x, "FLOP")


def count(n: int, word: str, words: str | None = None) -> str:
    """``1 cell``, ``2 cells`` (``words``: an irregular plural)."""
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def one_line(s: object) -> str:
    """Reasons can be multi-line tracebacks; a table cell holds one line."""
    return " ".join(line.strip() for line in str(s).splitlines() if line.strip())


def percent(x: float | None) -> str:
    """A share as a whole percentage; "—" when unknown."""
    return "—" if x is None else f"{100 * x:.0f}%"
