"""Turn a spec into an inference-ready module: seeded weights, realistic BatchNorm, eval mode.

Why calibrate BatchNorm: freshly built BN layers have running mean 0, variance 1 and affine
1/0, so at inference they are (almost) identities. A backend that folds or fuses BN wrongly
would then still match PyTorch. Giving BN random affine parameters and then running statistics
measured on a seeded batch makes every BN layer a real, non-trivial transform while keeping
activations well-scaled through deep stacks.
"""

from __future__ import annotations

import torch
from torch import nn

from .families import family, parse, resolve
from .registry import example_input, input_shape
from .spec import Spec

CALIBRATION_BATCH = 2  # >1 so train-mode BN has more than one value per channel at 1x1 maps


def build(spec: str | Spec, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """Build ``spec`` as an eval-mode module and its seeded example input."""
    spec = parse(spec)
    values = resolve(spec)
    shape = input_shape(values, family(spec.family))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = family(spec.family).builder(values)
        _randomize_batchnorm(model)
        _calibrate_batchnorm(model, (CALIBRATION_BATCH, *shape[1:]), seed)
    model.eval()
    return model, example_input(shape, seed)


def _bn_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def _randomize_batchnorm(model: nn.Module) -> None:
    for bn in _bn_layers(model):
        if bn.affine:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0.0, 0.1)


@torch.no_grad()
def _calibrate_batchnorm(model: nn.Module, shape: tuple[int, ...], seed: int) -> None:
    layers = _bn_layers(model)
    if not layers:
        return
    saved = [bn.momentum for bn in layers]
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: one batch gives exactly its statistics
    model.train()
    model(example_input(shape, seed + 1000))
    for bn, momentum in zip(layers, saved, strict=True):
        bn.momentum = momentum
    model.eval()
