"""The DARTS candidate operations, as in quark0/darts ``cnn/operations.py``.

``OPS[name](C, stride, act, odd)`` builds one edge of a cell. The structure is the original's, op for
op, because the point of benchmarking a DARTS network is the graph it really is: many thin
depthwise/pointwise convolutions, pools, identities and concatenations. Two deliberate changes:
the activation is a parameter (the original hard-codes ReLU), and ``FactorizedReduce`` also
accepts odd spatial sizes (the original only ever sees even ones at 32 and 224 pixels).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .layers import make_act


def act_fn(name: str) -> nn.Module:
    """An activation that never writes into its input.

    Cell states feed several ops and the final concatenation, so an in-place activation at the
    head of one op would silently change what the others see (the DARTS code uses
    ``ReLU(inplace=False)`` in every op for this reason).
    """
    return make_act(name, inplace=False)


class ActConvBN(nn.Sequential):
    """The original ``ReLUConvBN``: act -> conv -> BN (cell preprocessing and ``conv_3x3``)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int, act: str):
        super().__init__(
            act_fn(act),
            nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(cout),
        )


class DilConv(nn.Sequential):
    """act -> dilated depthwise conv -> pointwise conv -> BN."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int,
                 dilation: int, act: str):
        super().__init__(
            act_fn(act),
            nn.Conv2d(cin, cin, kernel, stride=stride, padding=padding, dilation=dilation,
                      groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable blocks (the first one strided), as in DARTS/NASNet."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int, act: str):
        super().__init__(
            act_fn(act),
            nn.Conv2d(cin, cin, kernel, stride=stride, padding=padding, groups=cin, bias=False),
            nn.Conv2d(cin, cin, 1, bias=False),
            nn.BatchNorm2d(cin),
            act_fn(act),
            nn.Conv2d(cin, cin, kernel, stride=1, padding=padding, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )


class Zero(nn.Module):
    """The ``none`` op: contributes nothing, but keeps the edge's output shape."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two 1x1 stride-2 convs, the second shifted by one pixel, so
    together they see every input position; their outputs are concatenated.

    For an odd input size the shifted branch would come out one pixel smaller than the other,
    so with ``odd=True`` it is zero-padded at the bottom/right first. The builder knows every
    size in advance, so this is a construction-time choice: a branch on the input's shape in
    ``forward`` would make ``torch.jit.trace`` (OpenVINO's converter) warn, and even sizes keep
    the original graph exactly.
    """

    def __init__(self, cin: int, cout: int, act: str, odd: bool = False):
        super().__init__()
        if cout % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count, got {cout}")
        self.odd = odd
        self.act = act_fn(act)
        self.conv_1 = nn.Conv2d(cin, cout // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(cin, cout // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(x)
        shifted = x[:, :, 1:, 1:]
        if self.odd:
            shifted = F.pad(shifted, (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def _conv_7x1_1x7(c: int, stride: int, act: str, odd: bool) -> nn.Module:
    return nn.Sequential(
        act_fn(act),
        nn.Conv2d(c, c, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
        nn.Conv2d(c, c, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
        nn.BatchNorm2d(c),
    )


def _skip(c: int, stride: int, act: str, odd: bool) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(c, c, act, odd)


OpBuilder = Callable[[int, int, str, bool], nn.Module]

# ``OPS[name](C, stride, act, odd)``: every edge keeps its channel count C; in a reduction cell
# the edges from the cell's inputs get stride 2; ``odd`` says the input's size is odd (only
# FactorizedReduce needs to know). sep_conv_7x7 is not a DARTS search primitive but NASNet/AmoebaNet cells use it.
OPS: dict[str, OpBuilder] = {
    "none": lambda c, stride, act, odd: Zero(stride),
    "avg_pool_3x3": lambda c, stride, act, odd: nn.AvgPool2d(
        3, stride=stride, padding=1, count_include_pad=False
    ),
    "max_pool_3x3": lambda c, stride, act, odd: nn.MaxPool2d(3, stride=stride, padding=1),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda c, stride, act, odd: SepConv(c, c, 3, stride, 1, act),
    "sep_conv_5x5": lambda c, stride, act, odd: SepConv(c, c, 5, stride, 2, act),
    "sep_conv_7x7": lambda c, stride, act, odd: SepConv(c, c, 7, stride, 3, act),
    "dil_conv_3x3": lambda c, stride, act, odd: DilConv(c, c, 3, stride, 2, 2, act),
    "dil_conv_5x5": lambda c, stride, act, odd: DilConv(c, c, 5, stride, 4, 2, act),
    "conv_7x1_1x7": _conv_7x1_1x7,
}
