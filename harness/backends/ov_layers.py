"""OpenVINO's per-primitive times, from a second compiled model with ``PERF_COUNT`` on.

Why a second compilation: profiling makes the plugin record every primitive's start and end,
which costs time on every inference; the compiled model whose latency is reported must never
carry it. So the layer pass compiles the same IR again, with the same settings plus
``PERF_COUNT``, runs it, and throws it away.

Each row says what the primitive absorbed (``originalLayersNames`` from the runtime model's
rt_info: the nodes of the converted model fused into it) and which primitives feed it (the
runtime graph's data flow), which is what ``harness.layers.matching`` needs to find modules the
names lost.
"""

from __future__ import annotations

import math
from statistics import median
from typing import Any

_NOT_TIMED = ("Input", "Output", "Const", "Parameter", "Result")


def layer_times(core: Any, model: Any, device: str, config: dict[str, Any], data: Any,
                n: int) -> list[dict[str, Any]]:
    """``n`` profiled inferences; per primitive the median of its ``real_time`` in ms."""
    import openvino as ov

    cm = core.compile_model(model, device, {**config, "PERF_COUNT": True})
    req = cm.create_infer_request()
    req.set_input_tensor(ov.Tensor(data, shared_memory=False))
    for _ in range(2):  # the first runs pack weights and pick kernels
        req.infer()
    samples: dict[str, list[float]] = {}
    for _ in range(n):
        req.infer()
        for p in req.get_profiling_info():
            samples.setdefault(p.node_name, []).append(p.real_time.total_seconds() * 1e3)
    # Every primitive of the runtime graph is a row, also those the plugin reports as not run
    # (an Add executed in place by its neighbour): what they absorbed must still be matched.
    rows = []
    for name, node in _runtime_graph(cm).items():
        if node["type"] in _NOT_TIMED:
            continue
        times = samples.get(name) or [0.0]
        if not node["inputs"] and not any(times) and not any(
                n.startswith("__module") for n in node["original_names"]):
            continue  # a constant sub-graph (a weight reshape): nothing runs per inference
        rows.append({"name": name, "ms": median(times), "type": node["type"],
                     "exec_type": node["exec_type"], "original_names": node["original_names"],
                     "inputs": node["inputs"]})
    return rows


def runtime_rows(cm: Any) -> list[dict[str, Any]]:
    """The primitives an inference runs (no timing): what fusion made of the model's nodes,
    with each one's output bytes. Constant sub-graphs are left out; a Reorder of the model's
    input is kept (it runs on every inference, and ``layer_times`` keeps it as timed)."""
    rows = []
    for name, node in _runtime_graph(cm).items():
        if node["type"] in _NOT_TIMED:
            continue
        if not node["inputs"] and not node["from_input"] and not any(
                n.startswith("__module") for n in node["original_names"]):
            continue  # a constant sub-graph; a Reorder of the model's input runs every time
        rows.append({"name": name, "type": node["type"], "exec_type": node["exec_type"],
                     "original_names": node["original_names"], "inputs": node["inputs"],
                     "out_bytes": node["out_bytes"], "out_shape": node["out_shape"]})
    return rows


def _output_bytes(op: Any, shape: list[int] | None) -> int:
    """Bytes of a primitive's first output of ``shape`` (``_output_shape``; 0 when dynamic or
    absent): what a layout conversion (Reorder) writes."""
    if shape is None:
        return 0
    try:
        return math.prod(shape) * int(op.output(0).get_element_type().size)
    except (IndexError, RuntimeError, AttributeError):
        return 0


def _output_shape(op: Any) -> list[int] | None:
    """The logical shape of a primitive's first output (None when dynamic or absent): for a
    layout conversion, the tensor it converts (``harness.predict.fusion.reorder_kernel``)."""
    try:
        shape = op.output(0).get_partial_shape()
        return [int(d) for d in shape.to_shape()] if shape.is_static else None
    except (IndexError, RuntimeError, AttributeError):
        return None


def _runtime_graph(cm: Any) -> dict[str, dict[str, Any]]:
    graph: dict[str, dict[str, Any]] = {}
    for op in cm.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str)
        names = [s for s in info["originalLayersNames"].astype(str).split(",") if s]
        exec_type = info["primitiveType"].astype(str) if "primitiveType" in info else None
        feeds = [i.get_source_output().get_node() for i in op.inputs()]
        feed_types = [f.get_rt_info()["layerType"].astype(str) for f in feeds]
        shape = _output_shape(op)
        graph[op.get_friendly_name()] = {
            "type": kind, "exec_type": exec_type, "original_names": names,
            "inputs": [f.get_friendly_name() for f, t in zip(feeds, feed_types, strict=True)
                       if t not in _NOT_TIMED],
            "from_input": "Parameter" in feed_types or "Input" in feed_types,
            "out_bytes": _output_bytes(op, shape), "out_shape": shape,
        }
    return graph
