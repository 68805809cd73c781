"""The analytic cache model: does each layer's working set fit in L2 / L3, and what must come
from DRAM?

Why a model at all: it is available everywhere (no PMU, no valgrind), costs nothing, and is
the hypothesis the measured counters test - the paper relates latency to "L3 cache efficacy",
and this is that idea made explicit and checkable. It is an estimate, never a measurement, and
says so in every result (``"source": "model"``).

The rules, for steady-state repeated single-stream inference (what the timing loop does):

- A layer's level is the smallest cache its working set (``archs.profiling``: input + output +
  weights) fits in: ``L2`` (per core), ``L3`` (the last level), else ``DRAM``.
- Weights stay resident across inferences iff all weights plus the largest layer working set
  fit in the last-level cache; otherwise each layer re-reads its weights from DRAM.
- A layer that fits in cache costs DRAM only its non-resident weights (its input was just
  written by the layer before it). A layer that does not fit streams its whole working set
  through DRAM once - a lower bound: real kernels re-read tiles when they do not fit.

Arithmetic intensity is never null: when everything stays in cache the model's DRAM traffic is
zero, so the compulsory bytes (weights + network input + network output, what any execution
must move at least once) are the lower bound of traffic used instead, and
``arithmetic_intensity_basis`` says which was used.

Not modelled: sharing L3 between threads or processes, prefetching, cache associativity and
fusion (OpenVINO's fused layers touch less than the sum of PyTorch's leaves).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.counters.base import CountContext, CountersUnavailable, NullWindow, Source, register

LINE_BYTES = 64


def availability() -> tuple[bool, str]:
    return True, "analytic working-set model (an estimate from layer sizes and cache sizes)"


def model_counters(profile: Any, caches: Mapping[str, Any]) -> dict[str, Any]:
    """Estimate cache residency and DRAM traffic of ``profile`` (an ``archs.profiling.Profile``
    or its ``as_json()``) for ``caches`` (``{"l2", "l3"}`` in bytes, as in the fingerprint)."""
    l2, l3 = _size(caches, "l2"), _size(caches, "l3")
    llc = l3 or l2
    if not llc:
        raise CountersUnavailable("cache sizes unknown: the model needs at least the L2 or L3 size")
    layers = [_get(layer) for layer in _field(profile, "layers")]
    weight_bytes = int(_field(profile, "weight_bytes"))
    peak = max((ly["working_set_bytes"] for ly in layers), default=0)
    resident = weight_bytes + peak <= llc

    rows = []
    for ly in layers:
        ws = ly["working_set_bytes"]
        level = "L2" if l2 and ws <= l2 else "L3" if l3 and ws <= l3 else "DRAM"
        dram = ws if level == "DRAM" else 0 if resident else ly["weight_bytes"]
        rows.append({"name": ly["name"], "working_set_bytes": ws, "level": level,
                     "dram_bytes": dram, "flops": ly["flops"]})

    touched = sum(r["working_set_bytes"] for r in rows)
    dram_total = sum(r["dram_bytes"] for r in rows)
    flops = int(_field(profile, "flops"))
    fit_flops = sum(r["flops"] for r in rows if r["level"] != "DRAM")
    compulsory = compulsory_bytes(profile)
    return {
        "source": "model",
        "caches": {"l2": l2, "l3": l3, "llc": llc},
        "weights_resident": resident,
        "layers_l2": sum(r["level"] == "L2" for r in rows),
        "layers_l3": sum(r["level"] == "L3" for r in rows),
        "layers_dram": sum(r["level"] == "DRAM" for r in rows),
        "bytes_touched": touched,
        "dram_bytes": dram_total,
        "cache_served_fraction": 1 - dram_total / touched if touched else None,
        "llc_fit_flops_fraction": fit_flops / flops if flops else None,
        "compulsory_bytes": compulsory,
        # an estimate: modelled DRAM bytes in cache lines (0 means "the model says all fits")
        "misses_per_inference": dram_total / LINE_BYTES,
        # FLOPs per byte of DRAM traffic; the compulsory bytes when nothing spills
        "arithmetic_intensity": flops / (dram_total or compulsory) if (dram_total or compulsory) else None,
        "arithmetic_intensity_basis": "dram_bytes" if dram_total else "compulsory_bytes",
        "layers": rows,
    }


def compulsory_bytes(profile: Any) -> int:
    """Weights + network input + network output: bytes every execution moves at least once."""
    layers = _field(profile, "layers")
    out = int(_field(layers[-1], "output_bytes")) if layers else 0
    inp = int(_opt(profile, "input_bytes") or 0)
    if not inp:
        shape = _opt(profile, "input_shape") or ()
        inp = 4 * _prod(shape) if shape else 0  # f32 input
    return int(_field(profile, "weight_bytes")) + inp + out


def _prod(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _opt(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def start(ctx: CountContext) -> NullWindow:
    """The model counts nothing while timing: it needs only the profile and the cache sizes."""

    def finish(inferences: int) -> dict[str, Any]:
        if ctx.profile is None:
            raise CountersUnavailable("no profile of this workload: the model needs its layer sizes")
        result = model_counters(ctx.profile(), ctx.caches)
        result.pop("layers", None)  # per-layer detail belongs to `accelbench profile`
        return result

    return NullWindow(finish)


def _size(caches: Mapping[str, Any], key: str) -> int | None:
    value = caches.get(key)
    return int(value) if value else None


def _field(obj: Any, key: str) -> Any:
    return obj[key] if isinstance(obj, Mapping) else getattr(obj, key)


def _get(layer: Any) -> dict[str, Any]:
    keys = ("name", "working_set_bytes", "weight_bytes", "flops")
    return {k: _field(layer, k) for k in keys}


SOURCE = register(Source(
    "model", availability, start,
    "analytic per-layer working set against the machine's L2/L3 sizes",
))
