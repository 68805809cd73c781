"""Macro-architecture design patterns: one stem, ``depth`` blocks of one pattern, one head.

The study this tool reproduces compares *patterns* (plain, residual, bottleneck, depthwise
bottleneck, depthwise separable, dense) at equal depth and width, so every pattern family shares
one builder and one stage layout and differs only in the block constructor looked up in
``PATTERNS``. Anything else that differed between them (stem, stage split, head) would leak into
the comparison and be mistaken for an effect of the pattern.

Layout, ResNet-like: a 3x3 stride-2 stem to ``width`` channels; the ``depth`` blocks spread over
``min(depth, 4)`` stages (``split_depth``); the first block of every stage after the first halves
the resolution and doubles the stage width. With the stem that is at most /16, and every strided
layer pads so a 1x1 map stays 1x1, so any ``res`` works; ``res_min`` 16 is where the last stage
reaches 1x1.

The blocks are also the building material of ``resnet`` and ``mobilenetv2``, so those reference
networks and the pattern families run literally the same modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .factorised import RANK_DOC, conv
from .layers import classifier, conv_bn_act, make_act
from .registry import common_params, register
from .spec import Param

MAX_STAGES = 4
# Where blocks that do not divide evenly go: the third stage first, as in ResNet's [3, 4, 6, 3].
_REMAINDER_ORDER = (2, 1, 3, 0)


class Residual(nn.Module):
    """``act(body(x) + shortcut(x))``; without a shortcut, just ``act(body(x))``.

    One class for every residual pattern so backends see the same Add placement everywhere.
    """

    def __init__(self, body: nn.Module, shortcut: nn.Module | None, act: str | None, cout: int):
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.act = make_act(act) if act is not None else nn.Identity()
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return self.act(y)


def _projection(cin: int, cout: int, stride: int) -> nn.Module:
    """Identity when shapes match, else a strided 1x1 conv-BN (ResNet's option B)."""
    if stride == 1 and cin == cout:
        return nn.Identity()
    return conv_bn_act(cin, cout, 1, stride, act=None)


def _tagged(module: nn.Module, cout: int) -> nn.Module:
    setattr(module, "out_channels", cout)  # noqa: B010 - read back by the stage builder below
    return module


def plain_block(cin: int, cout: int, stride: int, act: str, rank: int = 0) -> nn.Module:
    """VGG: a single 3x3 conv-BN-act."""
    return _tagged(conv_bn_act(cin, cout, 3, stride, act=act, rank=rank), cout)


def basic_block(cin: int, cout: int, stride: int, act: str, rank: int = 0) -> nn.Module:
    """ResNet basic block: two 3x3 convs, the stride on the first."""
    body = nn.Sequential(conv_bn_act(cin, cout, 3, stride, act=act, rank=rank),
                         conv_bn_act(cout, cout, 3, act=None, rank=rank))
    return Residual(body, _projection(cin, cout, stride), act, cout)


def bottleneck_block(cin: int, mid: int, stride: int, act: str, expansion: int = 4,
                     rank: int = 0) -> nn.Module:
    """ResNet v1.5 bottleneck: 1x1 reduce, strided 3x3, 1x1 expand to ``expansion * mid``."""
    cout = mid * expansion
    body = nn.Sequential(
        conv_bn_act(cin, mid, 1, act=act),
        conv_bn_act(mid, mid, 3, stride, act=act, rank=rank),
        conv_bn_act(mid, cout, 1, act=None),
    )
    return Residual(body, _projection(cin, cout, stride), act, cout)


def inverted_residual(cin: int, cout: int, stride: int, expand: float, act: str) -> nn.Module:
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, linear 1x1 projection.

    The projection is linear and the shortcut identity-only (added when shapes match, never
    projected), as in the paper; ``expand == 1`` drops the expansion conv, as torchvision does.
    """
    hidden = int(round(cin * expand))
    layers: list[nn.Module] = []
    if expand != 1:
        layers.append(conv_bn_act(cin, hidden, 1, act=act))
    layers += [
        conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=act),
        conv_bn_act(hidden, cout, 1, act=None),
    ]
    shortcut = nn.Identity() if stride == 1 and cin == cout else None
    return Residual(nn.Sequential(*layers), shortcut, None, cout)


def separable_block(cin: int, cout: int, stride: int, act: str) -> nn.Module:
    """MobileNetV1: strided 3x3 depthwise conv-BN-act, then 1x1 pointwise conv-BN-act."""
    return _tagged(nn.Sequential(
        conv_bn_act(cin, cin, 3, stride, groups=cin, act=act),
        conv_bn_act(cin, cout, 1, act=act),
    ), cout)


def _bn_act_conv(cin: int, cout: int, kernel: int, act: str, rank: int = 0) -> nn.Sequential:
    return nn.Sequential(
        nn.BatchNorm2d(cin), make_act(act), conv(cin, cout, kernel, 1, (kernel - 1) // 2, rank=rank),
    )


class DenseLayer(nn.Module):
    """DenseNet-BC layer (pre-activation 1x1 to 4*growth, 3x3 to growth), concatenated on."""

    def __init__(self, cin: int, growth: int, act: str, rank: int = 0):
        super().__init__()
        self.body = nn.Sequential(_bn_act_conv(cin, 4 * growth, 1, act),
                                  _bn_act_conv(4 * growth, growth, 3, act, rank))
        self.out_channels = cin + growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


DENSE_COMPRESSION = 0.5  # DenseNet-BC's theta


def dense_block(cin: int, stride: int, act: str, growth: int, rank: int = 0) -> nn.Module:
    """A dense layer; a downsampling one is preceded by a transition (compress, 2x2 avg-pool).

    Dense channels grow by ``growth`` per layer instead of doubling per stage, so the stage
    width is not used; the transition is where the stage boundary shows.
    """
    if stride == 1:
        return DenseLayer(cin, growth, act, rank)
    mid = max(1, int(cin * DENSE_COMPRESSION))
    layer = DenseLayer(mid, growth, act, rank)
    transition = nn.Sequential(_bn_act_conv(cin, mid, 1, act), nn.AvgPool2d(2, ceil_mode=True))
    return _tagged(nn.Sequential(transition, layer), layer.out_channels)


BlockMaker = Callable[[int, int, int, str, Mapping[str, Any]], nn.Module]


@dataclass(frozen=True)
class Pattern:
    """A pattern: how to make one block ``(cin, stage_width, stride, act, values)``, its own
    spec keys, whether the network needs a final BN-act (pre-activation blocks), and its doc."""

    block: BlockMaker
    doc: str
    extra: tuple[Param, ...] = ()
    final_norm: bool = False


_EXPAND = Param("expand", int, 6, min=1, max=8, doc="expansion ratio of the 1x1 conv")
_GROWTH = Param("growth", int, 32, min=4, max=64, doc="channels each dense layer adds")
# Only where a dense kxk conv exists in the blocks: the depthwise patterns' kxk convs are
# depthwise already (and the stem, shared by all patterns, stays whole so they stay comparable).
_RANK = Param("rank", int, 0, min=0, max=256, doc=RANK_DOC)

PATTERNS: dict[str, Pattern] = {
    "plain": Pattern(
        lambda cin, w, s, act, v: plain_block(cin, w, s, act, v.get("rank", 0)),
        "Plain (VGG-style) stack of 3x3 conv-BN-act layers.", (_RANK,)),
    "residual": Pattern(
        lambda cin, w, s, act, v: basic_block(cin, w, s, act, v.get("rank", 0)),
        "Residual pattern: ResNet basic blocks (two 3x3 convs and a shortcut).", (_RANK,)),
    "bottleneck": Pattern(
        lambda cin, w, s, act, v: bottleneck_block(cin, w, s, act, rank=v.get("rank", 0)),
        "Bottleneck pattern: ResNet 1x1-3x3-1x1 blocks with expansion 4 and a shortcut.",
        (_RANK,)),
    "dwbottleneck": Pattern(
        lambda cin, w, s, act, v: inverted_residual(cin, w, s, v["expand"], act),
        "Depthwise bottleneck pattern: MobileNetV2 inverted residuals (1x1 expand, 3x3 "
        "depthwise, linear 1x1 projection).", (_EXPAND,)),
    "dwseparable": Pattern(
        lambda cin, w, s, act, v: separable_block(cin, w, s, act),
        "Depthwise-separable pattern: MobileNetV1 3x3 depthwise + 1x1 pointwise blocks."),
    "dense": Pattern(
        lambda cin, w, s, act, v: dense_block(cin, s, act, v["growth"], v.get("rank", 0)),
        "Dense pattern: DenseNet-BC layers, compressing transitions between stages.",
        (_GROWTH, _RANK), final_norm=True),
}


def split_depth(depth: int, stages: int = MAX_STAGES) -> list[int]:
    """Blocks per stage: as even as possible over ``min(depth, stages)`` stages."""
    n = min(depth, stages)
    counts = [depth // n] * n
    for i in [j for j in _REMAINDER_ORDER if j < n][: depth % n]:
        counts[i] += 1
    return counts


def make_stages(
    block: BlockMaker, cin: int, widths: list[int], counts: list[int], strides: list[int],
    act: str, values: Mapping[str, Any],
) -> tuple[nn.Sequential, int]:
    """Stages of blocks; the stride applies to the first block of a stage only."""
    stages = []
    for width, count, stride in zip(widths, counts, strides, strict=True):
        blocks = []
        for i in range(count):
            blocks.append(block(cin, width, stride if i == 0 else 1, act, values))
            cin = int(getattr(blocks[-1], "out_channels"))  # noqa: B009 - set by _tagged
        stages.append(nn.Sequential(*blocks))
    return nn.Sequential(*stages), cin


def build_pattern(pattern: Pattern, values: Mapping[str, Any]) -> nn.Module:
    width, act = values["width"], values["act"]
    counts = split_depth(values["depth"])
    widths = [width * 2**s for s in range(len(counts))]
    strides = [1] + [2] * (len(counts) - 1)
    stem = conv_bn_act(3, width, 3, 2, act=act)
    body, cout = make_stages(pattern.block, width, widths, counts, strides, act, values)
    tail = [nn.BatchNorm2d(cout), make_act(act)] if pattern.final_norm else []
    return nn.Sequential(stem, body, *tail, classifier(cout, values["classes"]))


_SHARED = (
    Param("depth", int, 8, min=1, max=48, doc="blocks, spread over up to 4 stages"),
    Param("width", int, 32, min=4, max=256, doc="channels of the stem and first stage"),
)
_SMALL = {"res": 32, "depth": 4, "width": 8}


def _register(name: str, pattern: Pattern) -> None:
    def builder(values: Mapping[str, Any]) -> nn.Module:
        return build_pattern(pattern, values)

    builder.__doc__ = pattern.doc
    small = dict(_SMALL, **({"growth": 8} if name == "dense" else {}))
    register(name, common_params() + _SHARED + pattern.extra, small=small)(builder)


for _name, _pattern in PATTERNS.items():
    _register(_name, _pattern)
