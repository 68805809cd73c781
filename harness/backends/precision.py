"""Which precisions a backend can run here, and why not: bf16 hardware, int8 paths.

Why a check before anything is built: a bf16 cell on a CPU without bf16 instructions still
"runs" (PyTorch's autocast emulates it, OpenVINO silently falls back to f32), and its time is
then not a bf16 figure at all. Such a cell is skipped with the reason instead. The flags are
read from ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on Arm); tests replace
``cpu_flags`` to simulate a CPU without them.

int8 means post-training static quantization (weights and activations int8, scales from a
seeded synthetic calibration set: ``calibration_inputs``); only backends with a quantization
flow offer it (OpenVINO through NNCF, ``torch-compile`` through PT2E).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

PRECISIONS = ("f32", "bf16", "int8")
QUANTIZED = ("int8",)  # judged against the f32 model over many inputs (harness.measure.parity)
# x86: AVX512_BF16 (Cooper Lake, Zen 4+) or AMX-BF16 (Sapphire Rapids+); Arm: the BF16 extension.
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
CALIBRATION_SAMPLES = 300  # NNCF's own default subset_size
CALIBRATION_SEED = 20231  # apart from the model's seed: calibration never sees the timed input


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags, lower case; empty when they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return frozenset(value.lower().split())
    return frozenset()


def cpu_bf16() -> tuple[bool, str]:
    """``(True, "")`` when the CPU computes bf16 natively, else ``(False, why)``."""
    flags = cpu_flags()
    have = [f for f in BF16_FLAGS if f in flags]
    if have:
        return True, ""
    return False, ("this CPU has no bf16 instructions (none of "
                   f"{', '.join(BF16_FLAGS)} in its flags): bf16 would be emulated or silently "
                   "run as f32, so its time would not be a bf16 figure")


def calibration_inputs(shape: tuple[int, ...], n: int, seed: int = CALIBRATION_SEED) -> list[np.ndarray]:
    """``n`` seeded standard-normal inputs of ``shape`` (the distribution of the example input
    ``archs`` builds), float32. Why synthetic: the networks have random weights, so there is no
    data set they were trained on; what calibration needs is activations of the right range."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape, dtype=np.float32) for _ in range(n)]


def calibration_record(n: int, seed: int = CALIBRATION_SEED, **settings: Any) -> dict[str, Any]:
    """What a cell stores about its calibration set and the quantizer's settings."""
    return {"samples": n, "seed": seed, "distribution": "standard normal, float32", **settings}


def package_available(dist: str, what: str) -> tuple[bool, str]:
    """(True, "") when the distribution ``dist`` is installed, else (False, why): what needs
    it and how to bring it (the ``runtimes`` extra). Asks the metadata only: importing these
    packages costs seconds."""
    from importlib import metadata

    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False, f"{what} needs {dist} (pip install -c constraints.txt 'accelbench[runtimes]')"
    return True, ""
