"""What every backend offers the worker: availability, one-time preparation, a lean timing loop.

Why the split between ``Backend`` and ``Prepared``: everything that is paid once (conversion,
compilation, the first inference) happens in ``Backend.prepare`` and is reported there, so the
only thing ``Prepared.time_block`` can measure is steady-state inference. A backend is a plug-in
registered by name (``harness.backends.register``); nothing outside this package looks at names.
"""

from __future__ import annotations

import gc
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

PRECISIONS = ("f32", "bf16")

# Failure kinds the worker reports; the coordinator turns them into a cell's reason.
CONVERSION, RUNTIME = "conversion", "runtime"


class BackendError(ValueError):
    """A backend string that names nothing runnable (unknown name, malformed device)."""


class PrepareError(RuntimeError):
    """Preparation failed. ``kind`` says at which stage: conversion/compilation or running."""

    def __init__(self, message: str, kind: str = CONVERSION) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class BackendSpec:
    """A parsed backend string. ``text`` is canonical: the store and reports key cells by it."""

    name: str
    device: str
    text: str

    def __str__(self) -> str:
        return self.text


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise BackendError(f"precision {precision!r}: valid values are {', '.join(PRECISIONS)}")


def check_threads(threads: int) -> None:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise BackendError(f"threads={threads!r}: expected a positive integer")


def readable(exc: BaseException, limit: int = 600) -> str:
    """One paragraph from an exception: libraries' messages span pages (OpenVINO's include
    C++ source locations per frame); a cell's reason must fit in a table."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("Exception from src/")] or lines
    text = f"{type(exc).__name__}: {' '.join(lines)}" if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def time_calls(call: Callable[[], Any], n: int) -> list[float]:
    """Per-call latency of ``call()`` in ms, ``n`` times.

    Why it looks like this: the loop body is a bound call between two ``perf_counter_ns`` reads
    into a preallocated list (no per-iteration allocation, no attribute look-ups); the collector
    is off for the block, as ``timeit`` does, so a generation-2 collection triggered by the
    harness's own bookkeeping is not charged to whichever model happened to be running.
    """
    if n < 1:
        raise ValueError(f"n={n}: need at least one iteration")
    clock = time.perf_counter_ns
    ns = [0] * n
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(n):
            t0 = clock()
            call()
            ns[i] = clock() - t0
    finally:
        if was_enabled:
            gc.enable()
    return [t / 1e6 for t in ns]


class Prepared(ABC):
    """A model ready to run on one backend.

    ``info`` holds what preparation cost and what the backend resolved (``convert_s``,
    ``compile_s``, ``ir_cache_hit``, ``properties``...); ``first_ms`` is the first inference
    (the warm-up, measured during prepare and never part of the samples).
    """

    info: dict[str, Any]
    first_ms: float

    @abstractmethod
    def time_block(self, n: int) -> list[float]:
        """``n`` back-to-back inferences on the same prepared input; latency of each in ms."""

    @abstractmethod
    def output(self) -> np.ndarray:
        """The (first) output for the example input as a float32 copy, for parity checks."""


class Backend(ABC):
    """One runtime, named in the registry. Instances live in a worker process.

    ``Config`` is the backend's small frozen dataclass; ``make_config`` builds it from the
    backend string's device, so parsing and validating a device belongs to the backend that knows it.
    """

    name: ClassVar[str]
    default_device: ClassVar[str]
    # Whether the canonical text spells the default device ("openvino:CPU": OpenVINO's device
    # is the whole point of the name) or omits it ("torch" means torch on the CPU).
    spell_default_device: ClassVar[bool] = False

    def __init__(self, spec: BackendSpec) -> None:
        self.spec = spec
        self.config = self.make_config(spec.device)

    @classmethod
    @abstractmethod
    def normalize_device(cls, device: str) -> str:
        """Canonical device text, or ``BackendError`` naming what is accepted."""

    @abstractmethod
    def make_config(self, device: str) -> Any:
        """The backend's frozen config for a (normalized) device."""

    @abstractmethod
    def availability(self) -> tuple[bool, str]:
        """``(True, "")`` or ``(False, why)``; a cell that cannot run here is skipped with why."""

    @abstractmethod
    def prepare(
        self, model: Any, example_input: Any, *, precision: str, threads: int,
        ir_key: str = "", cache_dir: str | None = None,
    ) -> Prepared:
        """Convert/compile ``model`` and run it once. Raises ``PrepareError``."""

    @classmethod
    def canonical(cls, device: str) -> str:
        if device == cls.default_device and not cls.spell_default_device:
            return cls.name
        return f"{cls.name}:{device}"
