"""The ``darts`` family: networks stacked from DARTS cells (Liu, Simonyan, Yang, ICLR 2019).

The network is the evaluation network of quark0/darts ``cnn/model.py`` (``NetworkImageNet`` and
``NetworkCIFAR``) at inference: the auxiliary head and drop-path only act while training, so they
are left out (the published parameter counts leave the auxiliary head out too). The cells come
from a genotype looked up by name (``archs.darts_genotypes``), so any search result in the
DARTS format can be benchmarked.

Published figures (DARTS_V2): ImageNet setting 4.7M parameters (4,718,752 here) and 574M
multiply-adds at 224 pixels; CIFAR setting 3.3M (3,349,342 here). torch's flop counter finds
530M multiply-adds (convolutions and the classifier); the paper never said how it counted, and
others counting this way got 523M-545M (quark0/darts issue #46).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .darts_genotypes import (
    DARTS_V1,
    DARTS_V2,
    Genotype,
    as_data,
    genotype_from_data,
    genotype_names,
    get_genotype,
    register_genotype,
)
from .darts_ops import OPS, ActConvBN, FactorizedReduce, act_fn
from .layers import classifier, conv_bn_act
from .registry import common_params, register
from .spec import Param, SpecError

__all__ = [
    "DARTS_V1", "DARTS_V2", "OPS", "Cell", "DartsNetwork", "Genotype", "as_data",
    "genotype_from_data", "genotype_names", "get_genotype", "register_genotype",
]

# What each setting means when cells/channels/res/classes are left out: the published networks.
SETTINGS: dict[str, dict[str, int]] = {
    "imagenet": {"cells": 14, "channels": 48, "res": 224, "classes": 1000},
    "cifar": {"cells": 20, "channels": 36, "res": 32, "classes": 10},
}


def _derived(key: str) -> str:
    return ", ".join(f"{name} {values[key]}" for name, values in SETTINGS.items())


def _half(size: int) -> int:
    """Output size of every stride-2 layer here (3x3/pad 1, 5x5/pad 2, FactorizedReduce)."""
    return (size + 1) // 2


class Cell(nn.Module):
    """One DARTS cell: preprocess both inputs to ``c`` channels, then each node sums two ops on
    earlier states; the output concatenates the genotype's chosen states.

    In a reduction cell the ops reading the cell's inputs have stride 2. When the previous cell
    reduced, input 0 (from two cells back) is still at the higher resolution and is brought down
    by ``FactorizedReduce``. ``sizes`` are the two inputs' spatial sizes, which tell the
    ``FactorizedReduce`` layers whether they see an odd size.
    """

    def __init__(self, genotype: Genotype, c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool, act: str, sizes: tuple[int, int]):
        super().__init__()
        self.reduction = reduction
        odd0, odd1 = (size % 2 == 1 for size in sizes)
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_prev_prev, c, act, odd0)
        else:
            self.preprocess0 = ActConvBN(c_prev_prev, c, 1, 1, 0, act)
        self.preprocess1 = ActConvBN(c_prev, c, 1, 1, 0, act)
        pairs = genotype.reduce if reduction else genotype.normal
        self.concat = tuple(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.indices = tuple(index for _, index in pairs)
        self.ops = nn.ModuleList(
            OPS[name](c, 2 if reduction and index < 2 else 1, act, odd1) for name, index in pairs
        )
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(len(self.ops) // 2):
            a, b = 2 * node, 2 * node + 1
            states.append(self.ops[a](states[self.indices[a]]) + self.ops[b](states[self.indices[b]]))
        return torch.cat([states[i] for i in self.concat], dim=1)


class DartsNetwork(nn.Module):
    """Stem, ``cells`` cells with reductions at ``cells//3`` and ``2*cells//3``, classifier.

    ``setting='imagenet'`` uses NetworkImageNet's stems (three stride-2 convs, 1/8 resolution);
    ``'cifar'`` uses NetworkCIFAR's single conv at full resolution with 3x the channels. The
    original ImageNet head is AvgPool2d(7), which only fits 224 pixels; an adaptive pool gives
    the same result there and lets other resolutions work.
    """

    def __init__(self, genotype: Genotype, setting: str, cells: int, channels: int,
                 res: int, classes: int, act: str):
        super().__init__()
        c = channels
        self.setting = setting
        if setting == "imagenet":
            self.stem0 = nn.Sequential(
                conv_bn_act(3, c // 2, 3, 2, act=act), conv_bn_act(c // 2, c, 3, 2, act=None)
            )
            self.stem1 = nn.Sequential(act_fn(act), conv_bn_act(c, c, 3, 2, act=None))
            c_prev_prev, c_prev, reduction_prev = c, c, True
            sizes = (_half(_half(res)), _half(_half(_half(res))))
        elif setting == "cifar":
            self.stem = conv_bn_act(3, 3 * c, 3, 1, act=None)
            c_prev_prev, c_prev, reduction_prev = 3 * c, 3 * c, False
            sizes = (res, res)
        else:
            raise SpecError(f"setting={setting!r}: valid values are {', '.join(SETTINGS)}")
        self.cells = nn.ModuleList()
        c_curr = c
        for i in range(cells):
            reduction = i in (cells // 3, 2 * cells // 3)
            if reduction:
                c_curr *= 2
            cell = Cell(genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev, act,
                        sizes)
            self.cells.append(cell)
            reduction_prev = reduction
            sizes = (sizes[1], _half(sizes[1]) if reduction else sizes[1])
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
        self.head = classifier(c_prev, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.setting == "imagenet":
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        else:
            s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.head(s1)


def _resolve(values: dict[str, Any]) -> dict[str, Any]:
    """Fill cells/channels/res/classes from ``setting`` and check what the params can't."""
    get_genotype(values["genotype"])  # raises, naming the valid genotypes
    for key, default in SETTINGS[values["setting"]].items():
        if values[key] is None:
            values[key] = default
    if values["channels"] % 2:
        raise SpecError(
            f"channels={values['channels']}: must be even (FactorizedReduce splits the "
            "channels between two convolutions); valid: an even integer 8..64"
        )
    return values


def _params() -> tuple[Param, ...]:
    common = {p.name: p for p in common_params(res=None, classes=None)}
    return (
        Param("genotype", str, "DARTS_V2",
              doc="cell genotype by name: DARTS_V1, DARTS_V2 (the paper's network) or one "
                  "given to archs.darts.register_genotype"),
        Param("setting", str, "imagenet", choices=tuple(SETTINGS),
              doc="which published network: imagenet (NetworkImageNet stems, 1/8-resolution "
                  "cells) or cifar (NetworkCIFAR stem, full-resolution cells)"),
        Param("cells", int, None, min=3, max=30,
              doc=f"number of cells; default from setting ({_derived('cells')}); at least 3 "
                  "so both reduction cells (at cells//3 and 2*cells//3) and a normal cell exist"),
        Param("channels", int, None, min=8, max=64,
              doc=f"initial cell channels C, doubled at each reduction; even; default from "
                  f"setting ({_derived('channels')})"),
        common["batch"],
        dataclasses.replace(
            common["res"], doc=f"input height and width in pixels; default from setting "
                               f"({_derived('res')})"),
        dataclasses.replace(
            common["classes"], doc=f"classifier outputs; default from setting "
                                   f"({_derived('classes')})"),
        dataclasses.replace(common["act"], doc="activation replacing every ReLU of the network"),
    )


@register(
    "darts",
    _params(),
    resolve=_resolve,
    small={"setting": "cifar", "cells": 5, "channels": 8, "res": 32},
)
def build_darts(values: Mapping[str, Any]) -> nn.Module:
    """DARTS cell networks (NetworkImageNet / NetworkCIFAR) from a named genotype.

    Thin separable and dilated convolutions, pools and identities wired by a searched cell
    graph: the architecture that gained most from OpenVINO in Abbasi et al. (2021).
    """
    return DartsNetwork(
        get_genotype(values["genotype"]), values["setting"], values["cells"],
        values["channels"], values["res"], values["classes"], values["act"],
    )

