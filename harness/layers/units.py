"""List and time a PyTorch model's units: leaf modules and functional ops in non-leaf forwards.

Why hooks plus a ``TorchFunctionMode``: forward hooks time every leaf module, but a residual
``out + identity`` or a ``torch.cat`` of a DARTS cell is no module; it runs in its parent's
``forward``. The function mode sees those calls, and one outside any leaf module becomes the unit
``parent::op`` (``layer1.0::add``), which is also how OpenVINO's frontend names it
(``__module.layer1.0/aten::add/Add``); each call site is a unit of its own (``layer1.0::add#2``
for the second add in that forward, ``<model>::relu`` for one in the model's own forward: see
``naming``). Calls inside a leaf module pass straight through.

The data flow (which unit consumed which unit's output) is recorded on the first pass by tensor
identity; it lets ``matching`` put a convolution back into the primitive that absorbed it when
OpenVINO renamed that primitive (``Multiply_3902``). Outputs are kept alive for that one pass so
an ``id`` is never reused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from statistics import median
from typing import Any

from harness.layers.kinds import kind_of_module, kind_of_op, normalize_op
from harness.layers.naming import CallSites, topological_order

# Calls that are attribute reads or bookkeeping, not computation.
_SKIP = {"__get__", "__set__", "size", "dim", "numel", "__len__", "__format__", "__repr__",
         "__bool__", "is_contiguous", "__eq__", "__ne__", "__hash__", "__index__", "__int__",
         "__float__", "item", "tolist", "__torch_function__"}


def trace_units(model: Any, example: Any, passes: int = 1,
                context: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Run ``model(example)`` ``passes`` times with every unit timed.

    Returns ``{"units": [{"name", "type", "kind", "inputs", "order", "ms", "calls"}],
    "pass_ms": [...]}`` in first-call order; ``ms`` is the median over passes of the unit's time
    in a pass (a module called twice in one forward counts twice), ``inputs`` the units whose
    outputs it consumed, ``order`` its rank in OpenVINO's topological order
    (``naming.topological_order``; None when no output depends on it).
    """
    import contextlib

    import torch
    from torch.overrides import TorchFunctionMode

    names = {id(m): n for n, m in model.named_modules()}
    leaves = {id(m) for m in model.modules() if not any(True for _ in m.children())}
    units: dict[str, dict[str, Any]] = {}
    per_pass: list[dict[str, float]] = []
    stack: list[tuple[int, int]] = []  # (module id, start ns) of the modules being run
    producer: dict[int, str] = {}
    keep: list[Any] = []
    state = {"flow": True}
    sites = CallSites()
    clock = time.perf_counter_ns

    def unit(name: str, type_name: str, kind: str) -> dict[str, Any]:
        if name not in units:
            units[name] = {"name": name, "type": type_name, "kind": kind, "inputs": [], "calls": 0}
        return units[name]

    def flow(name: str, args: Any, out: Any) -> None:
        if not state["flow"]:
            return
        record = units[name]
        for t in tensors_in(args):
            src = producer.get(id(t))
            if src is not None and src != name and src not in record["inputs"]:
                record["inputs"].append(src)
        for t in tensors_in(out):
            producer[id(t)] = name
            keep.append(t)

    def charge(name: str, ns: int) -> None:
        per_pass[-1][name] = per_pass[-1].get(name, 0.0) + ns / 1e6
        units[name]["calls"] += 1

    def pre(module: Any, args: Any) -> None:
        stack.append((id(module), clock()))

    def post(module: Any, args: Any, out: Any) -> None:
        mid, t0 = stack.pop()
        if mid in leaves:
            elapsed = clock() - t0
            name = names[mid]
            unit(name, type(module).__name__, kind_of_module(module))
            charge(name, elapsed)
            flow(name, args, out)

    class Functional(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            kwargs = kwargs or {}
            raw = getattr(func, "__name__", "")
            if (stack and stack[-1][0] in leaves) or raw in _SKIP or not raw:
                return func(*args, **kwargs)
            t0 = clock()
            out = func(*args, **kwargs)
            elapsed = clock() - t0
            if not any(True for _ in tensors_in(out)):
                return out
            op = normalize_op(raw)
            name = sites.name(names[stack[-1][0]] if stack else "", op)
            unit(name, f"fn:{op}", kind_of_op(op))
            charge(name, elapsed)
            flow(name, (args, kwargs), out)
            return out

    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    pass_ms: list[float] = []
    outputs: list[str] = []
    try:
        for i in range(passes):
            per_pass.append({})
            state["flow"] = i == 0
            sites.reset()
            with (context() if context else contextlib.nullcontext()), torch.no_grad():
                t0 = clock()
                with Functional():
                    result = model(example)
                pass_ms.append((clock() - t0) / 1e6)
            if i == 0:
                outputs = [producer[id(t)] for t in tensors_in(result) if id(t) in producer]
            keep.clear()
            producer.clear()
            stack.clear()
    finally:
        for h in handles:
            h.remove()
    order = topological_order(list(units.values()), outputs)
    for name, record in units.items():
        record["order"] = order.get(name)
        record["ms"] = median(p.get(name, 0.0) for p in per_pass)
        record["calls"] = record["calls"] // max(passes, 1)
    return {"units": list(units.values()), "pass_ms": pass_ms}


def tensors_in(obj: Any) -> Any:
    """Every tensor in a nest of tuples, lists and dicts."""
    import torch

    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from tensors_in(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from tensors_in(item)


def torch_layer_rows(traced: dict[str, Any]) -> list[dict[str, Any]]:
    """The torch backend's layer table: one row per unit, named after itself."""
    return [{"name": u["name"], "ms": u["ms"], "type": u["type"], "original_names": [u["name"]],
             "inputs": list(u["inputs"])} for u in traced["units"]]


__all__ = ["torch_layer_rows", "trace_units"]
