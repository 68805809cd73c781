"""MobileNetV2 (Sandler et al. 2018), the study's lowest-latency network, built from its table.

The (t, c, n, s) rows are Table 2 of the paper; channels scale by ``width`` and are rounded with
``make_divisible`` exactly as torchvision does, so at width 1.0 the network has torchvision's
3,504,872 parameters and about 300M multiply-adds at 224x224. The blocks are the inverted
residuals of ``archs.patterns`` (the ``dwbottleneck`` family's), so the reference network and the
pattern family differ only in layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from .layers import classifier, conv_bn_act, make_divisible
from .patterns import inverted_residual
from .registry import common_params, register
from .spec import Param

STEM_CHANNELS = 32
LAST_CHANNELS = 1280
# (expansion t, output channels c, repeats n, stride of the first repeat s)
SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


@register(
    "mobilenetv2",
    common_params(act="relu6", res_min=32) + (
        Param("width", float, 1.0, min=0.25, max=2.0, doc="channel multiplier (0.35..1.4 published)"),
    ),
    # res 64, not 32: at 32 the last rows run on 1x1 maps, where BatchNorm calibrated on a
    # batch of 2 sees 2 values per channel and the float32 network is ill-conditioned (torch
    # f32 vs f64 differ by ~1e-3), so no backend could pass a 1e-4 parity check there.
    small={"res": 64, "width": 0.35},
)
def build_mobilenetv2(values: Mapping[str, Any]) -> nn.Module:
    """MobileNetV2 with a width multiplier, from the paper's (t, c, n, s) table.

    /32 overall (stem and four strided rows), so ``res`` 32 is the smallest input whose last
    row still sees a real 1x1 map. As in torchvision the last 1x1 conv (1280) only ever grows
    with the multiplier, never shrinks.
    """
    width, act = values["width"], values["act"]
    cin = make_divisible(STEM_CHANNELS * width)
    layers: list[nn.Module] = [conv_bn_act(3, cin, 3, 2, act=act)]
    for t, c, n, s in SETTINGS:
        cout = make_divisible(c * width)
        for i in range(n):
            layers.append(inverted_residual(cin, cout, s if i == 0 else 1, t, act))
            cin = cout
    last = make_divisible(LAST_CHANNELS * max(1.0, width))
    layers.append(conv_bn_act(cin, last, 1, act=act))
    return nn.Sequential(*layers, classifier(last, values["classes"]))
