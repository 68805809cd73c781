"""int8 on PyTorch: post-training static quantization through PT2E (torchao).

Why this flow: it is PyTorch's current int8 path for CPU inference. ``torch.export`` captures
the graph, ``X86InductorQuantizer`` (its default config: int8 weights per channel, uint8
activations per tensor, static scales) annotates it, ``prepare_pt2e`` inserts observers,
the calibration set runs through, and ``convert_pt2e`` writes quantize/dequantize pairs that
inductor's freezing passes lower to oneDNN's int8 convolutions (``qconv``/``qlinear`` pass
counters are recorded with the cell). In torch 2.13 the flow lives in ``torchao``, not in
``torch.ao``; without torchao the cell is skipped with the reason.

The calibration set is the same seeded synthetic one OpenVINO's NNCF cell sees
(``harness.backends.precision.calibration_inputs``), so the two int8 rungs are calibrated alike.
"""

from __future__ import annotations

import contextlib
import io
from importlib import metadata
from typing import Any

from harness.backends.precision import (
    CALIBRATION_SEED,
    calibration_inputs,
    calibration_record,
    package_available,
)


def availability() -> tuple[bool, str]:
    return package_available("torchao", "PT2E int8")


def _import() -> tuple[Any, Any, Any]:
    # torchao prints a line per optional CUDA kernel library it cannot load on a CPU build;
    # that is not the user's to act on.
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    return xiq, prepare_pt2e, convert_pt2e


def quantize(model: Any, x: Any, samples: int,
             seed: int = CALIBRATION_SEED) -> tuple[Any, dict[str, Any]]:
    """``(quantized GraphModule, what to record)`` for ``model`` at input ``x`` (f32, CPU)."""
    import time

    import torch

    t0 = time.perf_counter()
    xiq, prepare_pt2e, convert_pt2e = _import()
    example = x.float().contiguous()
    exported = torch.export.export(model, (example,)).module()
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(exported, quantizer)
    with torch.no_grad():
        for data in calibration_inputs(tuple(example.shape), samples, seed):
            prepared(torch.from_numpy(data).to(memory_format=_format(x)))
    converted = convert_pt2e(prepared)
    return converted, {
        "method": "PT2E: torch.export, X86InductorQuantizer, prepare_pt2e, convert_pt2e, "
                  "torch.compile (inductor, freezing)",
        "quantizer": "get_default_x86_inductor_quantization_config() (static, weights int8 "
                     "per channel symmetric, activations uint8 per tensor)",
        "torchao": metadata.version("torchao"),
        "calibration": calibration_record(samples, seed),
        "quantize_s": time.perf_counter() - t0,  # export, calibration, convert: not compile_s
    }


def _format(x: Any) -> Any:
    import torch

    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format
