"""The latency predictor (issue 26): the kernels a backend runs (units, fusion read from
OpenVINO), the kernel family, and the CLI. The fit: ``test_predict_fit.py``; its data:
``test_predict_dataset.py``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import archs
from harness.cli import main
from harness.measure.results import DONE, CellKey, CellResult, SessionInfo
from harness.predict.design import CELL_MS
from harness.predict.fusion import (
    REORDER_KINDS,
    Kernel,
    backend_kernels,
    kernels,
)
from harness.predict.units import model_units
from harness.store import Store

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


KERNEL_SPECS = ["kernel:op=conv,cin=8,res=8", "kernel:op=conv,cin=16,res=16",
                "kernel:op=conv,repeat=3,cin=8,res=8", "kernel:op=bn,cin=8,res=16",
                "kernel:op=act,cin=8,res=16", "kernel:op=act,cin=16,res=16",
                "kernel:op=gap,cin=16,res=4", "kernel:op=linear,cin=16,cout=10",
                "kernel:op=linear,cin=32,cout=10", "kernel:op=bn,cin=16,res=16"]


def _synthetic_store(path: Path, specs: list[str], scale: dict[str, float],
                     machine_id: str | None = None) -> Path:
    """Cells whose latency is a known function of the network's FLOPs and size."""
    with Store.open(path) as s:
        s.begin_session(SessionInfo(id="20260101T000000-aaaa0000", started=1.7e9,
                                    machine_id=machine_id))
        for spec in specs:
            prof = archs.profile(spec)
            for backend, k in scale.items():
                ms = k * (0.01 + prof.flops / 1e8 + prof.activation_bytes / 1e7)
                samples = list(ms * (1 + 0.001 * np.arange(20)))
                s.put_cell("20260101T000000-aaaa0000", CellResult(
                    CellKey(spec, backend, "f32", 1), DONE, samples_ms=samples))
    return path


def test_cli_predicts_scores_and_refuses_bad_input(tmp_path: Path, capsys) -> None:
    store = _synthetic_store(tmp_path / "k.sqlite", KERNEL_SPECS,
                             {"torch": 1.0, "openvino:CPU": 0.5})
    nets = _synthetic_store(tmp_path / "n.sqlite", ["plain:depth=1,width=8,res=16"],
                            {"torch": 1.0, "openvino:CPU": 0.5})
    rc = main(["predict", "plain:depth=1,width=8,res=16", "plain:depth=2,width=64,res=64",
               "--store", str(store), "--score", str(nets), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fit"]["session_level"] is None
    small, big = out["predictions"]
    for b in ("torch", "openvino:CPU"):
        p = small["backends"][b]
        assert p["interval"][0] <= p["ms"] <= p["interval"][1]
        assert p["dominant"]
        # the whole inference's terms, each named and costing no more than the prediction
        assert set(p["terms"]) == set(CELL_MS.values())
        assert all(0 <= ms <= p["ms"] for ms in p["terms"].values())
        assert p["moved_MB"] > p["weight_MB"] > 0
        # every kernel's share (by kind) and the terms are the whole prediction, nothing twice
        assert sum(p["by_kind"].values()) + sum(p["terms"].values()) == pytest.approx(p["ms"])
    assert small["speedups"][0]["candidate"] == "openvino:CPU"
    assert big["backends"]["torch"]["out_of_range"]  # 64 channels at 64x64: never measured
    summary = out["score"]["summary"]
    assert set(summary) == {"torch", "openvino:CPU", "speedup openvino:CPU/torch"}
    assert summary["torch"]["plain"]["n"] == 1
    assert out["score"]["repeatability"] == {}  # one session of each network
    # how often the intervals held the measured figure, and how wide they were, per target
    held = out["score"]["intervals"]
    assert set(held) == set(summary)
    assert all(h["n"] == 1 and h["inside"] in (0.0, 1.0) and h["median_half_width"] > 0
               for h in held.values())
    assert (tmp_path / "k.sqlite.kernels.json").is_file()  # kernels cached beside the store

    # the score as text: with one session, the best score it could get is said to be unknown
    assert main(["predict", "--store", str(store), "--score", str(nets)]) == 0
    text = capsys.readouterr().out
    assert "each network was measured in one session" in text
    assert "the intervals leave out how far a whole session moves" in text  # no A/A record
    assert "each kernel cell was run once" in text
    assert "its 95% intervals held 1 of 1 measured figures (100%" in text
    # a second session, PyTorch 20% slower, with a backend the predictor was not fitted on:
    # the floor is stated for what the score scored, and only for that
    spec = "plain:depth=1,width=8,res=16"
    with Store.open(nets) as s:
        s.begin_session(SessionInfo(id="20260102T000000-bbbb0000", started=1.8e9))
        for backend, k in (("torch", 1.2), ("openvino:CPU", 1.0), ("onnxruntime", 1.0)):
            first = next(c for c in s.cells("20260101T000000-aaaa0000")
                         if c.key.backend == ("torch" if backend == "onnxruntime" else backend))
            s.put_cell("20260102T000000-bbbb0000", CellResult(
                CellKey(spec, backend, "f32", 1), DONE,
                samples_ms=[x * k for x in first.samples_ms]))
    assert main(["predict", "--store", str(store), "--score", str(nets), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)["score"]
    assert set(scored["repeatability"]) == set(scored["summary"]) | {"sessions"}
    assert scored["repeatability"]["sessions"] == [2]
    assert main(["predict", "--store", str(store), "--score", str(nets)]) == 0
    text = capsys.readouterr().out
    assert "the best score these measurements allow (2 sessions" in text
    assert "onnxruntime" not in text

    # the kernel preset run again, PyTorch's cells 25% slower: how far one run of a cell lies
    # from the runs' mean is stated (PyTorch ±11.8% each way, scaled to one run: none within
    # ±10%; OpenVINO's cells agree), and the fit reads the mean
    with Store.open(store) as s:
        s.begin_session(SessionInfo(id="20260103T000000-cccc0000", started=1.9e9))
        for c in list(s.cells("20260101T000000-aaaa0000")):
            k = 1.25 if c.key.backend == "torch" else 1.0
            s.put_cell("20260103T000000-cccc0000", CellResult(
                c.key, DONE, samples_ms=[x * k for x in c.samples_ms]))
    assert main(["predict", spec, "--store", str(store), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["fit"]["kernel_repeatability"]
    assert rep["sessions"] == [2]
    assert rep["torch"]["one_session"]["within_10"] == 0.0
    assert rep["openvino:CPU"]["one_session"]["within_10"] == 1.0
    assert rep["torch"]["one_session"]["n"] == 2 * len(KERNEL_SPECS)
    assert main(["predict", spec, "--store", str(store)]) == 0
    assert "the kernel cells were run in 2 sessions" in capsys.readouterr().out

    assert main(["predict", "plain:depth=1,width=8,res=16", "--store", str(store)]) == 0
    text = capsys.readouterr().out
    assert "speed-up openvino:CPU over torch" in text
    assert text.count("    whole inference: ") == 2  # one line per backend
    # where the kernels' time goes by kind, the largest first, each with its share
    by_kind = [line for line in text.splitlines() if line.startswith("    by kind: ")]
    assert len(by_kind) == 2 and all(" ms (" in line and "%)" in line for line in by_kind)
    assert main(["predict", "nosuch:x=1", "--store", str(store)]) == 2
    assert main(["predict", "plain", "--store", str(tmp_path / "missing.sqlite")]) == 2
    assert main(["predict", "plain", "--store", str(nets)]) == 2  # no kernel cells
    assert main(["predict", "--store", str(store)]) == 2
    assert "error" in capsys.readouterr().err


def test_predictions_carry_the_machines_session_level_when_its_a_a_run_was_recorded(
        tmp_path: Path, capsys, monkeypatch) -> None:
    """The kernel store's one machine, with an A/A record (``compare --record-noise``): its
    session level goes into every interval (wider than without), ``--json`` and the text say
    so, with the kernel cells' sessions (one each here)."""
    from harness.machine import noise
    from harness.measure.session_level import Term

    monkeypatch.setenv("ACCELBENCH_PEAKS", str(tmp_path / "peaks"))
    scale = {"torch": 1.0, "openvino:CPU": 0.5}
    bare = _synthetic_store(tmp_path / "bare.sqlite", KERNEL_SPECS, scale)
    store = _synthetic_store(tmp_path / "k.sqlite", KERNEL_SPECS, scale, machine_id="m-aa")
    noise.save("m-aa", {"latency": 0.2, "speedup": 0.1}, ["a", "b"], 3,
               {"latency": Term(0.08, 200, 190), "speedup": Term(0.04, 100, 95)})
    spec = "plain:depth=1,width=8,res=16"
    got = {}
    for name, path in (("bare", bare), ("aa", store)):
        assert main(["predict", spec, "--store", str(path), "--json"]) == 0
        got[name] = json.loads(capsys.readouterr().out)
    assert got["bare"]["fit"]["session_level"] is None
    level = got["aa"]["fit"]["session_level"]
    assert level["latency_sd"] == 0.08 and level["speedup_sd"] == 0.04
    assert level["kernel_sessions"] == 1
    assert got["aa"]["predictions"][0]["session_level"] == level
    for b in scale:
        lo, hi = got["bare"]["predictions"][0]["backends"][b]["interval"]
        lo2, hi2 = got["aa"]["predictions"][0]["backends"][b]["interval"]
        assert hi2 / lo2 > hi / lo
    assert main(["predict", spec, "--store", str(store)]) == 0
    text = capsys.readouterr().out
    assert "the intervals carry this machine's session level" in text
    assert "latency ±8.0%, speed-up ±4.0%" in text


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


def test_the_whole_inference_line_names_the_terms_that_cost_and_why_weights_are_cold() -> None:
    """``predict``'s line under each backend: the terms that cost anything; cold weights with
    the bytes moved against the L3; a network moving more than the L3 where the fit has no
    cold-weight term says its cold weights are not priced; nothing at all reads "none"."""
    from harness.cli.predict import _terms

    zero = dict.fromkeys(CELL_MS.values(), 0.0)
    cold = {"terms": {**zero, "overhead_ms": 0.002, "cold_weight_ms": 0.48, "switch_ms": 1.6},
            "moved_MB": 95.2, "weight_MB": 14.2, "cache_MB": 33.554432, "cold_identified": True}
    line = _terms(cold)
    assert line == ("overhead 0.002 ms, cold weights 0.48 ms (14.2 MB of weights read from "
                    "memory: the inference moves 95.2 MB, more than the 33.6 MB (32 MiB) L3), "
                    "switches into a convolution 1.6 ms")
    eager = {**cold, "conversion_MB": 30.1}  # eager PyTorch's conversions inside its calls
    assert ("the inference moves 95.2 MB, 30.1 MB of it layout conversions inside its "
            "convolutions, more than the 33.6 MB (32 MiB) L3") in _terms(eager)
    warm = {**cold, "terms": {**zero, "overhead_ms": 0.002}, "moved_MB": 20.0}
    assert _terms(warm) == "overhead 0.002 ms"
    unpriced = {**cold, "terms": {**zero, "overhead_ms": 0.002}, "cold_identified": False}
    assert "cold weights not priced (the inference moves 95.2 MB" in _terms(unpriced)
    # identified, fitted at nothing: no claim that the fit lacks it
    assert _terms({**unpriced, "cold_identified": True}) == "overhead 0.002 ms"
    assert _terms({**warm, "terms": zero}) == "none"
    no_cache = {**unpriced, "cache_MB": 0.0}  # no L3 known: nothing said of it
    assert _terms(no_cache) == "overhead 0.002 ms"
