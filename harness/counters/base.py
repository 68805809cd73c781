"""The counter-source registry: each source says whether it can run here, and why not.

Why a registry: the worker, ``accelbench machine`` and the reports treat the three sources
alike (ask ``availability()``, call ``measure``, store the dict it returns) and never branch on
a source's name. Every result carries ``"source"`` so a cache figure always says where it came
from; a source that cannot measure raises ``CountersUnavailable(why)`` instead of returning
zeros that would read as "no misses".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class CountersUnavailable(RuntimeError):
    """This source cannot produce figures here (or for this command); the message says why."""


@dataclass(frozen=True)
class Source:
    name: str
    availability: Callable[[], tuple[bool, str]]  # (ok, why) - cheap enough to call per run
    measure: Callable[..., dict[str, Any]]  # its own arguments; the result has "source": name
    doc: str = ""


SOURCES: dict[str, Source] = {}


def register(source: Source) -> Source:
    if source.name in SOURCES:
        raise TypeError(f"counter source {source.name} registered twice")
    SOURCES[source.name] = source
    return source


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown counter source {name!r}; valid: {', '.join(sorted(SOURCES))}") from None


def available_sources() -> list[str]:
    """Names of the sources that can measure on this machine, in registration order."""
    return [name for name, source in SOURCES.items() if source.availability()[0]]


def availability_report() -> dict[str, dict[str, Any]]:
    """``{name: {"ok", "why"}}`` for every source - the machine fingerprint's ``counters``."""
    report = {}
    for name, source in SOURCES.items():
        ok, why = source.availability()
        report[name] = {"ok": ok, "why": why}
    return report
