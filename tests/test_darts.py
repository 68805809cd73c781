"""The darts family: published figures, genotype checking, spec handling, OpenVINO parity."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archs
from archs import SpecError, darts_genotypes
from archs.darts import (
    DARTS_V1,
    DARTS_V2,
    OPS,
    Genotype,
    as_data,
    genotype_from_data,
    genotype_names,
    get_genotype,
    register_genotype,
)
from archs.darts_ops import FactorizedReduce

SMALL = "darts:setting=cifar,cells=5,channels=8"


@pytest.fixture
def isolated_genotypes(monkeypatch):
    """Registrations made by a test vanish after it (the registry is process-global)."""
    monkeypatch.setattr(darts_genotypes, "_GENOTYPES", dict(darts_genotypes._GENOTYPES))


def raw_model(spec: str) -> nn.Module:
    """The family's module without build()'s BatchNorm calibration (enough for counting)."""
    return archs.family("darts").builder(archs.resolve(spec)).eval()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def macs(spec: str) -> float:
    values = archs.resolve(spec)
    x = torch.zeros(values["batch"], 3, values["res"], values["res"])
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        raw_model(spec)(x)
    return counter.get_total_flops() / 2


# --- published figures ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("spec", "published", "exact"),
    [
        ("darts:setting=imagenet", 4.7e6, 4_718_752),
        ("darts:setting=cifar", 3.3e6, 3_349_342),
    ],
)
def test_parameter_count_matches_paper(spec, published, exact):
    count = n_params(raw_model(spec))
    assert abs(count - published) <= 0.03 * published
    # The exact figure of this implementation, so any structural change is noticed.
    assert count == exact


@pytest.mark.slow
def test_imagenet_multiply_adds():
    """The paper says 574M multiply-adds; counting convolutions and the classifier (which is
    what torch's flop counter does) gives 530M. The gap is the paper's counting, not the
    network: the parameter count is exact, and others counting the same way got 523M-545M for
    this network (quark0/darts issue #46, where the authors did not say how they counted)."""
    count = macs("darts:setting=imagenet")
    assert abs(count - 574e6) <= 0.10 * 574e6
    assert count == 529_911_552


def test_v1_and_v2_differ():
    assert DARTS_V1 != DARTS_V2
    assert n_params(raw_model(SMALL)) != n_params(raw_model(SMALL + ",genotype=DARTS_V1"))


def test_builtin_genotypes_are_as_published():
    # Spot checks against quark0/darts cnn/genotypes.py (the second-order cell's dil_conv edge
    # and the first-order reduce cell's avg_pool edge are what tell them apart).
    assert DARTS_V2.normal[-1] == ("dil_conv_3x3", 2)
    assert DARTS_V1.reduce[-1] == ("avg_pool_3x3", 0)
    for g in (DARTS_V1, DARTS_V2):
        assert len(g.normal) == len(g.reduce) == 8
        assert g.normal_concat == g.reduce_concat == (2, 3, 4, 5)
        assert genotype_from_data(g) == g
    assert get_genotype("DARTS_V2") is DARTS_V2


# --- specs ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("darts:setting=cifar", "darts:setting=cifar"),
        ("darts:genotype=DARTS_V2,setting=imagenet", "darts"),
        ("darts:channels=16,setting=cifar,genotype=DARTS_V1", "darts:genotype=DARTS_V1,setting=cifar,channels=16"),
    ],
)
def test_spec_round_trip(text, canonical):
    assert archs.format_spec(archs.parse(text)) == canonical
    assert archs.format_spec(archs.parse(canonical)) == canonical


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("darts", dict(cells=14, channels=48, res=224, classes=1000, genotype="DARTS_V2")),
        ("darts:setting=cifar", dict(cells=20, channels=36, res=32, classes=10)),
        ("darts:setting=cifar,cells=8,res=64,classes=100", dict(cells=8, channels=36, res=64, classes=100)),
    ],
)
def test_defaults_derive_from_setting(spec, expected):
    values = archs.resolve(spec)
    assert {k: values[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("darts:genotype=NASNet", ["NASNet", "DARTS_V1", "DARTS_V2", "register_genotype"]),
        ("darts:channels=9", ["channels=9", "even"]),
        ("darts:cells=2", ["cells=2", "3 <= cells"]),
        ("darts:channels=80", ["channels=80", "<= 64"]),
        ("darts:setting=mnist", ["imagenet", "cifar"]),
        ("darts:genotype=darts_v2", ["DARTS_V2"]),
    ],
)
def test_bad_specs_name_what_is_valid(spec, words):
    with pytest.raises(SpecError) as err:
        archs.resolve(spec)
    for word in words:
        assert word in str(err.value)


def test_every_param_documented_with_how_defaults_derive():
    fam = archs.family("darts")
    assert all(p.doc for p in fam.params)
    for p in fam.params:
        if p.default is None:
            assert "setting" in p.doc, p.name


def test_act_replaces_every_relu_and_never_in_place():
    model = raw_model(SMALL + ",act=silu")
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    acts = [m for m in model.cells.modules() if isinstance(m, nn.SiLU)]
    assert acts and not any(a.inplace for a in acts)


# --- genotypes as data ---------------------------------------------------------------------

def _data(**changes):
    data = as_data(DARTS_V2)
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_data(normal=[["sep_conv_9x9", 0], ["skip_connect", 1]]), ["sep_conv_9x9", "sep_conv_3x3", "normal[0]"]),
        (_data(normal=[["sep_conv_3x3", 2], ["skip_connect", 1]]), ["input 2", "node 0", "0..1"]),
        (_data(reduce=[["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 4], ["max_pool_3x3", 0]]), ["reduce[2]", "0..2"]),
        (_data(normal=[["sep_conv_3x3", -1], ["skip_connect", 1]]), ["input -1"]),
        (_data(normal=[["sep_conv_3x3", True], ["skip_connect", 1]]), ["input True"]),
        (_data(normal=[["sep_conv_3x3", 0], ["skip_connect", 1], ["skip_connect", 1]]), ["3 pairs", "even"]),
        (_data(normal=[]), ["non-empty"]),
        (_data(normal=[["sep_conv_3x3", 0, 1], ["skip_connect", 1]]), ["[op, input] pair"]),
        (_data(normal_concat=[2, 3, 6]), ["normal_concat", "6", "0..5"]),
        (_data(normal_concat=[2, 2]), ["repeats"]),
        (_data(reduce_concat=[0, 2]), ["reduce_concat", "2..5"]),
        ({k: v for k, v in _data().items() if k != "reduce"}, ["missing: reduce"]),
        (_data(extra=1), ["unknown: extra"]),
        ("DARTS_V2", ["mapping"]),
    ],
)
def test_bad_genotypes_are_refused_with_reasons(data, words):
    with pytest.raises(SpecError) as err:
        genotype_from_data(data)
    for word in words:
        assert word in str(err.value)


def test_genotype_survives_json():
    assert genotype_from_data(json.loads(json.dumps(as_data(DARTS_V1)))) == DARTS_V1


# A cell using every op, a stride-2 skip (FactorizedReduce) and unequal normal/reduce depths.
EVERY_OP = {
    "normal": [["sep_conv_5x5", 0], ["dil_conv_5x5", 1], ["conv_7x1_1x7", 2], ["none", 0],
               ["avg_pool_3x3", 3], ["sep_conv_7x7", 1]],
    "normal_concat": [3, 4],
    "reduce": [["skip_connect", 0], ["max_pool_3x3", 1], ["dil_conv_3x3", 2], ["none", 1]],
    "reduce_concat": [2, 3],
}


@pytest.mark.usefixtures("isolated_genotypes")
@pytest.mark.parametrize("tail", ["setting=cifar,res=32", "setting=cifar,res=33", "res=100"])
def test_registered_genotype_builds_at_any_size(tail):
    assert set(OPS) >= {op for op, _ in EVERY_OP["normal"] + EVERY_OP["reduce"]}
    register_genotype("EveryOp", EVERY_OP)
    assert "EveryOp" in genotype_names()
    spec = "darts:genotype=EveryOp,cells=5,channels=8,batch=2," + tail
    model, x = archs.build(spec)
    assert any(isinstance(m, FactorizedReduce) for m in model.cells[1].ops)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, archs.resolve(spec)["classes"])
    assert torch.isfinite(out).all()


@pytest.mark.usefixtures("isolated_genotypes")
def test_register_genotype_rules():
    assert register_genotype("Mine", DARTS_V1) == DARTS_V1
    assert register_genotype("Mine", as_data(DARTS_V1)) == DARTS_V1  # same cells: fine
    with pytest.raises(SpecError, match="already registered"):
        register_genotype("Mine", DARTS_V2)
    with pytest.raises(SpecError, match="genotype name"):
        register_genotype("my genotype", DARTS_V2)
    assert isinstance(get_genotype("Mine"), Genotype)


# --- OpenVINO ------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.usefixtures("isolated_genotypes")
@pytest.mark.parametrize("spec", [None, SMALL + ",genotype=EveryOp,res=33,act=gelu"])
def test_openvino_matches_pytorch(spec):
    ov = pytest.importorskip("openvino")
    register_genotype("EveryOp", EVERY_OP)
    fam = archs.family("darts")
    spec = spec or archs.format_spec(archs.parse("darts:" + ",".join(f"{k}={v}" for k, v in fam.small)))
    model, x = archs.build(spec)
    with torch.no_grad():
        ref = model(x).numpy()
    converted = ov.convert_model(model, example_input=x, input=[tuple(x.shape)])
    compiled = ov.Core().compile_model(converted, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    out = compiled(x.numpy())[0]
    assert out.shape == ref.shape
    rel = float(((out - ref) ** 2).sum() ** 0.5 / (ref**2).sum() ** 0.5)
    assert rel < 1e-4
