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

from harness.backends.errors import BackendError, PrepareError  # noqa: F401  (re-exported)
from harness.backends.options import config_kwargs, format_options
from harness.backends.precision import PRECISIONS, cpu_bf16  # noqa: F401 - re-exported
from harness.measure.results import LATENCY, SCENARIOS

# Failure kinds are defined with the worker protocol; re-exported here for the backends.
from harness.run.protocol import AVAILABILITY, CONVERSION, RUNTIME  # noqa: F401


@dataclass(frozen=True)
class BackendSpec:
    """A parsed backend string. ``text`` is canonical: the store and reports key cells by it.

    ``options`` are the non-default options, sorted: ``(("hint", "THROUGHPUT"),)``.
    """

    name: str
    device: str
    text: str
    options: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        return self.text


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise BackendError(f"precision {precision!r}: valid values are {', '.join(PRECISIONS)}")


def check_threads(threads: int) -> None:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise BackendError(f"threads={threads!r}: expected a positive integer")


@dataclass(frozen=True)
class PrepareContext:
    """What a backend is told when it prepares a model, besides the model and its input.

    Why one object and not keyword arguments: the worker hands every backend the same
    context; a backend reads what it needs (OpenVINO its IR cache, torch only the precision
    and threads) and a new field reaches every backend without touching each signature.
    ``cache_dir`` is where a backend may keep what it derives from the model (without it,
    nothing is cached); entries are keyed by what the model is
    (``harness.backends.artefacts.artefact_key``). ``cache_key`` is only a label for a person
    browsing the cache (the spec or model file), never part of a key.
    """

    precision: str = "f32"
    threads: int = 1
    cache_key: str = ""
    cache_dir: str | None = None
    # latency: one request at a time; throughput: as many images per second as the backend
    # finishes (a backend with an asynchronous mode uses it; others time batched synchronous
    # calls, which is what their throughput is)
    scenario: str = LATENCY
    # Whether to record what explains a time besides timing it (PyTorch's oneDNN kernel trace):
    # once per cell, on its first process pair; later pairs only time.
    first_pass: bool = True
    # The artefact key (``harness.backends.artefacts.artefact_key``) an earlier process of the
    # same cell computed in this session, for a built-in spec. A backend whose cache holds that
    # entry, readable, loads it without tracing the model again (the trace cost 0.06-0.58 s a
    # process on a 2-core Zen 4, plain@64 to an 8-cell DARTS, and is the same every time: the
    # spec, its seed and the code are the session's); on a miss it traces and keys as always.
    known_artefact_key: str | None = None

    def __post_init__(self) -> None:
        check_precision(self.precision)
        check_threads(self.threads)
        if self.scenario not in SCENARIOS:
            raise BackendError(f"scenario {self.scenario!r}: valid values are "
                               f"{', '.join(SCENARIOS)}")


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

    def outputs_for(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """The (first) output, float32, for each of ``inputs`` (arrays of the example input's
        shape): a quantized model is judged over many inputs, not one (``harness.measure.parity``).
        The timed input is left as it was."""
        raise NotImplementedError(f"{type(self).__name__} runs only its example input")

    def layer_times(self, n: int) -> list[dict[str, Any]]:
        """Per-layer times over ``n`` inferences, for ``accelbench explain``: rows of
        ``{"name", "ms", "type", "original_names", "inputs"}`` where ``original_names`` are the
        model's nodes the layer absorbed and ``inputs`` the rows feeding it. Run only after the
        timed blocks: profiling must never touch a reported latency."""
        raise NotImplementedError(f"{type(self).__name__} cannot time single layers")

    def throughput_facts(self) -> dict[str, Any]:
        """What a throughput cell adds to its metadata beyond its samples (OpenVINO's queue:
        per-request latency percentiles and requests in flight); nothing for a backend whose
        samples are its requests' latencies already."""
        return {}

    def kernel_rows(self) -> list[dict[str, Any]] | None:
        """The kernels this backend runs the model as, for the latency predictor: rows of
        ``{"name", "type", "exec_type", "original_names", "inputs", "out_bytes", "out_shape"}``
        as ``layer_times`` (untimed; ``exec_type``, ``out_bytes`` and ``out_shape`` say which
        implementation runs a primitive and what it writes, as
        ``harness.predict.fusion.reorder_kernel`` needs), or None
        when every unit of the model runs as its own kernel (eager execution fuses nothing)."""
        raise NotImplementedError(f"{type(self).__name__} has no reading of its fused kernels")


class Backend(ABC):
    """One runtime, named in the registry. Instances live in a worker process.

    ``Config`` is the backend's small frozen dataclass (device and options); ``make_config``
    builds it from the parsed backend string, so parsing and validating a device or an option
    belongs to the backend that knows it. Options are declared on ``Config``'s fields with
    ``harness.backends.options.option``.
    """

    name: ClassVar[str]
    default_device: ClassVar[str]
    Config: ClassVar[type]
    # Whether the canonical text spells the default device ("openvino:CPU": OpenVINO's device
    # is the whole point of the name) or omits it ("torch" means torch on the CPU).
    spell_default_device: ClassVar[bool] = False

    def __init__(self, spec: BackendSpec) -> None:
        self.spec = spec
        self.config = self.make_config(spec.device, spec.options)

    @classmethod
    @abstractmethod
    def normalize_device(cls, device: str) -> str:
        """Canonical device text, or ``BackendError`` naming what is accepted."""

    def make_config(self, device: str, options: tuple[tuple[str, Any], ...] = ()) -> Any:
        """The backend's frozen config for a (normalized) device and parsed options."""
        return self.Config(device=device, **config_kwargs(self.Config, options))

    @classmethod
    def machine_info(cls) -> dict[str, Any]:
        """What this backend adds to the machine fingerprint (top-level keys; a ``versions``
        dict is merged with the others'). Must not raise and should be cheap: it runs for every
        fingerprint. Backends that share a runtime may return the same data."""
        return {}

    @abstractmethod
    def availability(self) -> tuple[bool, str]:
        """``(True, "")`` or ``(False, why)``; a cell that cannot run here is skipped with why."""

    # The precisions this backend has a path for; others are skipped with the reason.
    precisions: ClassVar[tuple[str, ...]] = ("f32", "bf16")

    def on_cpu(self) -> bool:
        """Whether the work runs on the host CPU (whose flags decide bf16)."""
        return True

    def supports(self, precision: str) -> tuple[bool, str]:
        """``(True, "")`` or ``(False, why)`` for ``precision`` on this backend and machine:
        asked before a model is built, so a cell without a path here costs nothing."""
        if precision not in self.precisions:
            return False, (f"{self.spec.text} has no {precision} path (it runs "
                           f"{', '.join(self.precisions)})")
        if precision == "bf16" and self.on_cpu():
            return cpu_bf16()
        return True, ""

    @abstractmethod
    def prepare(self, model: Any, example_input: Any, ctx: PrepareContext) -> Prepared:
        """Convert/compile ``model`` and run it once. Raises ``PrepareError``."""

    def reference(self, model: Any, example_input: Any) -> np.ndarray:
        """The model's (first) output in float64 for the example input, for judging parity.

        Why the baseline backend computes it: only the backend that runs the model natively
        knows how to run it in float64; the worker stays generic. Backends that cannot decline
        with ``NotImplementedError`` (the parity check then keeps its fixed tolerance).
        """
        raise NotImplementedError(f"{self.spec.text} offers no float64 reference")

    @classmethod
    def canonical(cls, device: str, options: tuple[tuple[str, Any], ...] = ()) -> str:
        if device == cls.default_device and not cls.spell_default_device:
            return cls.name + format_options(options)
        return f"{cls.name}:{device}" + format_options(options)
