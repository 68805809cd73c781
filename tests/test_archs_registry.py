"""Tests generated from the registry: every family builds, has the right shapes, converts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import archs
from archs.registry import input_shape
from archs.spec import SpecError
from tests.conftest import FAMILY_NAMES, small_spec

STUDY_FAMILIES = {"plain", "residual", "bottleneck", "dwbottleneck", "dwseparable", "dense",
                  "mobilenetv2", "darts", "overlap", "resnet"}


def test_every_family_of_the_study_is_registered():
    assert STUDY_FAMILIES <= set(FAMILY_NAMES)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_family_takes_the_common_keys(name):
    params = {p.name: p for p in archs.family(name).params}
    assert {"batch", "res", "classes", "act"} <= set(params)
    assert set(params["act"].choices) == {"relu", "relu6", "silu", "gelu", "tanh", "hardswish", "leakyrelu"}
    assert archs.family(name).doc, "family docstring is its user-facing description"


def _end_values(name):
    """(key, value) at both ends of every numeric range and every choice of every parameter."""
    for p in archs.family(name).params:
        if p.name in ("batch", "res", "classes") and p.max is not None:
            # Large inputs are covered by the default build; the maxima only check the bound.
            yield p.name, p.min
            continue
        if p.choices is not None:
            for c in p.choices:
                yield p.name, c
        elif p.min is not None or p.max is not None:
            for v in (p.min, p.max):
                if v is not None:
                    yield p.name, p.type(v)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_builds_at_small_config_and_range_ends(name):
    for key, value in _end_values(name):
        spec = small_spec(name, **{key: value})
        try:
            values = archs.resolve(spec)
        except SpecError as exc:
            # kernel:'s keys constrain each other (groups must divide cin and cout): a range end
            # alone may be refused, and then it must name the key
            assert name == "kernel" and key in str(exc), exc
            continue
        model, x = archs.build(spec)
        assert not model.training
        assert tuple(x.shape) == input_shape(values, archs.family(name))
        with torch.inference_mode():
            y = model(x)
        if archs.family(name).input_shape is None:  # an image classifier
            assert tuple(x.shape) == (values["batch"], 3, values["res"], values["res"])
            assert tuple(y.shape) == (values["batch"], values["classes"]), spec
        assert torch.isfinite(y).all(), spec


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_builds_at_defaults(name):
    model, x = archs.build(name)
    values = archs.resolve(name)
    with torch.inference_mode():
        y = model(x)
    if archs.family(name).input_shape is None:  # an image classifier
        assert tuple(y.shape) == (values["batch"], values["classes"])
    else:  # one kernel (kernel:): a feature map of the batch
        assert y.shape[0] == values["batch"] and torch.isfinite(y).all()


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_builds_are_deterministic_and_batchnorm_is_not_identity(name):
    spec = small_spec(name)
    m1, x1 = archs.build(spec)
    m2, x2 = archs.build(spec)
    assert torch.equal(x1, x2)
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    bns = [m for m in m1.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if bns:
        assert any(float(bn.running_mean.abs().max()) > 1e-3 for bn in bns)
        assert any(float((bn.running_var - 1).abs().max()) > 1e-3 for bn in bns)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_openvino_static_f32_matches_pytorch(name):
    import openvino as ov

    model, x = archs.build(small_spec(name))
    with torch.inference_mode():
        ref = model(x).numpy()
    ov_model = ov.convert_model(model, example_input=x, input=[tuple(x.shape)])
    assert not ov_model.is_dynamic()
    compiled = ov.Core().compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    out = compiled(x.numpy())[0]
    rel = np.linalg.norm(out - ref) / np.linalg.norm(ref)
    assert rel < 1e-4, f"{name}: relative L2 error {rel:.2e}"


def _writes_no_input(spec: str) -> None:
    model, x = archs.build(spec)
    seeded = x.clone()
    with torch.inference_mode():
        first = model(x)
        second = model(x)
    assert torch.equal(x, seeded), f"{spec} writes into its input"
    assert torch.equal(first, second), spec  # so every timed call computes the same thing


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_no_family_writes_into_its_input(name):
    """A timed call must see the seeded input: eager PyTorch reuses one input tensor."""
    _writes_no_input(small_spec(name))


@pytest.mark.parametrize("act", archs.registry.ACTIVATIONS)
@pytest.mark.parametrize("repeat", [1, 4])
def test_an_activation_kernel_reads_its_input_and_its_copies_run_in_place(act, repeat):
    # Iterated in place, Hardswish and SiLU drove the input to zeros: eager PyTorch timed a
    # zero tensor and the parity check compared outputs of different inputs.
    spec = f"kernel:op=act,act={act},repeat={repeat},res=8,cin=8"
    _writes_no_input(spec)
    acts = list(archs.build(spec)[0])
    in_place = [getattr(m, "inplace", None) for m in acts]
    if in_place[0] is not None:  # GELU and Tanh have no in-place form
        assert in_place == [False] + [True] * (repeat - 1), spec
