"""Building blocks shared by the families: activations by name and conv-BN-act.

Kept deliberately small: a family's structure lives in its own table, not here.
"""

from __future__ import annotations

from torch import nn

from .factorised import conv

LEAKY_SLOPE = 0.01  # PyTorch's default; Kumar et al.'s wide networks use a small fixed slope

_ACTS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "hardswish": lambda: nn.Hardswish(inplace=True),
    "leakyrelu": lambda: nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
}


def make_act(name: str, *, inplace: bool = True) -> nn.Module:
    """A fresh activation module by name (names are checked by the spec parser).

    In place by default, as the families' layers follow a convolution whose output nothing
    else reads; ``inplace=False`` where the activation's input is read again, or is the
    network's own input (a model that writes into its input computes something new on every
    timed call: ``harness.backends.torch_backend`` flags it).
    """
    act = _ACTS[name]()
    if not inplace and hasattr(act, "inplace"):
        setattr(act, "inplace", False)  # noqa: B010 - nn.Module's __setattr__ types it as a Tensor
    return act


def conv_bn_act(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, *, groups: int = 1,
    act: str | None = "relu", padding: int | None = None, rank: int = 0,
) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm -> activation; ``act=None`` gives a linear projection.
    ``rank > 0`` factorises the conv where ``archs.factorised`` says it applies."""
    pad = (kernel - 1) // 2 if padding is None else padding
    layers: list[nn.Module] = [
        conv(cin, cout, kernel, stride, pad, groups=groups, rank=rank),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(make_act(act))
    return nn.Sequential(*layers)


def classifier(cin: int, classes: int) -> nn.Sequential:
    """Global average pool + flatten + linear: the head every image family ends with."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(cin, classes))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels as MobileNet/timm do: to a multiple of ``divisor``, never down by >10%."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new
