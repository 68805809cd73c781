"""Layer kinds, from a module's type and shape (never from its name).

The kinds are the ones a network designer reasons in: ``conv`` (a k×k convolution, k > 1,
groups = 1), ``depthwise`` (groups = in_channels), ``pointwise`` (1×1, groups = 1), ``grouped``
(1 < groups < in_channels), ``batchnorm``, ``activation``, ``pooling``, ``add``, ``concat``,
``linear`` and ``other``. Functional ops (``x + y``, ``torch.cat``, ``F.relu``) get their kind
from the op, which is their type.
"""

from __future__ import annotations

from typing import Any

# The convolutions among them (every kind ``conv_kind`` gives).
CONVOLUTION_KINDS = ("conv", "depthwise", "pointwise", "grouped")
KINDS = ("conv", "depthwise", "pointwise", "grouped", "batchnorm", "activation", "pooling",
         "add", "concat", "linear", "other")

# Which kind a fused group is charged to: the unit doing the heavy lifting absorbs the cheap ones
# (conv + batch norm + ReLU is a convolution whose batch norm and ReLU cost nothing).
_ANCHOR_ORDER = ("depthwise", "grouped", "conv", "pointwise", "linear", "pooling", "batchnorm",
                 "concat", "add", "activation", "other")

_ACT_OPS = {"relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid",
            "hardtanh", "leaky_relu", "elu", "selu", "mish", "softmax", "prelu", "clamp", "swish"}
_POOL_OPS = {"avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d",
             "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
             "adaptive_max_pool2d", "mean", "max_pool2d_with_indices"}
_OP_KINDS = {"add": "add", "sub": "add", "cat": "concat", "concat": "concat", "stack": "concat",
             "linear": "linear", "matmul": "linear", "addmm": "linear", "mm": "linear",
             "batch_norm": "batchnorm", **{op: "activation" for op in _ACT_OPS},
             **{op: "pooling" for op in _POOL_OPS}}

# Modules that compute nothing; OpenVINO removes them, so no primitive claims them.
VANISHING = {"Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
             "Flatten", "Unflatten"}


def conv_kind(kernel: tuple[int, ...], groups: int, in_channels: int) -> str:
    """The kind of a convolution from its shape: groups first, then the kernel size."""
    if groups > 1 and groups == in_channels:
        return "depthwise"
    if groups > 1:
        return "grouped"
    return "pointwise" if all(k == 1 for k in kernel) else "conv"


def kind_of_module(module: Any) -> str:
    """The kind of a leaf ``nn.Module`` (isinstance, so subclasses keep their parent's kind)."""
    from torch import nn

    if isinstance(module, nn.modules.conv._ConvNd):
        return conv_kind(tuple(module.kernel_size), module.groups, module.in_channels)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "batchnorm"
    if isinstance(module, nn.Linear):
        return "linear"
    pools = (nn.modules.pooling._AvgPoolNd, nn.modules.pooling._MaxPoolNd,
             nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
    if isinstance(module, pools):
        return "pooling"
    acts = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish,
            nn.Hardsigmoid, nn.Hardtanh, nn.LeakyReLU, nn.ELU, nn.SELU, nn.Mish, nn.PReLU,
            nn.Softmax)
    if isinstance(module, acts):
        return "activation"
    return "other"


def normalize_op(name: str) -> str:
    """One spelling for an op on both sides: ``__iadd__``/``add_``/``aten::add`` -> ``add``,
    ``aten::_convolution`` -> ``convolution``."""
    name = name.rpartition("::")[2].strip("_")
    if name[:1] in ("i", "r") and name[1:] in ("add", "sub", "mul", "truediv", "matmul"):
        name = name[1:]
    return {"truediv": "div"}.get(name, name)


def kind_of_op(op: str) -> str:
    return _OP_KINDS.get(normalize_op(op), "other")


def anchor_kind(kinds: list[str] | set[str]) -> str:
    """The kind a group of units is charged to (see ``_ANCHOR_ORDER``)."""
    for kind in _ANCHOR_ORDER:
        if kind in kinds:
            return kind
    return "other"
