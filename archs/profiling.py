"""FLOPs, parameters and the per-layer working set of one inference.

Why this exists: a speed-up only means something next to what the network asks of the machine.
FLOPs say how much arithmetic there is; the bytes each layer touches say whether that arithmetic
can be fed from cache. Both come from one forward pass under ``torch.no_grad``:

- FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (so they match what anyone
  else using torch's counter reports): 2 per multiply-add of convolutions and matrix products;
  elementwise ops, BatchNorm, pooling and bias adds count 0. ``macs = flops // 2``.
- Bytes come from forward hooks on the *leaf* modules (modules without children).

What "working set" means here, and its limits. It is an analytic model, not a measurement:
a leaf's working set is ``input_bytes + output_bytes + weight_bytes`` - the bytes the layer
must touch at least once if it runs on its own. It ignores kernel scratch space (im2col,
packed weights), the re-reads a real kernel needs when the set exceeds a cache, layer fusion
(OpenVINO fuses conv+BN+activation, so its real working set is smaller), and batching of
work across threads. Two rules keep it a property of the *architecture* rather than of how
a module happens to be written:

- an in-place layer (``ReLU(inplace=True)``) is counted as if it wrote a new tensor, so
  ``act=relu`` with and without ``inplace`` profile the same;
- a layer whose output is a view of its input that it did not write (``Identity``,
  ``Flatten``, ``Dropout`` at inference) moves no data: it is marked ``alias``, its output adds
  nothing to ``activation_bytes`` and its working set is 0.

Work done in a non-leaf module's own ``forward`` (a residual ``x + y``, ``torch.cat`` in a DARTS
cell) has no leaf: its FLOPs appear in the totals and in ``unattributed_flops``; its bytes are
not counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from .builder import build
from .families import parse


@dataclass(frozen=True)
class LayerProfile:
    """One call of one leaf module. A module called twice appears twice (``name#2``)."""

    name: str  # module path, as in ``model.named_modules()``
    type: str
    output_shape: tuple[int, ...]  # the first output tensor's shape
    flops: int
    params: int
    weight_bytes: int  # parameters + floating-point buffers (what inference reads)
    input_bytes: int
    output_bytes: int
    working_set_bytes: int  # input + output + weight bytes; 0 for an alias
    alias: bool = False  # output is an unwritten view of the input: moves no data
    inplace: bool = False  # wrote its output into its input's memory

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["output_shape"] = list(self.output_shape)
        return out


@dataclass(frozen=True)
class Profile:
    """The whole-model figures and the per-layer table, in execution order."""

    spec: str
    flops: int
    macs: int
    params: int
    weight_bytes: int
    activation_bytes: int  # sum of non-alias leaf outputs
    peak_working_set_bytes: int  # largest layer working set
    input_shape: tuple[int, ...]
    layers: tuple[LayerProfile, ...]
    input_bytes: int = 0
    unattributed_flops: int = 0  # counted, but done outside any leaf module
    # Parameters that are not exactly zero: below ``params`` where a family zeroes weights
    # (``wide:sparsity=``); FLOPs still count the zeros, as every dense kernel multiplies them.
    nonzero_params: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "flops": self.flops,
            "macs": self.macs,
            "params": self.params,
            "weight_bytes": self.weight_bytes,
            "activation_bytes": self.activation_bytes,
            "peak_working_set_bytes": self.peak_working_set_bytes,
            "input_shape": list(self.input_shape),
            "input_bytes": self.input_bytes,
            "unattributed_flops": self.unattributed_flops,
            "nonzero_params": self.nonzero_params,
            "layers": [layer.as_json() for layer in self.layers],
        }


def profile(spec: Any, *, seed: int = 0) -> Profile:
    """Build ``spec`` (text or Spec) and profile it; ``spec`` in the result is canonical."""
    canonical = str(parse(spec))
    model, example = build(canonical, seed=seed)
    return profile_module(model, example, canonical)


def profile_module(module: nn.Module, example_input: Any, name: str) -> Profile:
    """Profile any module on ``example_input`` (a tensor, or a tuple of positional tensors).

    The pass runs in eval mode under ``torch.no_grad`` on the *meta* device when the module
    allows it: FLOPs and bytes depend on shapes only, so nothing is computed or allocated and a
    batch-256 model profiles as fast as batch 1. A module that cannot run on meta tensors
    (data-dependent control flow, tensors kept outside its parameters and buffers) is run for
    real on a clone of the input. Either way the module's weights, train/eval flags and the
    caller's tensors are left as they were.
    """
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        try:
            layers, flops = _trace(module, args, meta=True)
        except Exception:  # noqa: BLE001 - any meta failure just means "run it for real"
            layers, flops = _trace(module, args, meta=False)
    finally:
        for m, training in modes:
            m.training = training

    inputs = [a for a in args if isinstance(a, torch.Tensor)]
    return Profile(
        spec=name,
        flops=flops,
        macs=flops // 2,
        params=sum(p.numel() for p in module.parameters()),
        weight_bytes=_weight_bytes(module, recurse=True),
        activation_bytes=sum(layer.output_bytes for layer in layers if not layer.alias),
        peak_working_set_bytes=max((layer.working_set_bytes for layer in layers), default=0),
        input_shape=tuple(inputs[0].shape) if inputs else (),
        layers=layers,
        input_bytes=sum(_nbytes(t) for t in inputs),
        unattributed_flops=flops - sum(layer.flops for layer in layers),
        nonzero_params=sum(int(torch.count_nonzero(p)) for p in module.parameters()),
    )


def _trace(module: nn.Module, args: tuple, *, meta: bool) -> tuple[tuple[LayerProfile, ...], int]:
    """One hooked forward pass under the flop counter; returns the layers and total FLOPs."""
    counter = FlopCounterMode(display=False)
    recorder = _Recorder(counter)
    handles = []
    try:
        for path, leaf in _leaves(module):
            handles.append(leaf.register_forward_pre_hook(recorder.pre, with_kwargs=True))
            handles.append(leaf.register_forward_hook(recorder.post_for(path), with_kwargs=True))
        with torch.no_grad():
            if meta:
                # One entry per shared tensor; functional_call re-ties tied weights itself.
                named = [*module.named_parameters(), *module.named_buffers()]
                state = {k: t.to("meta") for k, t in named}
                inputs = tuple(a.to("meta") if isinstance(a, torch.Tensor) else a for a in args)
                with counter:
                    torch.func.functional_call(module, state, inputs)
            else:
                inputs = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
                with counter:
                    module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return tuple(recorder.layers), counter.get_total_flops()


class _Recorder:
    """Hook state: the pre-hook notes the FLOP total and the inputs' version counters, the
    post-hook turns the differences into a LayerProfile."""

    def __init__(self, counter: FlopCounterMode) -> None:
        self.counter = counter
        self.layers: list[LayerProfile] = []
        self.calls: dict[str, int] = {}
        self.pending: dict[int, tuple[int, list[torch.Tensor], list[int | None]]] = {}

    def pre(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        tensors = _unique_tensors((args, kwargs))
        self.pending[id(module)] = (self.counter.get_total_flops(), tensors, [_version(t) for t in tensors])

    def post_for(self, path: str):
        def post(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            flops_before, inputs, versions = self.pending.pop(id(module))
            self.layers.append(self._layer(path, module, flops_before, inputs, versions, output))

        return post

    def _layer(
        self, path: str, module: nn.Module, flops_before: int,
        inputs: list[torch.Tensor], versions: list[int | None], output: Any,
    ) -> LayerProfile:
        outputs = _unique_tensors(output)
        roots = {id(_root(t)) for t in inputs}
        shares = any(id(_root(t)) in roots for t in outputs)
        # A version counter that moved (or cannot be read) means the layer wrote its input.
        wrote = any(v is None or _version(t) != v for t, v in zip(inputs, versions, strict=True))
        alias = shares and not wrote
        in_bytes = sum(_nbytes(t) for t in inputs)
        out_bytes = sum(_nbytes(t) for t in outputs)
        w_bytes = _weight_bytes(module, recurse=False)
        self.calls[path] = self.calls.get(path, 0) + 1
        n = self.calls[path]
        return LayerProfile(
            name=path if n == 1 else f"{path}#{n}",
            type=type(module).__name__,
            output_shape=tuple(outputs[0].shape) if outputs else (),
            flops=self.counter.get_total_flops() - flops_before,
            params=sum(p.numel() for p in module.parameters(recurse=False)),
            weight_bytes=w_bytes,
            input_bytes=in_bytes,
            output_bytes=out_bytes,
            working_set_bytes=0 if alias else in_bytes + out_bytes + w_bytes,
            alias=alias,
            inplace=shares and wrote,
        )


def _leaves(module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for path, sub in module.named_modules():
        if next(sub.children(), None) is None:
            yield (path or type(module).__name__), sub


def _unique_tensors(obj: Any) -> list[torch.Tensor]:
    """Tensors in nested containers, each object once (a tensor passed twice is read once)."""
    found = {id(x): x for x in tree_leaves(obj) if isinstance(x, torch.Tensor)}
    return list(found.values())


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _root(t: torch.Tensor) -> torch.Tensor:
    """The tensor that owns ``t``'s memory (views point at it; it works on meta tensors,
    where storage pointers are all 0)."""
    return t._base if t._base is not None else t


def _version(t: torch.Tensor) -> int | None:
    try:
        return t._version
    except RuntimeError:  # inference tensors keep no version counter
        return None


def _weight_bytes(module: nn.Module, *, recurse: bool) -> int:
    """Parameters plus floating-point buffers (BatchNorm's running statistics are read at
    inference; integer counters such as ``num_batches_tracked`` are not)."""
    params = sum(_nbytes(p) for p in module.parameters(recurse=recurse))
    return params + sum(_nbytes(b) for b in module.buffers(recurse=recurse) if b.is_floating_point())


def format_table(profile: Profile, limit: int | None = None) -> str:
    """The totals, then the per-layer table as fixed-width text (``accelbench profile``).

    ``limit`` keeps the first ``limit`` layers in execution order and says how many were left
    out, so a deep network's table still fits a terminal.
    """
    header = ("#", "layer", "type", "output", "FLOPs", "params", "weights", "in", "out", "working set")
    rows = [header]
    shown = profile.layers if limit is None else profile.layers[: max(limit, 0)]
    for i, layer in enumerate(shown):
        rows.append((
            str(i), layer.name, layer.type + (" (alias)" if layer.alias else ""),
            "x".join(map(str, layer.output_shape)), _si(layer.flops), _si(layer.params),
            _bytes(layer.weight_bytes), _bytes(layer.input_bytes), _bytes(layer.output_bytes),
            _bytes(layer.working_set_bytes),
        ))
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) if c in (1, 2, 3) else cell.rjust(w)
                  for c, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if len(shown) < len(profile.layers):
        lines.append(f"... {len(profile.layers) - len(shown)} more layers")
    summary = [
        f"spec               {profile.spec}",
        f"input              {'x'.join(map(str, profile.input_shape))}",
        f"FLOPs              {_si(profile.flops)} ({_si(profile.macs)} MACs;"
        f" {_si(profile.unattributed_flops)} outside leaf layers)",
        f"params             {_si(profile.params)}"
        + (f" ({_si(profile.nonzero_params)} non-zero)"
           if 0 < profile.nonzero_params < profile.params else ""),
        f"weights            {_bytes(profile.weight_bytes)}",
        f"activations        {_bytes(profile.activation_bytes)}",
        f"peak working set   {_bytes(profile.peak_working_set_bytes)}",
        f"layers             {len(profile.layers)}",
        "",
    ]
    # The totals first: a deep network's table is hundreds of rows, and the summary is what a
    # person reads first (and what survives `| head`).
    lines = summary + lines
    return "\n".join(lines)


def _si(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
