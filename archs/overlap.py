"""Overlapping-receptive-field ConvNets (Sharir & Shashua, ICLR 2018).

The paper's claim is that overlaps (stride < kernel) make a ConvNet exponentially more
expressive than a non-overlapping one (stride = kernel) of the same size. To ask what overlaps
cost or gain on a backend, the family is the simplest network that has the attribute and
nothing else: ``depth`` conv-BN-act layers of ``width`` channels, each with one ``kernel`` and
``stride``, then global pooling and a linear classifier.

Shapes: every layer pads "same" as TensorFlow does, so its output is exactly
``ceil(input / stride)`` whatever the kernel; the odd pixel of padding, when the total is odd,
goes right/bottom via an explicit ``ZeroPad2d`` (symmetric padding stays inside the conv). So no
kernel/stride pair can shrink a map to 0x0 at any ``res`` (a 1x1 map stays 1x1), and an
overlapping network and its non-overlapping reference have identical feature-map sizes at
every layer: they differ in the kernel alone, which is what ``match`` relies on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from .factorised import RANK_DOC, conv_macs, conv_params
from .layers import classifier, conv_bn_act
from .registry import common_params, register
from .spec import Param, SpecError

MATCH = ("none", "params", "flops")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """``(output size, pad before, pad after)`` giving ``ceil(size / stride)`` outputs."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def _layer(cin: int, cout: int, size: int, kernel: int, stride: int, act: str,
           rank: int = 0) -> nn.Module:
    _, before, after = same_padding(size, kernel, stride)
    if before == after:
        return conv_bn_act(cin, cout, kernel, stride, act=act, padding=before, rank=rank)
    pad = nn.ZeroPad2d((before, after, before, after))
    return nn.Sequential(pad, conv_bn_act(cin, cout, kernel, stride, act=act, padding=0, rank=rank))


def size_of(values: Mapping[str, Any], kernel: int, width: int, metric: str) -> int:
    """Exact parameter count or multiply-adds of the network with this kernel and width.

    Counts what ``torch.utils.flop_counter`` and ``numel`` count: conv and linear MACs;
    conv weights, BN affine pairs and the classifier's weights and bias. A ``rank`` counts
    the factorised convolutions (``archs.factorised``), so ``match`` matches those.
    """
    size, cin, total, rank = values["res"], 3, 0, values.get("rank", 0)
    for _ in range(values["depth"]):
        out, before, after = same_padding(size, kernel, values["stride"])
        if metric == "flops":  # an odd padding is a ZeroPad2d before the conv: it sees the pad
            seen = size if before == after else size + before + after
            total += conv_macs(cin, width, kernel, rank, seen, out)
        else:
            total += conv_params(cin, width, kernel, rank) + 2 * width
        size, cin = out, width
    head = width * values["classes"]
    return total + head + (values["classes"] if metric == "params" else 0)


def matched_width(values: Mapping[str, Any]) -> int:
    """The width the network is built with: ``width``, or under ``match`` the integer width
    whose params (or FLOPs) come closest to the non-overlapping reference (kernel = stride,
    same depth, width, res, classes).

    Both counts are quadratics in the width with non-negative coefficients, so the closest
    integer is found by scanning widths up to ``width`` (an overlapping kernel is never smaller
    than the reference's, and the map sizes are the same). The target lies between the sizes
    at two neighbouring widths ``w`` and ``w + 1``, so the mismatch left is at most half that
    step, which for such a quadratic is at most ``(1 + 1/(2w)) / w`` relative: about 1/64 at a
    matched width of 64, 3% at 32 (e.g. kernel 3/stride 2, depth 4, width 64, res 224, 1000
    classes: 116,542 params at width 49 vs the reference's 115,432, +1.0%). Where even width 1
    is larger than the reference (a large kernel at a tiny width) width 1 is used and the
    mismatch is whatever it leaves.
    """
    if values["match"] == "none" or values["kernel"] == values["stride"]:
        return values["width"]
    metric = values["match"]
    target = size_of(values, values["stride"], values["width"], metric)
    return min(
        range(1, values["width"] + 1),
        key=lambda w: (abs(size_of(values, values["kernel"], w, metric) - target), w),
    )


def _check(values: dict[str, Any]) -> dict[str, Any]:
    if values["stride"] > values["kernel"]:
        raise SpecError(
            f"overlap: stride={values['stride']} > kernel={values['kernel']} would skip pixels; "
            "valid: stride <= kernel (stride < kernel overlaps, stride = kernel does not)"
        )
    return values


@register(
    "overlap",
    common_params() + (
        Param("depth", int, 4, min=1, max=12, doc="conv layers"),
        Param("kernel", int, 3, min=2, max=7, doc="receptive field of every conv"),
        Param("stride", int, 2, min=1, max=3, doc="stride of every conv; <= kernel"),
        Param("width", int, 64, min=4, max=256, doc="channels of every conv"),
        Param("match", str, "none", choices=MATCH,
              doc="rescale width to the params or FLOPs of the kernel=stride reference"),
        Param("rank", int, 0, min=0, max=256, doc=RANK_DOC),
    ),
    resolve=_check,
    small={"res": 32, "depth": 2, "width": 16},
)
def build_overlap(values: Mapping[str, Any]) -> nn.Module:
    """Overlapping-receptive-field ConvNet (Sharir & Shashua 2018): a stack of conv-BN-act
    layers with one kernel and stride (stride < kernel overlaps), optionally size-matched to
    its non-overlapping (kernel = stride) reference.

    ``kernel`` starts at 2 and ``stride`` stops at 3 so that every value at either end of one
    range is valid with the other at its default (3/2); ``stride > kernel`` is refused.
    """
    width, size, cin = matched_width(values), values["res"], 3
    layers: list[nn.Module] = []
    for _ in range(values["depth"]):
        layers.append(_layer(cin, width, size, values["kernel"], values["stride"], values["act"],
                             values["rank"]))
        size, cin = same_padding(size, values["kernel"], values["stride"])[0], width
    model = nn.Sequential(*layers, classifier(width, values["classes"]))
    setattr(model, "matched_width", width)  # noqa: B010 - a plain int, not a parameter
    return model
