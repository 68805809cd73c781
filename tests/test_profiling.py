"""archs.profiling: FLOPs as torch counts them, per-layer bytes computed by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archs
from archs.profiling import LayerProfile, Profile, _trace, format_table, profile_module
from tests.conftest import FAMILY_NAMES, small_spec


class Hand(nn.Module):
    """Conv 3->4 (3x3, pad 1, bias) on 1x3x8x8, in-place ReLU, Flatten, Linear 256->10."""

    def __init__(self, inplace: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=inplace)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.relu(self.conv(x))))


def hand_profile(inplace: bool = True) -> Profile:
    torch.manual_seed(0)
    return profile_module(Hand(inplace), torch.randn(1, 3, 8, 8), "hand")


def test_hand_computed_totals():
    p = hand_profile()
    conv_macs = (4 * 8 * 8) * (3 * 3 * 3)  # outputs x (cin * k * k); bias adds are not FLOPs
    fc_macs = 256 * 10
    assert p.flops == 2 * (conv_macs + fc_macs) == 18944
    assert p.macs == conv_macs + fc_macs
    assert p.params == (4 * 27 + 4) + (256 * 10 + 10) == 2682
    assert p.weight_bytes == 4 * 2682
    # conv out 1024 B + relu out 1024 B + fc out 40 B; Flatten is a view and moves nothing
    assert p.activation_bytes == 1024 + 1024 + 40
    assert p.peak_working_set_bytes == 1024 + 40 + 4 * 2570  # the Linear layer
    assert p.input_shape == (1, 3, 8, 8)
    assert p.input_bytes == 3 * 64 * 4
    assert p.unattributed_flops == 0


def test_hand_computed_layers():
    layers = {layer.name: layer for layer in hand_profile().layers}
    assert list(layers) == ["conv", "relu", "flat", "fc"]
    conv, relu, flat, fc = layers.values()
    assert conv == LayerProfile("conv", "Conv2d", (1, 4, 8, 8), 13824, 112, 448, 768, 1024, 768 + 1024 + 448)
    assert relu.inplace and not relu.alias
    assert (relu.flops, relu.input_bytes, relu.output_bytes, relu.working_set_bytes) == (0, 1024, 1024, 2048)
    assert flat.alias and not flat.inplace
    assert (flat.output_shape, flat.output_bytes, flat.working_set_bytes) == ((1, 256), 1024, 0)
    assert (fc.flops, fc.params, fc.weight_bytes) == (5120, 2570, 10280)
    assert fc.working_set_bytes == 1024 + 40 + 10280


def test_inplace_does_not_change_the_accounting():
    a, b = hand_profile(inplace=True), hand_profile(inplace=False)
    assert a.layers[1].inplace and not b.layers[1].inplace
    strip = [(la.name, la.flops, la.input_bytes, la.output_bytes, la.working_set_bytes, la.alias) for la in a.layers]
    assert strip == [(lb.name, lb.flops, lb.input_bytes, lb.output_bytes, lb.working_set_bytes, lb.alias) for lb in b.layers]
    assert (a.activation_bytes, a.peak_working_set_bytes) == (b.activation_bytes, b.peak_working_set_bytes)


def test_flops_match_flop_counter_mode_on_a_real_pass():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(inplace=True),
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(0.2), nn.Linear(8, 5),
    ).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    p = profile_module(model, x, "seq")
    assert p.flops == counter.get_total_flops() > 0
    assert p.flops == 2 * p.macs
    assert sum(layer.flops for layer in p.layers) == p.flops
    # BatchNorm's floating buffers count as weights, its integer step counter does not.
    assert p.layers[1].weight_bytes == 4 * 8 * 4


def test_meta_and_real_passes_agree():
    model = Hand().eval()
    x = torch.randn(1, 3, 8, 8)
    assert _trace(model, (x,), meta=True) == _trace(model, (x,), meta=False)


class Reused(nn.Module):
    """One Linear called twice, and a matmul in the parent's own forward."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4, bias=False)
        self.w = nn.Parameter(torch.randn(4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.fc(x)) @ self.w


def test_reused_module_and_unattributed_flops():
    p = profile_module(Reused(), torch.randn(2, 4), "reused")
    assert [layer.name for layer in p.layers] == ["fc", "fc#2"]
    assert [layer.flops for layer in p.layers] == [2 * 2 * 4 * 4] * 2
    assert p.unattributed_flops == 2 * 2 * 4 * 3
    assert p.flops == 2 * 64 + 48
    assert p.params == 16 + 12  # the shared Linear once


class DataDependent(nn.Module):
    """Branches on a value, so it cannot run on meta tensors: the real pass must take over."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) if float(x.sum()) > 1e9 else self.b(x)


def test_data_dependent_module_falls_back_to_a_real_pass():
    p = profile_module(DataDependent(), torch.ones(1, 4), "dd")
    assert [layer.name for layer in p.layers] == ["b"]
    assert p.flops == 2 * 4 * 8


def test_module_and_input_are_left_untouched():
    model = Hand().train()
    model.fc.eval()
    x = torch.randn(1, 3, 8, 8)
    before_x, before_w = x.clone(), model.conv.weight.detach().clone()
    profile_module(model, x, "hand")
    assert model.training and model.conv.training and not model.fc.training
    assert torch.equal(x, before_x) and torch.equal(model.conv.weight, before_w)
    assert model.conv.weight.device.type == "cpu"
    assert not model.conv._forward_hooks and not model.conv._forward_pre_hooks


def test_as_json_shape():
    data = hand_profile().as_json()
    for key in ("spec", "flops", "macs", "params", "weight_bytes", "activation_bytes",
                "peak_working_set_bytes", "layers"):
        assert key in data
    assert data["spec"] == "hand"
    layer = data["layers"][0]
    assert set(layer) >= {"name", "type", "output_shape", "flops", "params", "weight_bytes",
                          "input_bytes", "output_bytes", "working_set_bytes"}
    assert layer["output_shape"] == [1, 4, 8, 8]
    import json

    assert json.loads(json.dumps(data)) == data


def test_format_table():
    p = hand_profile()
    text = format_table(p)
    for name in ("conv", "relu", "flat", "fc", "Flatten (alias)", "18.94k", "1x4x8x8"):
        assert name in text
    short = format_table(p, limit=2)
    assert "... 2 more layers" in short and " fc " not in short


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_family_matches_flop_counter_mode(name):
    spec = small_spec(name)
    model, x = archs.build(spec)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    p = profile_module(model, x, spec)
    assert p.flops == counter.get_total_flops() == 2 * p.macs
    assert p.params == sum(t.numel() for t in model.parameters())
    assert p.peak_working_set_bytes == max(layer.working_set_bytes for layer in p.layers) > 0


@pytest.mark.skipif(not FAMILY_NAMES, reason="no family registered")
def test_profile_by_spec_is_canonical_and_seeded():
    fam = archs.family(FAMILY_NAMES[0])
    spec = small_spec(fam.name)
    messy = fam.name.upper() + ":" + ",".join(f"{k}={v}" for k, v in reversed(fam.small))
    p = archs.profile(messy)
    assert p.spec == spec
    assert p == profile_module(*archs.build(spec), spec)


@pytest.mark.slow
@pytest.mark.skipif("mobilenetv2" not in FAMILY_NAMES, reason="mobilenetv2 family not registered")
def test_mobilenetv2_default():
    p = archs.profile("mobilenetv2")
    model, x = archs.build("mobilenetv2")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    assert p.flops == counter.get_total_flops() == 2 * p.macs
    assert 250e6 < p.macs < 350e6  # the paper's MobileNetV2 1.0 at 224: ~300M multiply-adds


class Tied(nn.Module):
    """Two Linears sharing one weight: counted once, and still profiled on meta tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)
        self.b.weight = self.a.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def test_tied_weights():
    model, x = Tied(), torch.randn(1, 4)
    layers, flops = _trace(model, (x,), meta=True)  # raises if the meta pass cannot run
    assert flops == 2 * 2 * 16
    p = profile_module(model, x, "tied")
    assert p.params == 16 + 4 + 4
    assert [layer.params for layer in p.layers] == [20, 20]
