"""A model's units with the shape features the kernel models need.

Units are named as ``harness.layers.units.trace_units`` names them (a leaf module by its path,
a functional op in a non-leaf forward as ``parent::op``, one unit per call site:
``harness.layers.naming``), because that is how OpenVINO's frontend names the nodes a primitive
absorbed, and ``harness.layers.matching`` joins the two on those names. Unlike that tracer this
one times nothing; it records what a latency depends on:
FLOPs (2 per multiply-add, as ``archs.profiling`` counts them), bytes read and written, weight
bytes, and the convolution's kernel, stride, groups and channels.
"""

from __future__ import annotations

from typing import Any

from harness.layers.kinds import kind_of_module, kind_of_op, normalize_op
from harness.layers.naming import CallSites, topological_order
from harness.layers.units import tensors_in

_SKIP = {"__get__", "__set__", "size", "dim", "numel", "__len__", "__format__", "__repr__",
         "__bool__", "is_contiguous", "__eq__", "__ne__", "__hash__", "__index__", "__int__",
         "__float__", "item", "tolist", "__torch_function__"}


def model_units(model: Any, example: Any) -> list[dict[str, Any]]:
    """One eager pass under ``no_grad``; units in first-call order, each ``{"name", "type",
    "kind", "inputs", "order", "flops", "in_bytes", "out_bytes", "weight_bytes", "kernel",
    "stride", "groups", "cin", "cout", "out_shape"}``. A unit called twice sums its figures."""
    import torch
    from torch.overrides import TorchFunctionMode

    names = {id(m): n for n, m in model.named_modules()}
    # Leaves of a known kind are units; a leaf of kind "other" (a module whose forward is
    # ``x + x``) is looked into, so its functional ops become the units, as in a non-leaf.
    leaves = {id(m) for m in model.modules() if not any(True for _ in m.children())
              and kind_of_module(m) != "other"}
    units: dict[str, dict[str, Any]] = {}
    stack: list[int] = []
    producer: dict[int, str] = {}
    keep: list[Any] = []
    sites = CallSites()

    def record(name: str, type_name: str, kind: str, args: Any, out: Any, module: Any = None) -> None:
        ins, outs = list(tensors_in(args)), list(tensors_in(out))
        u = units.setdefault(name, {"name": name, "type": type_name, "kind": kind, "inputs": [],
                                    "flops": 0, "in_bytes": 0, "out_bytes": 0, "weight_bytes": 0,
                                    **_shape_keys(module, ins, outs)})
        for t in ins:
            src = producer.get(id(t))
            if src is not None and src != name and src not in u["inputs"]:
                u["inputs"].append(src)
        for t in outs:
            producer[id(t)] = name
            keep.append(t)
        u["flops"] += _flops(module, ins, outs)
        u["in_bytes"] += sum(_nbytes(t) for t in {id(t): t for t in ins}.values())
        u["out_bytes"] += sum(_nbytes(t) for t in outs)
        if module is not None:
            u["weight_bytes"] += sum(_nbytes(p) for p in module.parameters(recurse=False))
            u["weight_bytes"] += sum(_nbytes(b) for b in module.buffers(recurse=False)
                                     if b.is_floating_point())

    def pre(module: Any, args: Any) -> None:
        stack.append(id(module))

    def post(module: Any, args: Any, out: Any) -> None:
        mid = stack.pop()
        if mid in leaves:
            record(names[mid], type(module).__name__,
                   kind_of_module(module), args, out, module)

    class Functional(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            kwargs = kwargs or {}
            raw = getattr(func, "__name__", "")
            out = func(*args, **kwargs)
            if (stack and stack[-1] in leaves) or raw in _SKIP or not raw:
                return out
            if not any(True for _ in tensors_in(out)):
                return out
            op = normalize_op(raw)
            record(sites.name(names[stack[-1]] if stack else "", op), f"fn:{op}", kind_of_op(op),
                   (args, kwargs), out)
            return out

    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    try:
        with torch.no_grad(), Functional():
            result = model(example)
        outputs = [producer[id(t)] for t in tensors_in(result) if id(t) in producer]
    finally:
        for h in handles:
            h.remove()
        keep.clear()
    order = topological_order(list(units.values()), outputs)
    for name, u in units.items():
        u["order"] = order.get(name)
    return list(units.values())


def _shape_keys(module: Any, ins: list, outs: list) -> dict[str, Any]:
    """Kernel, stride, groups and channels of a convolution; channels of anything else."""
    cin = int(ins[0].shape[1]) if ins and ins[0].dim() >= 2 else 0
    cout = int(outs[0].shape[1]) if outs and outs[0].dim() >= 2 else 0
    keys = {"kernel": 0, "stride": 0, "groups": 1, "cin": cin, "cout": cout,
            "out_shape": list(outs[0].shape) if outs else []}
    if module is not None and hasattr(module, "kernel_size"):
        k, s = module.kernel_size, module.stride
        keys["kernel"] = int(k[0] if isinstance(k, tuple) else k)
        keys["kernel_size"] = [int(d) for d in (k if isinstance(k, tuple) else (k, k))]
        keys["stride"] = int(s[0] if isinstance(s, tuple) else s)
        keys["groups"] = int(getattr(module, "groups", 1))
    return keys


def _flops(module: Any, ins: list, outs: list) -> int:
    """2 per multiply-add of convolutions and linear layers; 0 for everything else, as torch's
    flop counter (and so ``archs.profiling``) counts."""
    from torch import nn

    if module is None or not outs:
        return 0
    out = outs[0]
    if isinstance(module, nn.modules.conv._ConvNd):
        per_out = module.in_channels // module.groups
        for k in module.kernel_size:
            per_out *= k
        return 2 * out.numel() * per_out
    if isinstance(module, nn.Linear):
        return 2 * out.numel() * module.in_features
    return 0


def _nbytes(t: Any) -> int:
    return t.numel() * t.element_size()
