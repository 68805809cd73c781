"""One unit per call site of a functional op (issue 28): ``F.relu`` called four times is four
units, each matched to the OpenVINO primitive that ran that very call; and the names a user
reads in ``accelbench explain`` can be told apart."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from harness.layers.matching import duplicate_of, match
from harness.layers.naming import ROOT, Resolver, parse_unit, topological_order
from harness.layers.units import trace_units
from tests.conftest import run_cli

# A block that calls relu and add twice each, under a model whose own forward calls relu twice,
# the first-called one consumed second: OpenVINO numbers its ReLUs in its topological order
# (``l * r``: the left operand's first), not in call order.
NET = '''
import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        out = F.relu(self.a(x)) + x
        return torch.relu(self.b(out)) + out


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.left = nn.Conv2d(3, 8, 1)
        self.right = nn.Conv2d(3, 8, 3, padding=1)
        self.block = Block()

    def forward(self, x):
        r = F.relu(self.right(x))
        l = torch.relu(self.left(x))
        return self.block(l * r)


def make():
    torch.manual_seed(0)
    return Net().eval(), torch.randn(1, 3, 16, 16)
'''
SITES = {"block::relu", "block::relu#2", "block::add", "block::add#2", f"{ROOT}::relu",
         f"{ROOT}::relu#2", f"{ROOT}::mul"}


def test_explain_names_every_call_site_and_matches_each_to_its_own_primitive(tmp_path: Path):
    path = tmp_path / "sites_net.py"
    path.write_text(NET)
    proc = run_cli("explain", "--model", f"{path}:make", "--threads", "1", "--passes", "2",
                   "--json", "--store", str(tmp_path / "s.sqlite"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    torch_units = {u for us in data["claims"]["torch"].values() for u in us}
    assert SITES <= torch_units  # one unit per call, no bare "::relu"
    assert not [u for u in torch_units if u.startswith("::")]
    ov = data["claims"]["openvino:CPU"]
    owner: dict[str, list[str]] = {}
    for row, units in ov.items():
        for u in units:
            owner.setdefault(u, []).append(row)
    for site in SITES:  # each call site ran in exactly one primitive of its own
        assert len(owner.get(site, [])) == 1, (site, owner.get(site))
    assert not [u for u in data["unmatched"] if u["name"] in SITES], data["unmatched"]
    # ... and in the right one: each ReLU with the convolution that feeds it, each add alone.
    # Call order would pair the right convolution with OpenVINO's first ReLU, the left one's.
    for conv, relu, other in (("right", f"{ROOT}::relu", "left"),
                              ("left", f"{ROOT}::relu#2", "right"),
                              ("block.a", "block::relu", "block.b"),
                              ("block.b", "block::relu#2", "block.a")):
        assert set(owner[relu]) <= set(owner[conv]), (relu, owner[relu], owner[conv])
        assert not set(owner[relu]) & set(owner[other])
    assert owner["block::add"] != owner["block::add#2"]

    text = run_cli("explain", "--model", f"{path}:make", "--threads", "1", "--passes", "2",
                   "--store", str(tmp_path / "s.sqlite"))
    assert text.returncode == 0, text.stderr[-2000:]
    fused = [ln for ln in text.stdout.splitlines() if ln.startswith("fused on")]
    assert fused and len(set(fused)) == len(fused)
    shown = [p.split(" [")[0] for ln in fused for p in ln.split(" = ", 1)[1].split(" + ")]
    assert len(shown) == len(set(shown)), fused  # no name twice, across all the groups
    assert f"{ROOT}::relu#2 [activation]" in text.stdout


class Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x)) + x
        return F.relu(y) + y


def test_repeated_calls_are_numbered_in_call_order_and_the_same_on_every_pass():
    units = trace_units(nn.Sequential(Twice()).eval(), torch.randn(1, 4, 4, 4), passes=3)["units"]
    names = [u["name"] for u in units]
    assert names == ["0.conv", "0::relu", "0::add", "0::relu#2", "0::add#2"]
    assert all(u["calls"] == 1 for u in units)  # passes reuse the names, never add #3
    assert [u["inputs"] for u in units][3:] == [["0::add"], ["0::relu#2", "0::add"]]
    top = trace_units(Twice().eval(), torch.randn(1, 4, 4, 4))["units"]
    assert [u["name"] for u in top][1:3] == [f"{ROOT}::relu", f"{ROOT}::add"]


def test_topological_order_is_openvinos():
    # r = relu(right), l = relu(left), out = l * r: depth first from the output, inputs in order.
    units = [{"name": "right", "inputs": []}, {"name": "<model>::relu", "inputs": ["right"]},
             {"name": "left", "inputs": []}, {"name": "<model>::relu#2", "inputs": ["left"]},
             {"name": "<model>::mul", "inputs": ["<model>::relu#2", "<model>::relu"]},
             {"name": "dead", "inputs": ["left"]}]
    order = topological_order(units, ["<model>::mul"])
    assert sorted(order, key=order.get) == ["left", "<model>::relu#2", "right", "<model>::relu",
                                            "<model>::mul"]
    assert "dead" not in order  # nothing the output needs: the converted model drops it
    # Several outputs: OpenVINO's stack takes the last one first.
    two = topological_order(units[:4], ["<model>::relu", "<model>::relu#2"])
    assert two["<model>::relu#2"] < two["<model>::relu"]


def test_suffixes_go_to_call_sites_in_that_order():
    units = [{"name": "b::add", "order": 3}, {"name": "b::add#2", "order": 1},
             {"name": "b::add#3", "order": 2}, {"name": "b.conv", "order": 0}]
    originals = ["__module.b/aten::add/Add", "__module.b/aten::add/Add_1",
                 "__module.b/aten::add/Add_2"]
    r = Resolver(units, originals)
    assert [r(o) for o in originals] == ["b::add#2", "b::add#3", "b::add"]
    plain = Resolver([{"name": u["name"]} for u in units], originals)  # no order: call order
    assert [plain(o) for o in originals] == ["b::add", "b::add#2", "b::add#3"]
    # Two nodes of one type per call (4 Multiplies over 2 calls): two per call site.
    two = Resolver([{"name": "m::mul"}, {"name": "m::mul#2"}],
                   [f"__module.m/aten::mul/Multiply{s}" for s in ("", "_1", "_2", "_3")])
    assert [two(f"__module.m/aten::mul/Multiply{s}") for s in ("", "_1", "_2", "_3")] == [
        "m::mul", "m::mul", "m::mul#2", "m::mul#2"]
    # Numbers that cannot be shared out evenly: left to data flow rather than guessed.
    odd = Resolver([{"name": "m::mul"}, {"name": "m::mul#2"}],
                   [f"__module.m/aten::mul/Multiply{s}" for s in ("", "_1", "_2")])
    assert odd("__module.m/aten::mul/Multiply_1") is None
    # A gap (OpenVINO merged a twin after naming) keeps the other numbers where they were.
    gap = Resolver([{"name": "relu"}, {"name": f"{ROOT}::relu"}, {"name": f"{ROOT}::relu#2"},
                    {"name": f"{ROOT}::relu#3"}], ["aten::relu/Relu", "aten::relu/Relu_2"])
    assert gap("aten::relu/Relu_2") == f"{ROOT}::relu#3"
    assert gap("aten::cat/Concat") == f"{ROOT}::cat"  # a phantom at the top is no bare ::cat
    assert parse_unit(f"{ROOT}::relu#3") == ("", "relu", 3) and parse_unit("0.1") is None


def test_an_unresolved_call_site_is_placed_by_data_flow():
    units = [{"name": "c", "type": "Conv2d", "kind": "conv", "inputs": []},
             {"name": "m::mul", "type": "fn:mul", "kind": "other", "inputs": ["c"]},
             {"name": "m::mul#2", "type": "fn:mul", "kind": "other", "inputs": ["m::mul"]},
             {"name": "m::relu", "type": "fn:relu", "kind": "activation", "inputs": ["m::mul#2"]}]
    rows = [{"name": "conv", "original_names": ["__module.c/aten::_convolution/Convolution"],
             "inputs": []},
            {"name": "Subgraph_1", "inputs": ["conv"],
             "original_names": ["__module.m/aten::mul/Multiply", "__module.m/aten::mul/Multiply_1",
                                "__module.m/aten::mul/Multiply_2", "Multiply_77"]}]
    m = match(units, rows)
    # Both multiplies, whose three nodes could not be shared out by number; the ReLU fed by them
    # is no multiply, so a spare unresolved name does not pull it in.
    assert set(m.claims["Subgraph_1"]) == {"m::mul", "m::mul#2"}
    assert m.unclaimed(units) == ["m::relu"]


def test_a_twin_through_twin_inputs_is_named_as_such():
    # A DARTS reduction cell: s2 + pool(s1) twice, through two skip modules and two pools.
    units = [{"name": "s1", "type": "Conv2d", "kind": "conv", "inputs": []},
             {"name": "s2", "type": "Conv2d", "kind": "conv", "inputs": []},
             {"name": "p1", "type": "MaxPool2d", "kind": "pooling", "inputs": ["s1"]},
             {"name": "k1", "type": "Identity", "kind": "other", "inputs": ["s2"]},
             {"name": "c::add", "type": "fn:add", "kind": "add", "inputs": ["k1", "p1"]},
             {"name": "p2", "type": "MaxPool2d", "kind": "pooling", "inputs": ["s1"]},
             {"name": "k2", "type": "Identity", "kind": "other", "inputs": ["s2"]},
             {"name": "c::add#2", "type": "fn:add", "kind": "add", "inputs": ["k2", "p2"]},
             {"name": "w1", "type": "Conv2d", "kind": "conv", "inputs": ["p1"]},
             {"name": "w2", "type": "Conv2d", "kind": "conv", "inputs": ["p2"]}]
    claimed = {"s1", "s2", "p1", "c::add", "w1"}
    by = {u["name"]: u for u in units}
    assert duplicate_of(by["c::add#2"], units, claimed) == "c::add"
    assert duplicate_of(by["p2"], units, claimed) == "p1"
    assert duplicate_of(by["k2"], units, claimed) is None  # removed, not computed once
    assert duplicate_of(by["w2"], units, claimed) is None  # its own weights: no twin
