"""Which roof a cell sits under: the compute roof of its backend's library, or the bandwidth
of the memory level that serves its working set (``accelbench peak`` measures each).

Why per level: a cell whose working set lives in L2 or L3 is fed by that level, whose bandwidth
is several times DRAM's; under the DRAM roof such a cell sits "above its roof" and a report would
blame the roofs (issue 28: 254% of a DRAM roof for a cell whose own counters said "DRAM traffic
0 B"). ``serving_level`` takes the level from the analytic model's counters (the largest level
any layer needs, DRAM as soon as any byte comes from it); measured counters (perf, cachegrind)
count LLC misses, i.e. DRAM traffic, so their cells are under the DRAM roof. One module, used
by the run (``harness.counters.cell``) and the report (``reports.roofline``), so both agree.
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


def compute_roof(backend: str, peaks: Mapping[str, Any]) -> float | None:
    gflops = peaks.get("gflops") or {}
    return gflops.get(backend.split(":", 1)[0]) or max((v for v in gflops.values() if v),
                                                       default=None)


def attainable(intensity: float | None, backend: str, peaks: Mapping[str, Any] | None,
               level: str = "DRAM") -> float | None:
    """min(compute roof of the backend's library, intensity x the bandwidth of ``level``);
    None without peaks. A level without a measured roof falls back to DRAM's."""
    if not peaks:
        return None
    compute = compute_roof(backend, peaks)
    bandwidth = cache_roofs(peaks).get(level) or peaks.get("bandwidth_gbs")
    roofs = [r for r in (compute, intensity * bandwidth if intensity and bandwidth else None)
             if r]
    return min(roofs) if roofs else None
