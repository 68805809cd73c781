"""The counter-source registry and the one interface every source implements.

Why one interface: the worker, ``accelbench machine`` and the reports treat every source alike
and never branch on a source's name. The worker drives a source around the work it measures::

    window = source.start(ctx)        # after setup, before the first timed block
    window.resume(); <timed block>; window.pause()   # around every counted block
    figures = window.stop(inferences)                # after the last block

- ``perf`` counts hardware events of the worker process while the window is resumed only;
- ``cachegrind`` ignores the timed window (under valgrind nothing is timed) and in ``stop``
  simulates its own N and 2N inferences in a subprocess, differencing away start-up;
- ``model`` needs only the profile and the cache sizes in ``ctx``.

Every result carries ``"source"`` so a cache figure always says where it came from; a source
that cannot measure raises ``CountersUnavailable(why)`` instead of returning zeros that would
read as "no misses". ``availability()`` is cached per process: probing spawns programs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class CountersUnavailable(RuntimeError):
    """This source cannot produce figures here (or for this workload); the message says why."""


@dataclass(frozen=True)
class CountContext:
    """What a source may need about the cell it measures; every field is plain data.

    ``profile`` is a callable so that only the sources that need the profile pay for it.
    """

    backend: str = ""
    precision: str = "f32"
    threads: int = 1
    spec: str | None = None
    model_ref: str | None = None
    seed: int = 0
    caches: Mapping[str, Any] = field(default_factory=dict)  # {"l1d","l2","l3"} bytes
    geometry: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # sysfs ways/line
    profile: Callable[[], Mapping[str, Any]] | None = None
    cache_dir: str | None = None
    pid: int | None = None  # the process whose work is counted (the worker itself)
    setup: Mapping[str, Any] = field(default_factory=dict)  # the worker's setup request (rerun)
    first_ms: float | None = None  # the first inference's time, to size simulated runs


class Window(Protocol):
    """A started measurement; see the module docstring for the calling order."""

    def resume(self) -> None: ...

    def pause(self) -> None: ...

    def stop(self, inferences: int) -> dict[str, Any]: ...


class NullWindow:
    """A window for sources that do not count during the timed blocks (model, cachegrind)."""

    def __init__(self, finish: Callable[[int], dict[str, Any]]) -> None:
        self._finish = finish

    def resume(self) -> None:
        pass

    def pause(self) -> None:
        pass

    def stop(self, inferences: int) -> dict[str, Any]:
        return self._finish(inferences)


@dataclass(frozen=True)
class Source:
    name: str
    availability: Callable[[], tuple[bool, str]]  # (ok, why); cached per process
    start: Callable[[CountContext], Window]
    doc: str = ""
    stop_timeout_s: float = 120.0  # how long ``stop`` may take (cachegrind reruns the cell)


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
    """``{name: {"ok", "why"}}`` for every source - ``accelbench machine``'s ``counters``."""
    report = {}
    for name, source in SOURCES.items():
        ok, why = source.availability()
        report[name] = {"ok": ok, "why": why}
    return report


def choices() -> tuple[str, ...]:
    """What ``--counters`` accepts: every registered source, plus ``auto`` and ``off``."""
    return ("auto", *SOURCES, "off")


def resolve(choice: str) -> tuple[str | None, str]:
    """The source a ``--counters`` choice runs here and why: ``auto`` is perf where perf works,
    else the model (cachegrind is slow, so only when asked for); ``off`` is ``None``."""
    if choice not in choices():
        raise KeyError(f"--counters {choice!r}: valid: {', '.join(choices())}")
    if choice == "off":
        return None, "counters off"
    if choice != "auto":
        return choice, "asked for"
    ok, why = get_source("perf").availability()
    if ok:
        return "perf", "auto: perf works here"
    return "model", f"auto: perf cannot run here ({why})"
