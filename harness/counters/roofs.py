"""Which roof a cell sits under: the compute roof of its backend's library, or the bandwidth
of the memory level that serves its working set (``accelbench peak`` measures each).

Why per level: a cell whose working set lives in L2 or L3 is fed by that level, whose bandwidth
is several times DRAM's; under the DRAM roof such a cell sits "above its roof" and a report would
blame the roofs (issue 28: 254% of a DRAM roof for a cell whose own counters said "DRAM traffic
0 B"). ``serving_level`` takes the level from the analytic model's counters (the largest level
any layer needs, DRAM as soon as any byte comes from it); measured counters (perf, cachegrind)
count LLC misses, i.e. DRAM traffic, so their cells are under the DRAM roof. One module, used
by the run (``harness.counters.cell``) and the report (``reports.roofline``), so both agree.

Why two compute roofs (issue 23): ``accelbench peak`` measures the GEMM roof of every runtime
at every precision it runs. A cell judged only against its own runtime's roof hides that the
runtime itself is slow: on a Zen 5 PyTorch's f32 GEMM reached 197 GFLOP/s and OpenVINO's
415-447, so a PyTorch cell "at 90% of its peak" runs at under half of what the machine does.
So each cell has its own runtime's roof (``runtime_roof``) and the machine's roof at its
precision (``machine_roof``: the best any runtime reached), and the report says when the first
is far below the second (``far_below``).

Stored shape: ``gemm_gflops`` is ``{precision: {runtime: GFLOP/s}}`` (the runtime is the
backend's canonical text, ``openvino:CPU``); ``gflops`` keeps the f32 ones as before. Peaks
stored before issue 23 have only ``gflops`` (keyed by backend name: ``openvino``), read as f32.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def serving_level(counters: Mapping[str, Any]) -> str:
    """``"L2"``, ``"L3"`` or ``"DRAM"``: the memory level that serves the cell's working set."""
    if counters.get("source") != "model" or counters.get("dram_bytes") \
            or counters.get("layers_dram"):
        return "DRAM"
    if counters.get("layers_l3"):
        return "L3"
    return "L2" if counters.get("layers_l2") else "DRAM"


def cache_roofs(peaks: Mapping[str, Any] | None) -> dict[str, float]:
    """``{"L2": GB/s, "L3": GB/s}``: the cache levels' measured triad bandwidths (none in peaks
    measured before accelbench measured them)."""
    found = (peaks or {}).get("cache_bandwidth_gbs") or {}
    return {k.upper(): float(v) for k, v in found.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0}


def roof_level(level: str, peaks: Mapping[str, Any] | None) -> str:
    """The level whose roof is used: ``level`` when its roof was measured, else DRAM."""
    return level if level in cache_roofs(peaks) else "DRAM"


FAR_BELOW = 0.7  # a runtime's own GEMM roof below this share of the machine's is reported


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def gemm_roofs(peaks: Mapping[str, Any] | None) -> dict[str, dict[str, float]]:
    """``{precision: {runtime: GFLOP/s}}`` of every measured GEMM roof; peaks stored before
    precisions were measured (only ``gflops``) read as f32."""
    peaks = peaks or {}
    found = peaks.get("gemm_gflops")
    if not isinstance(found, Mapping):
        found = {"f32": peaks.get("gflops") or {}}
    out = {str(p): {str(k): float(v) for k, v in by.items() if _num(v)}
           for p, by in found.items() if isinstance(by, Mapping)}
    return {p: by for p, by in out.items() if by}


def roof_precision(precision: str, peaks: Mapping[str, Any] | None) -> str:
    """The precision whose roofs a cell of ``precision`` is judged against: its own when any
    runtime's was measured, else f32's (peaks from before issue 23 have only f32)."""
    return precision if precision in gemm_roofs(peaks) else "f32"


def runtime_keys(backend: str) -> list[str]:
    """The keys a backend's roof may be stored under, most specific first: the canonical text
    (``torch-compile[backend=openvino]``: a variant ``accelbench peak`` measures on its own),
    without options (``openvino:CPU`` for ``openvino:CPU[hint=THROUGHPUT]``: an option without
    a roof of its own is judged by its backend's), and the bare name (``openvino``: peaks
    stored before issue 23)."""
    head = backend.split("[", 1)[0]
    keys = [backend, head, head.split(":", 1)[0]]
    return list(dict.fromkeys(keys))


def runtime_roof(backend: str, peaks: Mapping[str, Any] | None,
                 precision: str = "f32") -> float | None:
    """The GEMM roof of ``backend``'s own runtime at ``precision`` (``roof_precision``); None
    when that runtime's roof was not measured."""
    by = gemm_roofs(peaks).get(roof_precision(precision, peaks)) or {}
    return next((by[k] for k in runtime_keys(backend) if k in by), None)


def machine_roof(peaks: Mapping[str, Any] | None,
                 precision: str = "f32") -> tuple[float, str] | None:
    """``(GFLOP/s, runtime)``: the best GEMM roof any runtime reached at ``precision``
    (``roof_precision``) - what this machine can do, whichever library gets there."""
    by = gemm_roofs(peaks).get(roof_precision(precision, peaks)) or {}
    if not by:
        return None
    best = max(by, key=lambda k: by[k])
    return by[best], best


def compute_roof(backend: str, peaks: Mapping[str, Any], precision: str = "f32") -> float | None:
    """The backend's own GEMM roof, else the machine's (a runtime whose roof was not measured
    is judged against the best one: never against none)."""
    own = runtime_roof(backend, peaks, precision)
    if own is not None:
        return own
    best = machine_roof(peaks, precision)
    return best[0] if best else None


def far_below(peaks: Mapping[str, Any] | None, pairs: Any = None,
              threshold: float = FAR_BELOW) -> list[dict[str, Any]]:
    """Runtimes whose own GEMM roof is below ``threshold`` of the machine's at a precision:
    ``{"runtime", "precision", "gflops", "share", "machine_gflops", "machine_runtime"}``,
    worst first. ``pairs`` (``(backend, precision)``) limits it to those, e.g. a report's cells;
    None: every measured roof."""
    roofs = gemm_roofs(peaks)
    if pairs is None:
        wanted = {(k, p) for p, by in roofs.items() for k in by}
    else:
        wanted = set()
        for backend, precision in pairs:
            p = roof_precision(precision, peaks)
            key = next((k for k in runtime_keys(backend) if k in roofs.get(p, {})), None)
            if key is not None:
                wanted.add((key, p))
    out = []
    for key, p in wanted:
        best = machine_roof(peaks, p)
        own = roofs[p][key]
        if best and own < threshold * best[0]:
            out.append({"runtime": key, "precision": p, "gflops": own, "share": own / best[0],
                        "machine_gflops": best[0], "machine_runtime": best[1]})
    return sorted(out, key=lambda r: (r["precision"], r["share"]))


def attainable(intensity: float | None, backend: str, peaks: Mapping[str, Any] | None,
               level: str = "DRAM", precision: str = "f32", *,
               machine: bool = False) -> float | None:
    """min(compute roof, intensity x the bandwidth of ``level``); None without peaks. The
    compute roof is the backend's own runtime's at ``precision`` (``compute_roof``), or with
    ``machine`` the machine's (``machine_roof``). A level without a measured roof falls back
    to DRAM's."""
    if not peaks:
        return None
    if machine:
        best = machine_roof(peaks, precision)
        compute = best[0] if best else None
    else:
        compute = compute_roof(backend, peaks, precision)
    bandwidth = cache_roofs(peaks).get(level) or peaks.get("bandwidth_gbs")
    roofs = [r for r in (compute, intensity * bandwidth if intensity and bandwidth else None)
             if r]
    return min(roofs) if roofs else None
