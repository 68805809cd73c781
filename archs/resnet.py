"""ResNet (He et al. 2016) as torchvision builds it: the reference points of the residual axis.

Written as a table of (block, blocks per stage) rows over the residual and bottleneck blocks of
``archs.patterns``, so ``resnet:depth=50`` and the ``bottleneck`` pattern family run the same
modules and a speed-up difference between them comes from the layout, not from the code.

torchvision's variant (v1.5: the stride sits on the 3x3 conv of a bottleneck, projection
shortcuts only where the shape changes) reproduces its parameter counts exactly: ResNet-18
11,689,512, ResNet-50 25,557,032 at ``classes=1000``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from .layers import classifier, conv_bn_act
from .patterns import PATTERNS, make_stages
from .registry import common_params, register
from .spec import Param

# depth -> (pattern whose block is used, blocks per stage)
RESNETS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("residual", (2, 2, 2, 2)),
    34: ("residual", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


@register(
    "resnet",
    common_params(res_min=32) + (
        Param("depth", int, 50, choices=tuple(RESNETS), doc="ResNet-18/34/50/101/152"),
        Param("width", int, 64, min=8, max=128, doc="channels of the first stage (64 in the paper)"),
    ),
    small={"res": 32, "depth": 18, "width": 16},
)
def build_resnet(values: Mapping[str, Any]) -> nn.Module:
    """ResNet-18/34/50/101/152 (torchvision v1.5), optionally with a different base width.

    Stem 7x7/2 conv and 3x3/2 max-pool, four stages at widths w, 2w, 4w, 8w (w = 64 in the
    paper), the first at stride 1 and the rest at stride 2; /32 overall, so ``res`` 32 is the
    smallest input whose last stage is still 1x1 rather than padding only.
    """
    pattern, counts = RESNETS[values["depth"]]
    width, act = values["width"], values["act"]
    stem = nn.Sequential(conv_bn_act(3, width, 7, 2, act=act), nn.MaxPool2d(3, 2, 1))
    widths = [width * 2**s for s in range(4)]
    body, cout = make_stages(PATTERNS[pattern].block, width, widths, list(counts), [1, 2, 2, 2], act, values)
    return nn.Sequential(stem, body, classifier(cout, values["classes"]))
