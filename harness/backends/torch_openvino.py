"""``torch.compile(model, backend="openvino")``: OpenVINO's kernels without leaving PyTorch.

The options follow OpenVINO's torch.compile documentation (``openvino.torch``): ``device``,
and ``config`` passed to ``compile_model`` for every partition. The cell's precision and thread
count go there, with the same latency hint and single stream as the ``openvino`` backend, so
the two OpenVINO cells differ only in how the model reaches OpenVINO. What each compiled
partition resolved is read back from OpenVINO's partition cache and stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.backends.base import CONVERSION, PrepareContext, PrepareError, readable
from harness.backends.openvino_props import READ_BACK, read_properties, runtime_precisions


def options_for(ctx: PrepareContext) -> dict[str, Any]:
    """What ``torch.compile(..., options=)`` gets for a cell. Values are strings, as OpenVINO's
    docs write them (the backend passes ``config`` on to ``compile_model`` unchanged)."""
    return {
        "device": "CPU",
        # without aot_autograd, torch 2.13's dynamo fails building guards for the graph the
        # backend fake-traces ("sources must not be empty for symbol")
        "aot_autograd": True,
        "config": {
            "INFERENCE_PRECISION_HINT": ctx.precision,
            "INFERENCE_NUM_THREADS": str(ctx.threads),
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": "1",
        },
    }


def compile_openvino(model: Any, x: Any, context: Callable,
                     ctx: PrepareContext) -> tuple[Any, float, dict[str, Any]]:
    """``(compiled module, compile_s, properties)``; raises ``PrepareError`` when OpenVINO
    compiled nothing (its backend then runs inductor instead, silently)."""
    import openvino.torch  # noqa: F401 - registers the "openvino" torch.compile backend
    import torch
    from openvino.frontend.pytorch.torchdynamo import execute

    from harness.backends.torch_backend import _timed_call

    options = options_for(ctx)
    torch._dynamo.reset()
    execute.clear_caches()
    compiled = torch.compile(model, backend="openvino", dynamic=False, options=options)
    try:
        compile_s = _timed_call(compiled, x, context, None) / 1e3  # the first call compiles
    except Exception as exc:
        raise PrepareError(f"torch.compile(backend='openvino') failed: {readable(exc)}",
                           CONVERSION) from exc
    partitions = list(execute.compiled_cache.values())
    if not partitions:
        raise PrepareError("torch.compile(backend='openvino') compiled no OpenVINO partition "
                           "(its conversion failed and it fell back to inductor)", CONVERSION)
    props: dict[str, Any] = {
        "torch_compile_options": options,
        "openvino_partitions": len(partitions),
        "openvino_properties": [read_properties(cm, READ_BACK) for cm in partitions],
        "runtime_precisions": _merged([runtime_precisions(cm) for cm in partitions]),
        "precision_method": f"OpenVINO INFERENCE_PRECISION_HINT={ctx.precision}",
    }
    hints = {p.get("INFERENCE_PRECISION_HINT") for p in props["openvino_properties"]}
    if len(hints) == 1 and None not in hints:
        props["precision_effective"] = hints.pop()
    return compiled, compile_s, props


def _merged(counts: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out
