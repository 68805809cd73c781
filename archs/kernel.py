"""Single kernels as networks: what the latency predictor (``harness.predict``) is fitted on.

Why a family: a kernel timed as a one-layer network is a cell like any other, so it survives,
resumes and merges through the same store, and the predictor sees it through the same
enumeration and fusion reading as the networks it predicts. ``op`` names the kernel kinds the
other families are built from; the input is the kernel's own input (``batch x cin x res x res``,
or ``batch x cin`` for ``linear``), so nothing but the kernel runs.

``repeat`` chains the kernel that many times (shape-preserving ops only: ``conv``/``dwconv``/
``pointwise``/``linear`` with ``cin == cout`` and stride 1, ``act``, ``bn``, ``add``): the same kernel at
several counts separates the per-inference overhead from the kernel's own cost. ``add`` adds
its input to itself and ``concat`` joins it to itself along channels (two operands, one input,
as a residual add or a DARTS concat sees them). OpenVINO runs that ``concat`` in place (on the
network's plain input: a Reorder copies the input into its output) and a concatenation of a
convolution's output as a copy, as DARTS's and DenseNet's are run
(``harness.predict.fusion.CONCAT_INPLACE``): ``pwconcat`` is a pointwise convolution whose
output is joined to itself and pooled to one value per channel, ``pwgap`` the same without the
join; the pair differs by the copy (and a pool over twice the channels, priced by its own
kind), and the pooled output leaves no large tensor to convert back to the plain layout (which
dominated a cell that returned the joined map).

``post=act`` follows each convolution or linear layer with its activation (``act=``), as the
families' layers are: OpenVINO fuses the pair into one kernel, and at batch 1 its fused
FullyConnected takes another, slower path than the bare one (``harness.predict.fusion.LINEAR_ACT``).

``op=mix`` chains ``repeat`` *different* shape-preserving kernels in a fixed cycle (3x3 conv,
batch norm, activation, depthwise 3x3, pointwise, add): a network's kernels follow one another,
and the first call after a different kernel costs more than a repeat of the same one (on a Zen 1
VM, eager PyTorch: 25-40 µs a layer, a 1.5x gap between a network and its layers timed alone).
Mixed chains beside same-kernel ``repeat=`` chains identify that switch cost
(``harness.predict.model``).

``op=pad`` pads the map by one pixel right and bottom with zeros, as the overlapping ConvNets
do before a stride-2 convolution whose "same" padding is odd (``archs.overlap``): eager PyTorch
copies the map into a new one (``constant_pad_nd``), OpenVINO folds the padding into the
convolution that follows (``harness.predict.fusion.PAD``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .layers import make_act
from .registry import common_params, register
from .spec import Param, SpecError

OPS = ("conv", "dwconv", "pointwise", "pool", "avgpool", "gap", "linear", "act", "bn", "add",
       "concat", "pwconcat", "pwgap", "mix", "pad")
# A pointwise convolution pooled to one value per channel, its output joined to itself first
# or not: the pair that prices a copying concatenation (module docstring).
_POOLED = ("pwconcat", "pwgap")
_CHAINABLE = ("conv", "dwconv", "pointwise", "linear", "act", "bn", "add", "mix")
MIX = ("conv", "bn", "act", "dwconv", "pointwise", "add")  # op=mix's cycle
# Kernels that ``post=act`` may follow with their activation (a runtime that fuses, OpenVINO,
# runs the pair as one kernel; eager PyTorch as two).
_POSTABLE = ("conv", "dwconv", "pointwise", "linear")


def _resolve(values: dict[str, Any]) -> dict[str, Any]:
    op = values["op"]
    if values["cout"] is None:
        values["cout"] = values["cin"]
    if op == "dwconv":
        values["groups"] = values["cin"]
    if op == "pointwise" or op in _POOLED:
        values["kernel"] = 1
    cin, cout, groups = values["cin"], values["cout"], values["groups"]
    if op in ("conv", "pointwise", "dwconv", *_POOLED) and (cin % groups or cout % groups):
        raise SpecError(f"groups={groups} must divide cin={cin} and cout={cout}")
    if op == "mix" and (cout != cin or values["stride"] != 1):
        raise SpecError("op=mix chains shape-preserving kernels: it needs cin == cout and stride=1")
    if op == "pad" and (cout != cin or values["stride"] != 1):
        raise SpecError("op=pad pads its input by one pixel: it needs cin == cout and stride=1")
    if op == "dwconv" and cout != cin:
        raise SpecError(f"op=dwconv keeps its channels: cout={cout} must equal cin={cin}")
    if values["post"] != "none" and op not in _POSTABLE:
        raise SpecError(f"post={values['post']} follows a {'/'.join(_POSTABLE)} kernel, not op={op}")
    if values["repeat"] > 1:
        if op not in _CHAINABLE:
            raise SpecError(f"repeat>1 needs a shape-preserving op ({', '.join(_CHAINABLE)})")
        if cin != cout or values["stride"] != 1:
            raise SpecError("repeat>1 needs cin == cout and stride=1 (each copy feeds the next)")
    return values


def _input_shape(values: Mapping[str, Any]) -> tuple[int, ...]:
    if values["op"] == "linear":
        return (values["batch"], values["cin"])
    return (values["batch"], values["cin"], values["res"], values["res"])


class _Add(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + x


class _Concat(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x], 1)


def _one(values: Mapping[str, Any], first: bool = False) -> nn.Module:
    op, k, s = values["op"], values["kernel"], values["stride"]
    cin, cout = values["cin"], values["cout"]
    pad = (k - 1) // 2
    if op in ("conv", "pointwise", "dwconv"):
        return nn.Conv2d(cin, cout, k, s, pad, groups=values["groups"], bias=False)
    if op == "pool":
        return nn.MaxPool2d(k, s, pad)
    if op == "avgpool":
        return nn.AvgPool2d(k, s, pad, count_include_pad=False)
    if op == "gap":
        return nn.AdaptiveAvgPool2d(1)
    if op == "linear":
        return nn.Linear(cin, cout)
    if op == "act":
        return make_act(values["act"], inplace=not first)
    if op == "bn":
        return nn.BatchNorm2d(cin)
    if op == "pad":
        return nn.ZeroPad2d((0, 1, 0, 1))
    return _Add() if op == "add" else _Concat()


@register(
    "kernel",
    (
        Param("op", str, "conv", choices=OPS, doc="the kernel kind"),
        Param("kernel", int, 3, min=1, max=11, doc="kernel size (conv, dwconv, pools)"),
        Param("stride", int, 1, min=1, max=4, doc="stride (conv, dwconv, pools)"),
        Param("cin", int, 32, min=1, max=8192, doc="input channels (features for linear)"),
        Param("cout", int, None, min=1, max=8192, doc="output channels (default: cin)"),
        Param("groups", int, 1, min=1, max=8192, doc="conv groups (dwconv: cin)"),
        Param("repeat", int, 1, min=1, max=16, doc="copies chained (shape-preserving ops)"),
        Param("post", str, "none", choices=("none", "act"),
              doc="act: each copy followed by its activation (act=), as the families' hidden "
                  "layers are; OpenVINO fuses the pair into one kernel"),
        *common_params(res=32, classes=1, res_min=1),
    ),
    resolve=_resolve,
    small={"res": 8, "cin": 8},
    input_shape=_input_shape,
)
def build_kernel(values: Mapping[str, Any]) -> nn.Module:
    """One kernel (or a chain of copies of it) as a network, for the per-kernel latency models;
    ``classes`` is unused, ``act`` picks the activation of ``op=act`` and of ``post=act``."""
    # Always a Sequential: the kernel is unit ``0`` (``0::add`` for a functional op), named as
    # OpenVINO's frontend names it, never the nameless root.
    if values["op"] == "mix":
        return nn.Sequential(*(_one(_mixed(values, MIX[i % len(MIX)]))
                               for i in range(values["repeat"])))
    if values["op"] in _POOLED:
        joined = (_Concat(),) if values["op"] == "pwconcat" else ()
        return nn.Sequential(_one({**values, "op": "pointwise"}), *joined, nn.AdaptiveAvgPool2d(1))
    if values["post"] == "act":
        return nn.Sequential(*(m for _ in range(values["repeat"])
                               for m in (_one(values), make_act(values["act"]))))
    # The first activation of an ``op=act`` chain reads the network's input, so it runs out of
    # place: in place, every timed call would take the previous call's output as its input
    # (iterated Hardswish or SiLU reach all zeros: eager PyTorch then timed a zero tensor, and
    # the parity check compared outputs of different inputs). The copies after it run in place,
    # as the families' activations do: a chain's marginal cost is an in-place activation's.
    return nn.Sequential(*(_one(values, first=i == 0) for i in range(values["repeat"])))


def _mixed(values: Mapping[str, Any], op: str) -> dict[str, Any]:
    """``values`` as one kernel of ``op=mix``'s cycle (3x3 for the convolutions, 1x1 pointwise)."""
    cin = values["cin"]
    return {**values, "op": op, "kernel": 1 if op == "pointwise" else 3,
            "groups": cin if op == "dwconv" else 1}
