"""Counters around one cell: what the worker calls, and the per-cell figures derived from them.

Why here and not in the worker: the worker only knows "a window opens after setup, is resumed
around counted blocks and stopped at the end"; which source runs (``auto`` resolves here, once
per worker process), how a failure is worded and how raw counts become misses per kFLOP,
achieved GFLOP/s and a fraction of the roofline all live in this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.counters.base import CountContext, CountersUnavailable, Window, get_source, resolve
from harness.counters.roofs import (
    attainable,
    compute_roof,
    machine_roof,
    roof_level,
    roof_precision,
    serving_level,
)
from harness.run import protocol

LINE_BYTES = 64  # cache line assumed when turning misses into DRAM bytes (sysfs says 64 here)


class CellCounters:
    """The worker's handle: a window of the resolved source, or the reason there is none."""

    def __init__(self, choice: str, ctx: CountContext) -> None:
        self.choice = choice
        self.source, self.why = resolve(choice)
        self.window: Window | None = None
        self.error: str | None = None
        self.inferences = 0
        if self.source is None:
            return
        try:
            self.window = get_source(self.source).start(ctx)
        except CountersUnavailable as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - counters are advisory; the timing goes on
            self.error = f"{type(exc).__name__}: {exc}"

    def resume(self) -> None:
        if self.window is not None:
            self._guard(self.window.resume)

    def pause(self, inferences: int) -> None:
        if self.window is not None:
            self._guard(self.window.pause)
            self.inferences += inferences

    def _guard(self, step: Any) -> None:
        """A source that breaks mid-session stops counting and says why; timing goes on."""
        try:
            step()
        except Exception as exc:  # noqa: BLE001
            self.error, self.window = f"{type(exc).__name__}: {exc}", None

    def finish(self) -> dict[str, Any] | None:
        """The source's figures, or ``{"source", "error"}`` saying why there are none."""
        if self.source is None:
            return None
        base = {"source": self.source, "choice": self.choice, "chosen_because": self.why,
                "inferences_counted": self.inferences}
        if self.window is None:
            return {**base, "error": self.error or "not started"}
        window, self.window = self.window, None
        try:
            return {**window.stop(self.inferences), **base}
        except CountersUnavailable as exc:
            return {**base, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001
            return {**base, "error": f"{type(exc).__name__}: {exc}"}


def request_counters(client: Any, choice: str) -> dict[str, Any] | None:
    """Ask a worker (``harness.run.client.WorkerClient``) to stop its window and answer.

    ``off`` is said in the cell, not left blank. A worker that errs, hangs or dies while
    stopping (cachegrind reruns the cell for minutes) costs the counters, not the cell: its
    samples are already in hand, so the result names the source and the error instead.
    """
    from harness.run.client import WorkerCrashed, WorkerError, WorkerTimeout

    if choice == "off":
        return {"source": "off", "choice": "off", "chosen_because": "counters off"}
    try:
        return client.request({"op": protocol.COUNTERS}, timeout=stop_timeout_s(choice)).get("counters")
    except WorkerError as exc:
        why = f"{exc.kind}: {exc}"
    except (WorkerTimeout, WorkerCrashed) as exc:
        client.kill()
        why = f"the worker failed while stopping the counters: {exc}"
    return {"source": choice, "choice": choice, "error": why}


def stop_timeout_s(choice: str) -> float:
    """How long the coordinator waits for a window to stop (cachegrind reruns the cell twice)."""
    from harness.counters.base import SOURCES

    return max((s.stop_timeout_s for name, s in SOURCES.items() if name == choice), default=120.0)


def derive(counters: Mapping[str, Any] | None, *, flops: float | None, median_ms: float | None,
           backend: str, peaks: Mapping[str, Any] | None, precision: str = "f32"
           ) -> dict[str, Any] | None:
    """Per-cell figures from a source's counts, the cell's FLOPs and median, and the machine's
    measured peaks. A figure that cannot be had is None (never 0); each names its source."""
    if not counters or "error" in counters:
        return dict(counters) if counters else None
    out = dict(counters)
    misses = counters.get("misses_per_inference")
    kflop = flops / 1000 if flops else None
    out["misses_per_kflop"] = misses / kflop if misses is not None and kflop else None
    out.setdefault("llc_miss_rate", None)
    out.setdefault("ipc", None)
    if out.get("arithmetic_intensity") is None:
        traffic = counters.get("dram_bytes_per_inference")
        if traffic is None and misses is not None:
            traffic = misses * LINE_BYTES
        out["arithmetic_intensity"] = flops / traffic if flops and traffic else None
        out["arithmetic_intensity_basis"] = (f"{counters['source']} LLC misses x {LINE_BYTES} B"
                                             if out["arithmetic_intensity"] is not None else None)
    achieved = flops / (median_ms * 1e6) if flops and median_ms else None
    out["achieved_gflops"] = achieved
    out.update(roof_fraction(achieved, out["arithmetic_intensity"], backend, peaks,
                             serving_level(out), precision))
    return out


def roof_fraction(achieved: float | None, intensity: float | None, backend: str,
                  peaks: Mapping[str, Any] | None, level: str = "DRAM",
                  precision: str = "f32") -> dict[str, Any]:
    """Achieved GFLOP/s over the roofline's attainable figure at this arithmetic intensity,
    twice (``harness.counters.roofs``):

    - ``fraction_of_peak``: under min(GEMM roof of this backend's own runtime at the cell's
      precision, intensity x the bandwidth of the memory level that serves the cell);
    - ``fraction_of_machine_peak``: the same with the machine's GEMM roof at that precision
      (the best any runtime reached, ``machine_roof_runtime``): a cell near its own runtime's
      roof may still run at half of what this machine does.
    """
    none = {"fraction_of_peak": None, "attainable_gflops": None, "peak_basis": None,
            "fraction_of_machine_peak": None, "machine_attainable_gflops": None,
            "machine_roof_runtime": None, "roof_precision": None}
    if not peaks or achieved is None:
        return {**none, "peak_basis": "no measured peaks for this machine (run accelbench peak)"
                if not peaks else None}
    used = roof_level(level, peaks)
    best = attainable(intensity, backend, peaks, used, precision)
    if not best:
        return none
    roof_p = roof_precision(precision, peaks)
    basis = "compute" if best == compute_roof(backend, peaks, precision) else f"{used} memory"
    if basis == "compute" and roof_p != precision:
        basis = f"{roof_p} compute (no {precision} roof measured)"
    top = attainable(intensity, backend, peaks, used, precision, machine=True)
    machine = machine_roof(peaks, precision)
    return {"fraction_of_peak": achieved / best, "attainable_gflops": best,
            "peak_basis": f"{basis} roof (measured by accelbench peak)",
            "fraction_of_machine_peak": achieved / top if top else None,
            "machine_attainable_gflops": top,
            "machine_roof_runtime": machine[1] if machine else None,
            "roof_precision": roof_p}
