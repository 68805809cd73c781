"""The reference networks have their published sizes, and ``overlap``'s matching does its job.

Published figures are the check that a table-driven family really is the network it is named
after: a wrong row, stride or rounding rule moves the parameter count or the multiply-adds.
Multiply-adds are counted the way ``archs.profile`` reports them: torch's flop counter / 2.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import archs
from archs.overlap import matched_width, size_of


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _sizes(spec: str) -> tuple[int, int]:
    """(parameters, multiply-adds) of ``spec`` as built."""
    model, x = archs.build(spec)
    params = _params(model)
    # on the meta device the counter sees every shape and does no arithmetic
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.to("meta")(x.to("meta"))
    return params, counter.get_total_flops() // 2


@pytest.mark.parametrize(
    ("spec", "params", "macs", "macs_tol"),
    [
        # torchvision's exact parameter counts; MACs as published (paper / torchvision docs)
        ("mobilenetv2", 3_504_872, 300e6, 0.02),
        ("resnet:depth=50", 25_557_032, 4.1e9, 0.03),
        ("resnet:depth=18", 11_689_512, 1.8e9, 0.03),
    ],
)
def test_reference_networks_have_published_sizes(spec, params, macs, macs_tol):
    got_params, got_macs = _sizes(spec)
    assert got_params == params
    assert got_macs == pytest.approx(macs, rel=macs_tol)


def test_mobilenetv2_wide_variant_has_published_macs():
    # Sandler et al. 2018, Table 4: MobileNetV2 (1.4) 585M multiply-adds at 224. A multiplier
    # above 1 also widens the last conv (1280 -> 1792); rounding it like the others, or not
    # at all, moves the count by more than the tolerance.
    _, macs = _sizes("mobilenetv2:width=1.4")
    assert macs == pytest.approx(585e6, rel=0.02)


WIDTH = 96


def _reference_size(base: str, stride: int, metric: str) -> int:
    """Size of the non-overlapping reference (kernel = stride) of ``base``."""
    if stride == 1:  # a 1x1 conv, below the spec's kernel range: use the formula checked below
        return size_of(archs.resolve(f"{base},kernel=2"), 1, WIDTH, metric)
    params, macs = _sizes(f"{base},kernel={stride}")
    return params if metric == "params" else macs


@pytest.mark.parametrize(("kernel", "stride"), [(3, 2), (5, 2), (3, 1), (5, 3)])
@pytest.mark.parametrize("metric", ["params", "flops"])
def test_overlap_match_equalises_size_with_non_overlapping_reference(kernel, stride, metric):
    base = f"overlap:res=32,depth=3,width={WIDTH},classes=10,stride={stride}"
    spec, pick = f"{base},kernel={kernel},match={metric}", 0 if metric == "params" else 1
    ref = _reference_size(base, stride, metric)
    matched = _sizes(spec)[pick]
    unmatched = _sizes(f"{base},kernel={kernel}")[pick]
    w = matched_width(archs.resolve(spec)) - 1  # the documented bound, at the lower neighbour
    assert abs(matched - ref) / ref <= (1 + 1 / (2 * w)) / w
    assert matched == pytest.approx(ref, rel=0.05)
    assert unmatched > 1.3 * ref  # so the match above had something to do


@pytest.mark.parametrize(
    "spec",
    ["overlap", "overlap:kernel=5,stride=3,match=params", "overlap:res=33,kernel=4,stride=1,depth=2"],
)
def test_overlap_size_formula_counts_what_is_built(spec):
    values = archs.resolve(spec)
    params, macs = _sizes(spec)
    width = matched_width(values)
    assert size_of(values, values["kernel"], width, "params") == params
    assert size_of(values, values["kernel"], width, "flops") == macs


def test_overlapping_kernels_cost_more_than_non_overlapping_at_equal_width():
    overlapping = _sizes("overlap:kernel=4,stride=2")
    disjoint = _sizes("overlap:kernel=2,stride=2")
    assert overlapping[1] > 3 * disjoint[1]  # (4/2)^2 = 4x the conv MACs, same map sizes
    assert overlapping[0] > disjoint[0]


@pytest.mark.parametrize("res", [16, 17, 31])
@pytest.mark.parametrize(("kernel", "stride"), [(2, 2), (7, 1), (7, 3), (4, 3)])
def test_overlap_same_padding_gives_ceil_sizes(res, kernel, stride):
    model, x = archs.build(f"overlap:res={res},kernel={kernel},stride={stride},depth=3,width=4")
    size = res
    for layer in list(model)[:-1]:
        x = layer(x)
        size = -(-size // stride)
        assert tuple(x.shape[-2:]) == (size, size)


def test_overlap_refuses_stride_above_kernel():
    with pytest.raises(archs.SpecError, match="stride <= kernel"):
        archs.resolve("overlap:kernel=2,stride=3")
