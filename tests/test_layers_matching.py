"""Layer kinds, matching and the per-kind explanation, on hand-made tables with known answers."""

from __future__ import annotations

import pytest
from torch import nn

from harness.layers import explain
from harness.layers.kinds import anchor_kind, conv_kind, kind_of_module, normalize_op
from harness.layers.matching import match, resolve


@pytest.mark.parametrize("module, kind", [
    (nn.Conv2d(8, 8, 3, groups=8), "depthwise"),
    (nn.Conv2d(8, 16, 3, groups=8), "depthwise"),  # channel multiplier 2: still depthwise
    (nn.Conv2d(8, 16, 1), "pointwise"),
    (nn.Conv2d(8, 16, 3, groups=2), "grouped"),
    (nn.Conv2d(3, 16, 3), "conv"),
    (nn.Conv2d(8, 8, 1, groups=8), "depthwise"),
    (nn.BatchNorm2d(8), "batchnorm"), (nn.GELU(), "activation"), (nn.Hardswish(), "activation"),
    (nn.AdaptiveAvgPool2d(1), "pooling"), (nn.MaxPool2d(2), "pooling"),
    (nn.Linear(4, 4), "linear"), (nn.GroupNorm(2, 8), "other"), (nn.Identity(), "other"),
])
def test_kinds_come_from_type_and_shape(module, kind):
    assert kind_of_module(module) == kind


def test_kind_does_not_depend_on_names():
    class Pointwise(nn.Conv2d):  # a misleading class name keeps its shape's kind
        pass
    assert kind_of_module(Pointwise(4, 4, 3, padding=1)) == "conv"
    assert conv_kind((1, 1), 1, 4) == "pointwise"


def test_ops_are_spelled_alike_on_both_sides():
    assert normalize_op("__iadd__") == normalize_op("aten::add_") == "add"
    assert normalize_op("aten::_convolution") == "convolution"
    assert anchor_kind({"batchnorm", "activation", "depthwise"}) == "depthwise"


UNITS = [  # conv -> bn -> relu -> dw -> (+ input of the block) -> relu
    {"name": "0.0", "type": "Conv2d", "kind": "conv", "inputs": []},
    {"name": "0.1", "type": "BatchNorm2d", "kind": "batchnorm", "inputs": ["0.0"]},
    {"name": "0.2", "type": "ReLU", "kind": "activation", "inputs": ["0.1"]},
    {"name": "1", "type": "Conv2d", "kind": "depthwise", "inputs": ["0.2"]},
    {"name": "<model>::add", "type": "fn:add", "kind": "add", "inputs": ["1", "0.2"]},
    {"name": "drop", "type": "Dropout", "kind": "other", "inputs": ["<model>::add"]},
]
TORCH = [{"name": u["name"], "ms": ms, "type": u["type"], "original_names": [u["name"]],
          "inputs": u["inputs"]} for u, ms in zip(UNITS, [4.0, 1.0, 0.5, 3.0, 0.5, 0.1],
                                                   strict=True)]
# What OpenVINO 2026.4 does to this (seen on our conversion path): batch norm is folded into
# the convolution, whose primitive is renamed Multiply_3902 and no longer names module 0.0.
OV = [
    {"name": "input_abcd_acdb", "ms": 0.2, "type": "Reorder", "original_names": [],
     "inputs": []},
    {"name": "Multiply_3902", "ms": 1.0, "type": "Convolution", "inputs": ["input_abcd_acdb"],
     "original_names": ["Multiply_3902", "__module.0.1/aten::batch_norm/BatchNormInference",
                        "__module.0.2/aten::relu_/Relu"]},
    {"name": "__module.1/aten::_convolution/GroupConvolution", "ms": 0.8, "type": "Convolution",
     "inputs": ["Multiply_3902"],
     "original_names": ["__module.1/aten::_convolution/GroupConvolution", "aten::add/Add"]},
    {"name": "Subgraph_7", "ms": 0.3, "type": "Subgraph", "original_names": ["Subgraph_7"],
     "inputs": []},
]


def test_names_resolve_to_leaf_modules_and_functional_units():
    names = {u["name"] for u in UNITS}
    assert resolve("__module.0.1/aten::batch_norm/BatchNormInference", names) == "0.1"
    assert resolve("aten::add/Add", names) == "<model>::add"
    assert resolve("__module.0/aten::cat/Concat", names) == "0::cat"  # a phantom unit
    assert resolve("Multiply_3902", names) is None


def test_renamed_fused_convolution_is_recovered_by_data_flow():
    m = match(UNITS, OV)
    assert sorted(m.claims["Multiply_3902"]) == ["0.0", "0.1", "0.2"]
    assert ("0.0", "Multiply_3902", "its output feeds this primitive") in m.recovered
    assert m.host == {"input_abcd_acdb": "Multiply_3902"}  # the Reorder goes with its consumer
    assert m.unclaimed(UNITS) == ["drop"]  # a removed Dropout is not pulled into a group


def test_explanation_charges_fused_groups_and_keeps_the_unmatched():
    e = explain("toy", UNITS, {"torch": {"layers": TORCH, "whole_ms": 9.1},
                               "openvino:CPU": {"layers": OV, "whole_ms": 3.0}})
    kinds = {k["kind"]: k for k in e.kinds}
    assert kinds["conv"]["ms"] == {"torch": 4.0, "openvino:CPU": pytest.approx(1.2)}
    assert kinds["batchnorm"]["ms"]["openvino:CPU"] == 0.0
    assert kinds["batchnorm"]["saved_ms"] == 1.0  # folded away: all of PyTorch's time saved
    assert kinds["depthwise"]["ms"]["openvino:CPU"] == pytest.approx(0.8)
    assert kinds["add"]["saved_ms"] == 0.5
    assert kinds["other"]["ms"]["openvino:CPU"] == pytest.approx(0.3)
    assert sum(k["saved_share"] for k in e.kinds) == pytest.approx(1.0)
    assert sum(k["ms"]["torch"] for k in e.kinds) == pytest.approx(e.layer_ms["torch"]) == 9.1
    assert e.layer_ms["openvino:CPU"] == pytest.approx(2.3)  # every primitive charged once
    conv = next(f for f in e.fused if f["primitive"] == "Multiply_3902")
    assert conv["kind"] == "conv" and set(conv["kinds"]) == {"conv", "batchnorm", "activation"}
    assert conv["ms"] == {"openvino:CPU": pytest.approx(1.2), "torch": pytest.approx(5.5)}
    unmatched = {(u["what"], u["name"]): u for u in e.unmatched}
    assert unmatched["primitive", "Subgraph_7"]["ms"] == {"openvino:CPU": 0.3}
    assert unmatched["module", "drop"]["ms"]["torch"] == pytest.approx(0.1)
    assert e.coverage["torch"] == pytest.approx(1.0)
    assert len(e.warnings) == 1 and "openvino:CPU" in e.warnings[0]  # 2.3 / 3.0 = 77%
    data = e.as_json()
    assert {"spec", "backends", "coverage", "kinds", "fused", "unmatched"} <= set(data)
    assert set(data["kinds"][0]) >= {"kind", "ms", "share", "saved_ms"}


def test_a_module_openvino_computes_once_with_its_twin_is_named_as_such():
    units = [*UNITS[:3], {"name": "0.2b", "type": "ReLU", "kind": "activation",
                          "inputs": ["0.1"]}]
    torch_rows = [{"name": u["name"], "ms": 1.0, "original_names": [u["name"]]} for u in units]
    e = explain("twins", units, {"torch": {"layers": torch_rows, "whole_ms": 4.0},
                                 "openvino:CPU": {"layers": OV[:2], "whole_ms": 1.2}})
    (twin,) = [u for u in e.unmatched if u["what"] == "module"]
    assert twin["name"] == "0.2b" and twin["duplicate_of"] == "0.2"
    assert twin["ms"] == {"torch": 1.0, "openvino:CPU": 0.0}
