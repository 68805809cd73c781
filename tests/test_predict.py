"""The latency predictor (issue 26): the kernels a backend runs (units, fusion read from
OpenVINO) and the kernel family. The command line: ``test_predict_cli.py``; the fit:
``test_predict_fit.py``; its data: ``test_predict_dataset.py``."""

from __future__ import annotations

import pytest
import torch

import archs
from harness.predict.fusion import (
    REORDER_KINDS,
    Kernel,
    backend_kernels,
    kernels,
)
from harness.predict.units import model_units

MODELLED = {"conv", "depthwise", "pointwise", "grouped", "linear", "batchnorm", "activation",
            "pooling"}


@pytest.mark.parametrize("fam", [f.name for f in archs.list_archs()])
def test_units_agree_with_the_profile_layers(fam: str) -> None:
    small = dict(archs.family(fam).small)
    spec = f"{fam}:" + ",".join(f"{k}={v}" for k, v in small.items()) if small else fam
    model, example = archs.build(spec)
    units = {u["name"]: u for u in model_units(model, example)}
    flops: dict[str, int] = {}
    for layer in archs.profile(spec).layers:
        flops[layer.name.split("#")[0]] = flops.get(layer.name.split("#")[0], 0) + layer.flops
    modelled = {n: u for n, u in units.items() if u["kind"] in MODELLED}
    assert modelled, spec
    for name, u in modelled.items():
        assert name in flops, f"{spec}: unit {name} is no profiled layer"
        assert u["flops"] == flops[name], (spec, name)
    assert sum(u["flops"] for u in units.values()) == archs.profile(spec).flops


def test_openvino_fuses_conv_bn_act_and_the_residual_add_eager_fuses_nothing() -> None:
    model, example = archs.build("residual:depth=1,width=8,res=16")
    got = backend_kernels(model, example, ["torch", "openvino:CPU"], precision="f32", threads=1)
    eager, ov = got["torch"], got["openvino:CPU"]
    assert all(len(k.units) == 1 for k in eager)
    assert {k.kind for k in eager} >= {"conv", "batchnorm", "activation", "add"}
    assert len(ov) < len(eager)
    kinds = {u for k in ov for u in k.units}
    assert not any(k.kind in ("batchnorm", "add") for k in ov)  # folded into convolutions
    fused = [k for k in ov if k.kind == "conv" and len(k.units) >= 3]
    assert fused, [k.units for k in ov]
    assert any(u.endswith("::add") for u in kinds)


def test_a_fused_residual_add_counts_the_map_it_reads_from_outside_the_kernel() -> None:
    """OpenVINO runs conv + batch norm + ReLU + the block's add as one kernel, which also reads
    the shortcut's map: its bytes are its input, output and weights plus that map. Eager
    PyTorch's add is a kernel of its own and reads both maps as its input."""
    model, example = archs.build("residual:depth=1,width=8,res=16")
    got = backend_kernels(model, example, ["torch", "openvino:CPU"], precision="f32", threads=1)
    (fused,) = [k for k in got["openvino:CPU"] if any(u.endswith("::add") for u in k.units)]
    assert fused.kind == "conv"
    assert fused.bytes - (fused.in_bytes + fused.out_bytes + fused.weight_bytes) == fused.out_bytes
    (add,) = [k for k in got["torch"] if k.kind == "add"]
    assert add.bytes == add.in_bytes + add.out_bytes == 3 * add.out_bytes
    alone = [k for k in got["openvino:CPU"] if not any(u.endswith("::add") for u in k.units)]
    assert all(k.bytes == k.in_bytes + k.out_bytes + k.weight_bytes for k in alone)


def test_global_pooling_is_a_kind_of_its_own() -> None:
    """A pool with one output per channel reads its input once; a windowed one slides."""
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.MaxPool2d(2),
                            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                            torch.nn.Linear(8, 4)).eval()
    got = [k.kind for k in kernels(model_units(m, torch.randn(1, 3, 16, 16)), None)]
    assert got == ["conv", "pooling", "global_pool", "linear"]


def test_a_zero_padding_is_a_kernel_in_eager_pytorch_and_folded_by_openvino() -> None:
    """The overlapping ConvNet pads the odd pixel of each stride-2 convolution: eager PyTorch
    copies the map (a ``pad`` kernel of the padded bytes), OpenVINO folds it into the
    convolution (no kernel of its own), as the kernel family's ``op=pad`` cell is run."""
    model, example = archs.build("overlap:depth=2,width=8,res=16")
    got = backend_kernels(model, example, ["torch", "openvino:CPU"], precision="f32", threads=1)
    pads = [k for k in got["torch"] if k.kind == "pad"]
    assert [k.units[0].endswith("::pad") for k in pads] == [True, True]
    assert pads[0].in_bytes == 3 * 16 * 16 * 4 and pads[0].out_bytes == 3 * 17 * 17 * 4
    # folded into the convolution's padding: no runtime row claims it
    assert not any(u.endswith("::pad") for k in got["openvino:CPU"] for u in k.units)
    cell, x = archs.build("kernel:op=pad,cin=8,res=8")
    assert [k.kind for k in backend_kernels(cell, x, ["torch"], precision="f32",
                                            threads=1)["torch"]] == ["pad"]


def test_eager_kernels_drop_views() -> None:
    units = [{"name": "a", "type": "Conv2d", "kind": "conv", "inputs": [], "flops": 8,
              "in_bytes": 1, "out_bytes": 1, "weight_bytes": 1, "kernel": 3, "stride": 1,
              "groups": 1, "cin": 1, "cout": 1},
             {"name": "f", "type": "Flatten", "kind": "other", "inputs": ["a"], "flops": 0,
              "in_bytes": 1, "out_bytes": 1, "weight_bytes": 0, "kernel": 0, "stride": 0,
              "groups": 1, "cin": 1, "cout": 1}]
    assert [k.units for k in kernels(units, None)] == [("a",)]


def test_kernel_family_is_strict() -> None:
    with pytest.raises(archs.SpecError):
        archs.resolve("kernel:op=conv,stride=2,repeat=2")
    with pytest.raises(archs.SpecError):
        archs.resolve("kernel:op=dwconv,cin=8,cout=16")
    with pytest.raises(archs.SpecError):
        archs.parse("kernel:op=winograd")
    model, x = archs.build("kernel:op=linear,cin=12,cout=5")
    assert tuple(x.shape) == (1, 12) and tuple(model(x).shape) == (1, 5)
    model, x = archs.build("kernel:op=linear,cin=12,repeat=3")  # an MLP's hidden layers
    assert [type(m).__name__ for m in model] == ["Linear"] * 3 and tuple(model(x).shape) == (1, 12)
    with pytest.raises(archs.SpecError):
        archs.resolve("kernel:op=linear,cin=12,cout=5,repeat=2")
    with pytest.raises(archs.SpecError):
        archs.resolve("kernel:op=mix,cin=8,cout=16,repeat=6")
    model, x = archs.build("kernel:op=mix,cin=8,res=8,repeat=7")
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "Conv2d", "_Add", "Conv2d"]
    assert [m.groups for m in model if isinstance(m, torch.nn.Conv2d)] == [1, 8, 1, 1]
    assert tuple(model(x).shape) == tuple(x.shape)
    model, x = archs.build("kernel:op=linear,cin=12,repeat=2,post=act,act=gelu")
    assert [type(m).__name__ for m in model] == ["Linear", "GELU"] * 2
    with pytest.raises(archs.SpecError, match="post=act"):
        archs.resolve("kernel:op=bn,post=act")


def test_openvino_runs_a_linear_layer_with_its_activation_as_a_kind_of_its_own() -> None:
    """OpenVINO fuses a linear layer and its ReLU into one FullyConnected, which at batch 1 takes
    another, slower path than the bare one (3072->4096: 1.91 against 1.06 ms on a Zen 4 VM):
    read from the compiled model, that kernel is ``linear_act``; a bare linear layer stays
    ``linear``, and eager PyTorch runs the two units apart. (At one thread OpenVINO 2026.4 may
    tokenize consecutive layers into one Snippets subgraph, a single kernel: read as such.)"""
    from harness.predict.fusion import LINEAR_ACT

    model, example = archs.build("kernel:op=linear,cin=16,repeat=2,post=act")
    got = backend_kernels(model, example, ["torch", "openvino:CPU"], precision="f32", threads=2)
    assert [k.kind for k in got["openvino:CPU"] if k.kind not in REORDER_KINDS] == [LINEAR_ACT] * 2
    assert [k.kind for k in got["torch"]] == ["linear", "activation"] * 2
    model, example = archs.build("kernel:op=linear,cin=16,repeat=2")
    got = backend_kernels(model, example, ["openvino:CPU"], precision="f32", threads=2)
    assert [k.kind for k in got["openvino:CPU"] if k.kind not in REORDER_KINDS] == ["linear"] * 2


def test_openvino_concatenations_run_in_place_or_as_copies_are_told_apart() -> None:
    """OpenVINO runs a concatenation of the network's plain input in place (its primitive does
    nothing; a Reorder copies the input into the output) and one of a convolution's output as a
    copy: read from the compiled model, the first is ``concat_inplace``, the second ``concat``,
    the kind DARTS's and DenseNet's concatenations are; eager PyTorch's ``torch.cat`` always
    copies. The kernel family's ``pwconcat`` and ``pwgap`` differ by that copy (and their pools'
    inputs)."""
    from harness.predict.fusion import CONCAT_INPLACE

    def computing(spec: str) -> dict[str, list[str]]:
        model, example = archs.build(spec)
        got = backend_kernels(model, example, ["torch", "openvino:CPU"], precision="f32", threads=2)
        return {b: [k.kind for k in ks if k.kind not in REORDER_KINDS] for b, ks in got.items()}

    assert computing("kernel:op=concat,cin=36") == {"torch": ["concat"],
                                                     "openvino:CPU": [CONCAT_INPLACE]}
    assert computing("kernel:op=pwconcat,cin=36") == {
        b: ["pointwise", "concat", "global_pool"] for b in ("torch", "openvino:CPU")}
    assert computing("kernel:op=pwgap,cin=36") == {
        b: ["pointwise", "global_pool"] for b in ("torch", "openvino:CPU")}
    darts = computing("darts:setting=cifar,cells=3,channels=8")["openvino:CPU"]
    assert "concat" in darts and CONCAT_INPLACE not in darts


def test_a_convolution_with_a_bias_is_one_kernel_on_openvino() -> None:
    """OpenVINO's runtime graph keeps the reshape of a convolution's constant bias as a row that
    executes nothing (implementation ``unknown``) but names the convolution it came from: read
    as a kernel, a biased 1x1 convolution was two pointwise kernels (a user's model file; the
    families' convolutions have no bias)."""
    m = torch.nn.Sequential(torch.nn.Conv2d(16, 16, 1, bias=True), torch.nn.ReLU()).eval()
    got = backend_kernels(m, torch.randn(1, 16, 8, 8), ["openvino:CPU", "torch"],
                          precision="f32", threads=2)
    assert [k.kind for k in got["openvino:CPU"] if k.kind not in REORDER_KINDS] == ["pointwise"]
    assert [k.kind for k in got["torch"]] == ["pointwise", "activation"]


def test_kernels_carry_the_bytes_their_costly_activation_functions_write() -> None:
    """A GELU evaluated alone (eager PyTorch) or fused into its convolution (OpenVINO) is in its
    kernel's ``functions`` with the bytes it writes, read from the model and the runtime graph;
    a ReLU-like function is not (its cost is its kernel's bytes), nor is a Tanh where none
    runs. Each function's cost is then its own term of the model (``design.TERMS``)."""
    model, example = archs.build("kernel:op=pointwise,cin=16,res=8,post=act,act=gelu")
    got = backend_kernels(model, example, ["torch", "openvino:CPU"], precision="f32", threads=1)
    written = 16 * 8 * 8 * 4
    assert [k.functions for k in got["torch"]] == [(), (("gelu", written),)]
    (conv,) = [k for k in got["openvino:CPU"] if k.kind not in REORDER_KINDS]
    assert conv.kind == "pointwise" and conv.functions == (("gelu", written),)
    model, example = archs.build("kernel:op=pointwise,cin=16,res=8,post=act,act=relu6")
    got = backend_kernels(model, example, ["torch", "openvino:CPU"], precision="f32", threads=1)
    assert all(k.functions == () for ks in got.values() for k in ks)
    assert Kernel.from_json(conv.as_json()) == conv


def test_a_functional_activation_is_priced_as_its_module_is() -> None:
    """``F.gelu`` (a unit typed ``fn:gelu``) and ``F.silu`` spelled as its alias carry their
    functions like ``nn.GELU`` does; a kernel cache entry naming a function this version does not
    price is not read (``from_json`` refuses it, and the kernels are read again)."""
    import torch
    from torch import nn

    from harness.predict.fusion import function_of

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.gelu(self.conv(x))

    got = backend_kernels(Functional(), torch.randn(1, 8, 4, 4), ["torch"], precision="f32",
                          threads=1)
    assert [k.functions for k in got["torch"]] == [(), (("gelu", 8 * 4 * 4 * 4),)]
    assert function_of({"kind": "activation", "type": "fn:swish"}) == "silu"
    assert function_of({"kind": "activation", "type": "ReLU6"}) is None
    bad = {**got["torch"][1].as_json(), "functions": [["swish2", 4]]}
    with pytest.raises(ValueError, match="unknown activation function"):
        Kernel.from_json(bad)


class _UntrainedSeparable(torch.nn.Module):
    """``x + bn(pointwise(depthwise(relu(x))))`` with its batch norm as constructed (mean 0,
    variance 1, no shift): what an untrained candidate of an architecture search looks like."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.act = torch.nn.ReLU()
        self.dw = torch.nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.pw = torch.nn.Conv2d(c, c, 1, bias=False)
        self.bn = torch.nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn(self.pw(self.dw(self.act(x))))


def test_a_convolution_whose_batch_norm_folded_away_is_still_a_convolution() -> None:
    """OpenVINO folds such a batch norm into the convolution with no node of its own left, and
    the primitive names only a ``Multiply_N`` and the add: the convolution and the batch norm
    are recovered through the data flow (convolution -> batch norm -> named add). Read as the
    batch norm's kernel, the pointwise convolutions were priced as batch norms and such models
    predicted at 0.50-0.76 of their OpenVINO time (Zen 4 VM, 2026-12-08)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(_UntrainedSeparable(16), _UntrainedSeparable(16)).eval()
    got = backend_kernels(model, torch.randn(1, 16, 8, 8), ["openvino:CPU"], precision="f32",
                          threads=1)["openvino:CPU"]
    computing = [k for k in got if not k.kind.startswith("reorder")]
    assert sorted(k.kind for k in computing) == sorted(["activation", "depthwise", "pointwise"] * 2)
    for k in computing:
        if k.kind == "pointwise":
            assert {u.rpartition(".")[2] for u in k.units} >= {"pw", "bn"}
