"""Fully connected families: the same size spent on depth or on width, and very wide layers.

Why fully connected: the two questions here are about how a size is spent, and a stack of
Linear layers is where size is least ambiguous (a hidden unit is a neuron, every parameter is
a weight or a bias) and where nothing else (kernels, strides, pooling) moves with it.

- ``mlpdepth`` (An et al., "From Deep to Shallow"): ``depth`` hidden layers of one width, sized
  so that networks of different depth have the same total of hidden units (``match=units``)
  or the same number of parameters (``match=params``) as the one-hidden-layer network of
  ``units`` units. ``residual=true`` adds an identity shortcut around every hidden layer after
  the first (same layers, same parameters, one Add each): residual against plain with the
  same structure.
- ``wide`` (Kumar et al.'s sparse interpolation with very wide networks): ``layers`` hidden
  layers of ``units`` neurons, leaky ReLU by default, with a share ``sparsity`` of each hidden
  layer's neurons switched off structurally (their row of the layer's weight and their bias,
  and their column of the next layer's weight, are zero).

Both flatten the image (``batch x 3 x res x res``) into ``3*res*res`` inputs, so ``res`` sets
the input width; the classifier is the last Linear.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .layers import make_act
from .registry import common_params, register
from .spec import Param, SpecError

MATCH = ("units", "params")
# Largest relative parameter mismatch match=params accepts. The width is an integer, so the
# mismatch left is at most half a width step; below 2% for every preset point (the test checks
# them) and refused with the nearest figures where a tiny configuration cannot get that close.
PARAMS_TOL = 0.02


def n_inputs(values: Mapping[str, Any]) -> int:
    return 3 * values["res"] * values["res"]


def mlp_params(n_in: int, widths: list[int], classes: int) -> int:
    """Weights and biases of Linear layers ``n_in -> widths... -> classes``."""
    sizes = [n_in, *widths, classes]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))


def hidden_width(values: Mapping[str, Any]) -> int:
    """The width of each of ``depth`` hidden layers under ``match`` (see the module doc).

    ``match=units``: ``units / depth``, exactly (a ``units`` that ``depth`` does not divide is
    refused, naming the nearest that it does). ``match=params``: the integer width whose
    network comes closest to the one-hidden-layer network's parameters, within ``PARAMS_TOL``.
    """
    depth, units = values["depth"], values["units"]
    if values["match"] == "units":
        if units % depth:
            lo, hi = units // depth * depth, -(-units // depth) * depth
            raise SpecError(f"mlpdepth: units={units} is not a multiple of depth={depth}; "
                            f"match=units needs equal layers (nearest valid: {lo or hi}, {hi})")
        return units // depth
    n_in, classes = n_inputs(values), values["classes"]
    target = mlp_params(n_in, [units], classes)
    width = min(range(1, units + 1),
                key=lambda w: (abs(mlp_params(n_in, [w] * depth, classes) - target), w))
    got = mlp_params(n_in, [width] * depth, classes)
    if abs(got - target) > PARAMS_TOL * target:
        raise SpecError(f"mlpdepth: no width gives depth={depth} the parameters of one layer of "
                        f"{units} units within {PARAMS_TOL:.0%} (width {width}: {got} vs {target});"
                        " valid: more units, fewer layers or a larger res")
    return width


def _check_depth(values: dict[str, Any]) -> dict[str, Any]:
    hidden_width(values)  # refuses a size that cannot be matched, as a SpecError
    return values


def _dense_stack(n_in: int, widths: list[int], classes: int, act: str,
                 residual: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten(1)]
    cin = n_in
    for i, w in enumerate(widths):
        block = nn.Sequential(nn.Linear(cin, w), make_act(act))
        layers.append(_Shortcut(block) if residual and i > 0 and cin == w else block)
        cin = w
    layers.append(nn.Linear(cin, classes))
    return nn.Sequential(*layers)


class _Shortcut(nn.Module):
    """``x + body(x)``: the residual variant of a hidden layer (no parameters of its own)."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _verify(model: nn.Module, expected: int, what: str) -> None:
    """The built module has the parameters the formula promised (guards the formula)."""
    got = sum(p.numel() for p in model.parameters())
    if got != expected:
        raise RuntimeError(f"{what}: built {got} parameters, the size formula says {expected}")


@register(
    "mlpdepth",
    common_params(res=32, classes=10, res_min=4) + (
        Param("depth", int, 4, min=1, max=32, doc="hidden layers"),
        Param("units", int, 1024, min=8, max=8192,
              doc="size budget: hidden units of the one-layer reference network"),
        Param("match", str, "units", choices=MATCH,
              doc="spend the budget as equal hidden units (units/depth each) or equal params"),
        Param("residual", bool, False, doc="identity shortcut around hidden layers 2..depth"),
    ),
    resolve=_check_depth,
    small={"res": 16, "depth": 2, "units": 64},
)
def build_mlpdepth(values: Mapping[str, Any]) -> nn.Module:
    """Deep against shallow at equal size (An et al.): ``depth`` equal hidden layers holding
    the hidden units (match=units) or the parameters (match=params) of one layer of ``units``;
    residual=true adds identity shortcuts with the same layers.

    Equality is exact for match=units (``depth * width == units``) and within ``PARAMS_TOL``
    for match=params; the builder counts the module's parameters against the formula.
    """
    width, depth, n_in = hidden_width(values), values["depth"], n_inputs(values)
    if values["match"] == "units" and width * depth != values["units"]:
        raise RuntimeError(f"mlpdepth: {depth} x {width} hidden units != {values['units']}")
    model = _dense_stack(n_in, [width] * depth, values["classes"], values["act"],
                         values["residual"])
    _verify(model, mlp_params(n_in, [width] * depth, values["classes"]), "mlpdepth")
    setattr(model, "hidden_width", width)  # noqa: B010 - a plain int, not a parameter
    return model


def zeroed(units: int, sparsity: float) -> int:
    """Neurons switched off per hidden layer: ``round(sparsity * units)``, leaving at least one."""
    return min(round(sparsity * units), units - 1)


def wide_counts(values: Mapping[str, Any]) -> dict[str, int]:
    """Hand counts of a ``wide`` network: dense parameters and multiply-adds (what the profile
    reports; zeros are stored and multiplied like any weight), and the non-zero parameters and
    the multiply-adds a runtime that skipped the switched-off neurons would do."""
    n_in, units, layers, classes = n_inputs(values), values["units"], values["layers"], values["classes"]
    live = units - zeroed(units, values["sparsity"])
    dense = mlp_params(n_in, [units] * layers, classes)
    macs = n_in * units + (layers - 1) * units * units + units * classes
    nonzero = (n_in * live + live) + (layers - 1) * (live * live + live) + live * classes + classes
    live_macs = n_in * live + (layers - 1) * live * live + live * classes
    return {"params": dense, "macs": macs * values["batch"], "nonzero_params": nonzero,
            "live_macs": live_macs * values["batch"]}


@torch.no_grad()
def _switch_off(model: nn.Sequential, units: int, count: int) -> None:
    """Zero ``count`` seeded-random neurons of every hidden layer: the neuron's weight row and
    bias in its layer, its weight column in the next Linear."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for layer, after in zip(linears, linears[1:], strict=False):
        off = torch.randperm(units)[:count]
        layer.weight[off, :] = 0
        layer.bias[off] = 0
        after.weight[:, off] = 0


@register(
    "wide",
    common_params(res=32, classes=10, res_min=4, act="leakyrelu") + (
        Param("units", int, 4096, min=8, max=32768, doc="neurons of each hidden layer"),
        Param("layers", int, 1, min=1, max=3, doc="hidden layers (wide and shallow: 1 to 3)"),
        Param("sparsity", float, 0.0, min=0.0, max=0.95,
              doc="share of each hidden layer's neurons switched off (whole rows/columns zero)"),
    ),
    small={"res": 16, "units": 256},
)
def build_wide(values: Mapping[str, Any]) -> nn.Module:
    """Wide shallow network (Kumar et al.): 1 to 3 hidden layers of ``units`` neurons with
    leaky ReLU, a share ``sparsity`` of each layer's neurons zeroed as whole rows/columns.

    The zeros are structured (whole neurons), chosen at random under the build seed, and
    stored densely: the module's shapes do not change with ``sparsity``, so any speed-up a
    runtime finds comes from it noticing the zeros (OpenVINO's ``sparse_rate`` option).
    """
    units, layers = values["units"], values["layers"]
    model = _dense_stack(n_inputs(values), [units] * layers, values["classes"], values["act"])
    count = zeroed(units, values["sparsity"])
    _switch_off(model, units, count)
    counts = wide_counts(values)
    _verify(model, counts["params"], "wide")
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    if nonzero > counts["nonzero_params"]:  # random init is never exactly 0 elsewhere
        raise RuntimeError(f"wide: {nonzero} non-zero parameters, expected at most "
                           f"{counts['nonzero_params']}")
    setattr(model, "switched_off", count)  # noqa: B010 - a plain int, not a parameter
    return model
