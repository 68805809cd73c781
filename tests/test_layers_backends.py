"""Per-layer timing on the real backends: hand-built models whose answer is known, every
registered family at its small size, and ``accelbench explain --json`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import archs
from harness.backends import get_backend
from harness.backends.base import PrepareContext
from harness.layers import explain
from harness.layers.units import trace_units
from tests.conftest import FAMILY_NAMES, run_cli, small_spec


def _explain(model: nn.Module, x: torch.Tensor, passes: int = 2):
    model = model.eval()
    units = trace_units(model, x, 1)["units"]
    tables = {}
    for name in ("torch", "openvino:CPU"):
        prepared = get_backend(name).prepare(model, x, PrepareContext("f32", 1))
        tables[name] = {"layers": prepared.layer_times(passes),
                        "whole_ms": sorted(prepared.time_block(3))[1]}
    return units, explain("test", units, tables)


def _randomize_bn(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return model


def _ov_claims(e) -> set[str]:
    return {u for f in e.fused if f["backend"] == "openvino:CPU" for u in f["units"]}


def test_conv_bn_relu_is_one_fused_primitive_charged_to_the_convolution():
    torch.manual_seed(0)
    model = _randomize_bn(nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(16), nn.ReLU(inplace=True)))
    _, e = _explain(model, torch.randn(1, 3, 24, 24))
    group = [f for f in e.fused if set(f["units"]) >= {"1", "2", "3"}]
    assert len(group) == 1, e.fused
    assert group[0]["kind"] == "conv" and group[0]["ms"]["torch"] > 0
    kinds = {k["kind"]: k for k in e.kinds}
    assert kinds["batchnorm"]["ms"]["openvino:CPU"] == 0.0 < kinds["batchnorm"]["ms"]["torch"]
    assert not [u for u in e.unmatched if u["what"] == "module"]


def test_depthwise_block_has_depthwise_time_on_both_sides():
    torch.manual_seed(0)
    model = _randomize_bn(nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16)))
    units, e = _explain(model, torch.randn(1, 8, 32, 32))
    assert {u["name"]: u["kind"] for u in units}["0"] == "depthwise"
    kinds = {k["kind"]: k for k in e.kinds}
    assert kinds["depthwise"]["ms"]["torch"] > 0 and kinds["depthwise"]["ms"]["openvino:CPU"] > 0
    assert kinds["pointwise"]["ms"]["openvino:CPU"] > 0
    assert {"0", "1", "2", "3", "4"} <= _ov_claims(e) | {k for f in e.fused for k in f["units"]}


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x) + x)


def test_residual_add_is_a_unit_of_its_own_and_matched():
    units, e = _explain(nn.Sequential(Residual(), Residual()), torch.randn(1, 8, 16, 16))
    adds = [u for u in units if u["kind"] == "add"]
    assert [u["name"] for u in adds] == ["0::add", "1::add"]
    assert set(adds[0]["inputs"]) == {"0.conv"}  # the block's input came from outside any unit
    kinds = {k["kind"]: k for k in e.kinds}
    assert kinds["add"]["ms"]["torch"] > 0
    claimed = {u for f in e.fused for u in f["units"]}
    assert "0::add" in claimed  # OpenVINO fused the first add into its convolution
    assert not [u for u in e.unmatched if u["name"].endswith("::add")], e.unmatched


def test_user_module_with_groupnorm_and_gelu(tmp_path: Path):
    path = tmp_path / "gn_net.py"
    path.write_text(
        "import torch\n"
        "from torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.stem = nn.Conv2d(3, 16, 3, padding=1)\n"
        "        self.norm = nn.GroupNorm(4, 16)\n"
        "        self.act = nn.GELU()\n"
        "        self.head = nn.Linear(16, 5)\n"
        "    def forward(self, x):\n"
        "        y = self.act(self.norm(self.stem(x)))\n"
        "        return self.head(y.mean((2, 3)))\n"
        "def make():\n"
        "    return Net(), torch.randn(1, 3, 16, 16)\n"
    )
    proc = run_cli("explain", "--model", f"{path}:make", "--threads", "1", "--passes", "2",
                   "--json", "--store", str(tmp_path / "s.sqlite"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    ov_modules = {u["name"] for u in data["unmatched"] if u["what"] == "module"}
    assert not ov_modules & {"stem", "norm", "act", "head"}, data["unmatched"]
    kinds = {k["kind"]: k for k in data["kinds"]}
    assert kinds["activation"]["ms"]["torch"] > 0  # GELU
    assert kinds["other"]["ms"]["torch"] > 0  # GroupNorm is no batch norm
    assert kinds["linear"]["ms"]["openvino:CPU"] > 0
    assert "batchnorm" not in kinds


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_matching_on_every_family(family):
    model, x = archs.build(small_spec(family))
    units, e = _explain(model, x, passes=1)
    by_name = {u["name"]: u for u in units}
    # Every unit that computes something has an OpenVINO primitive; names it lost are recovered.
    lost = [u for u in e.unmatched if u["what"] == "module" and not u["duplicate_of"]
            and by_name[u["name"]]["kind"] not in ("other",)]
    assert not lost, lost
    # Primitives named after a module are all matched; the unmatched ones are kept with a time.
    named = [u for u in e.unmatched if u["what"] == "primitive"
             and any("__module" in n for n in u["original_names"])]
    assert not named, named
    assert all(u["ms"] for u in e.unmatched)
    assert sum(k["ms"]["openvino:CPU"] for k in e.kinds) == pytest.approx(e.layer_ms["openvino:CPU"])


def test_explain_json_shape_and_bad_usage(tmp_path: Path):
    store = str(tmp_path / "s.sqlite")
    proc = run_cli("explain", "plain:depth=1,width=8,res=32", "--threads", "1", "--passes", "3",
                   "--json", "--store", store)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["spec"] == archs.format_spec(archs.parse("plain:depth=1,width=8,res=32"))
    assert data["backends"] == ["torch", "openvino:CPU"]
    assert set(data["coverage"]) == {"torch", "openvino:CPU"}
    assert all(c > 0 for c in data["coverage"].values())
    assert {k["kind"] for k in data["kinds"]} <= set(
        ("conv", "depthwise", "pointwise", "grouped", "batchnorm", "activation", "pooling",
         "add", "concat", "linear", "other"))
    for row in data["kinds"]:
        assert set(row) >= {"kind", "ms", "share", "saved_ms"}
        assert row["saved_ms"] == pytest.approx(row["ms"]["torch"] - row["ms"]["openvino:CPU"])
    assert isinstance(data["fused"], list) and isinstance(data["unmatched"], list)
    assert data["source"]["threads"] == 1
    bad = run_cli("explain", "--threads", "1")
    assert bad.returncode == 2 and "SPEC or --model" in bad.stderr
    bad = run_cli("explain", "nosuch:depth=1")
    assert bad.returncode == 2
