"""int8 on OpenVINO: NNCF post-training quantization of the converted model, cached beside the IR.

Why convert first and quantize the ``ov.Model``: that is NNCF's OpenVINO path, and only there
is ``fast_bias_correction=False`` (the full bias correction, slower to compute, closer to f32)
available. Settings: the default ``preset`` (symmetric weights and activations, "performance"),
``subset_size`` = the calibration set's size, the seeded synthetic calibration set of
``harness.backends.precision`` (the same one the PT2E cell sees). All recorded with the cell.

The quantized model is cached under the f32 IR's key plus NNCF's version and these settings
(``ircache.load_or_convert``), so a second run neither converts nor quantizes.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from harness.backends.precision import (
    CALIBRATION_SEED,
    calibration_inputs,
    calibration_record,
    package_available,
)

SETTINGS = {"fast_bias_correction": False, "preset": "default (performance: symmetric)",
            "model_type": None}


def availability() -> tuple[bool, str]:
    return package_available("nncf", "OpenVINO int8")


def settings(samples: int, seed: int = CALIBRATION_SEED) -> dict[str, Any]:
    """What is recorded with the cell, and what the cache key is made of."""
    return {"method": "nncf.quantize(ov.Model, nncf.Dataset(...))",
            "nncf": metadata.version("nncf"), **SETTINGS,
            "calibration": calibration_record(samples, seed, subset_size=samples)}


def cache_key(ir_key: str, record: dict[str, Any]) -> str:
    """The int8 IR's key: the f32 IR's key and everything quantizing depends on."""
    return f"{ir_key}|int8|" + repr(sorted(record.items())) if ir_key else ""


def quantize(model: Any, shape: tuple[int, ...], samples: int,
             seed: int = CALIBRATION_SEED, inputs: list | None = None) -> Any:
    """The quantized ``ov.Model``. ``inputs`` replaces the seeded calibration set (tests use it
    to quantize deliberately badly and see the parity check catch it)."""
    import logging

    import nncf

    nncf.set_log_level(logging.WARNING)  # no progress bars in the worker's log
    data = inputs if inputs is not None else calibration_inputs(shape, samples, seed)
    return nncf.quantize(model, nncf.Dataset(data), subset_size=len(data),
                         fast_bias_correction=False)


def is_quantized(runtime_precisions: dict[str, int]) -> bool:
    """Whether the executed graph holds int8 layers (what really ran)."""
    return any(k in ("i8", "u8") and v for k, v in runtime_precisions.items())
