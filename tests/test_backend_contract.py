"""The contract every registered backend keeps, its options, and the baseline ladder's rungs.

Parametrized over the registry (and over each backend's declared options), so a new backend or
a new option is tested for free.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
import torch

from harness.backends import (
    DEFAULT_BASELINE,
    BackendError,
    PrepareContext,
    backend_class,
    backend_options,
    get_backend,
    machine_info,
    parse_backend,
    registered_backends,
    split_backend_list,
)
from harness.backends.ladder import LADDER, ladder_backends
from harness.backends.options import format_value, options_of
from harness.backends.torch_backend import TorchPrepared
from tests.conftest import ROOT, run_cli
from tests.test_backends import tiny

TINY_SPEC = "plain:depth=1,res=32,width=8"
# torch.compile costs seconds per model: its rungs run only with the slow tests.
SLOW = {"torch-compile"}


def _marked(names):
    return [pytest.param(n, marks=pytest.mark.slow) if parse_backend(n).name in SLOW else n
            for n in names]


@pytest.mark.parametrize("name", registered_backends())
def test_availability_is_a_bool_and_a_reason(name):
    ok, why = get_backend(name).availability()
    assert isinstance(ok, bool) and isinstance(why, str)
    assert ok or why  # a backend that cannot run says why


@pytest.mark.parametrize("name", _marked(registered_backends()))
def test_every_available_backend_prepares_times_and_matches_eager(name):
    backend = get_backend(name)
    if not backend.availability()[0]:
        pytest.skip(backend.availability()[1])
    model, x = tiny()
    with torch.no_grad():
        expected = model(x).numpy()
    prepared = backend.prepare(model, x, PrepareContext("f32", 1))
    assert prepared.first_ms > 0
    assert {"convert_s", "compile_s", "precision_requested", "properties"} <= set(prepared.info)
    samples = prepared.time_block(4)
    assert len(samples) == 4 and all(s > 0 for s in samples)
    out = prepared.output()
    assert out.dtype == np.float32 and out.shape == expected.shape
    assert np.linalg.norm(out - expected) / np.linalg.norm(expected) < 1e-4
    json.dumps(prepared.info)  # stored with the cell: must be JSON


def _option_values(opt):
    if opt.kind is bool:
        return [True, False]
    if opt.choices:
        return list(opt.choices)
    if opt.kind in (int, float):
        return [v for v in (opt.lo, opt.hi) if v is not None] + list(opt.words)
    return [opt.default]


OPTION_CASES = [(name, key, value) for name in registered_backends()
                for key, (_, opt) in options_of(backend_class(name).Config).items()
                for value in _option_values(opt)]


@pytest.mark.parametrize("name, key, value", OPTION_CASES)
def test_every_option_value_round_trips_in_the_identity(name, key, value):
    spec = parse_backend(f"{name}[{key}={format_value(value)}]")
    assert parse_backend(spec.text) == spec
    opt = options_of(backend_class(name).Config)[key][1]
    if value == opt.default:  # the default is not spelled: one cell, not two
        assert "[" not in spec.text and spec.options == ()
    else:
        assert spec.options == ((key, value),) and f"{key}={format_value(value)}" in spec.text
    field = options_of(backend_class(name).Config)[key][0]
    assert getattr(get_backend(spec).config, field) == value  # the knob reaches the config


@pytest.mark.parametrize("name", registered_backends())
def test_unknown_option_names_the_valid_ones(name):
    declared = options_of(backend_class(name).Config)
    with pytest.raises(BackendError) as err:
        parse_backend(f"{name}[nosuchoption=1]")
    assert "unknown option 'nosuchoption'" in str(err.value)
    for key in declared:
        assert key in str(err.value)
    assert [o["name"] for o in backend_options(name)] == list(declared)


def test_options_are_canonical_and_say_did_you_mean():
    a = parse_backend("openvino:cpu[streams=4, hint=throughput]")
    b = parse_backend("openvino:CPU[hint=THROUGHPUT,streams=4]")
    assert a == b and a.text == "openvino:CPU[hint=THROUGHPUT,streams=4]"
    assert parse_backend("torch[layout=contiguous]").text == "torch"
    assert parse_backend("torch-compile[freezing=true]").text == "torch-compile"
    for text, needle in [
        ("torch[layuot=channels_last]", "did you mean layout?"),
        ("torch[layout=chanels_last]", "did you mean channels_last?"),
        ("openvino[hint=LATENCY,hint=THROUGHPUT]", "given twice"),
        ("openvino[streams=0]", "integer 1..1024|auto"),
        ("openvino[hint]", "needs a value"),
        ("torch-compile[freezing=maybe]", "true|false"),
        ("torch[layout=channels_last", "one [key=value,...] at the end"),
        ("torch[freezing=true]", "unknown option 'freezing'"),  # a torch-compile option
    ]:
        with pytest.raises(BackendError, match=re.escape(needle)):
            parse_backend(text)


@pytest.mark.parametrize("text, expected", [
    ("torch,openvino:CPU[hint=THROUGHPUT,streams=4]", ["torch", "openvino:CPU[hint=THROUGHPUT,streams=4]"]),
    ("openvino:HETERO:GPU,CPU[streams=2],torch[layout=channels_last]",
     ["openvino:HETERO:GPU,CPU[streams=2]", "torch[layout=channels_last]"]),
    ("torch-compile[freezing=false], torch-compile", ["torch-compile[freezing=false]", "torch-compile"]),
])
def test_split_backend_list_keeps_commas_inside_brackets(text, expected):
    assert split_backend_list(text) == expected


def test_registry_imports_neither_runtime():
    code = ("import sys, harness.backends as b, harness.run.config, reports; "
            "b.parse_backend('openvino:CPU[hint=THROUGHPUT]'); b.parse_backend('torch-compile'); "
            "print(sorted(m for m in ('torch', 'openvino') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_machine_info_merges_every_backend():
    info = machine_info()
    assert {"torch", "openvino"} <= set(info["versions"])
    assert isinstance(info["openvino_devices"], list)
    assert set(info["torch"]) == {"cuda_available", "num_threads", "mkldnn"}
    json.dumps(info)


def test_ladder_rungs_are_canonical_backends_ending_in_openvino():
    """The chain ends in OpenVINO; the other side's rungs follow it (``ladder.OTHERS``)."""
    assert ladder_backends()[0] == DEFAULT_BASELINE
    assert [parse_backend(b).text for b in ladder_backends()] == list(ladder_backends())
    assert len(set(r.adds for r in LADDER)) == len(LADDER)
    assert parse_backend(LADDER[-1].backend).name == "openvino"


@pytest.mark.parametrize("rung", _marked(ladder_backends()))
def test_each_rung_builds_and_matches_eager_on_a_tiny_spec(rung):
    import archs

    model, x = archs.build(TINY_SPEC)
    with torch.no_grad():
        expected = model(x).numpy()
    prepared = get_backend(rung).prepare(model, x, PrepareContext("f32", 1))
    out = prepared.output()
    assert np.linalg.norm(out - expected) / np.linalg.norm(expected) < 1e-4
    props = prepared.info["properties"]
    if "layout=channels_last" in rung:
        assert props["layout"] == "channels_last"
    if parse_backend(rung).name == "torch-compile":
        assert prepared.info["compile_s"] > 0  # recorded apart from latency
    if "backend=openvino" in rung:  # OpenVINO compiled it, and says what it resolved
        assert props["openvino_partitions"] >= 1
        assert all(p["INFERENCE_PRECISION_HINT"] == "f32" for p in props["openvino_properties"])
    elif parse_backend(rung).name == "torch-compile":
        assert props["inductor"]["freezing"] is ("freezing=false" not in rung)
        # freezing happened, not only was asked for: conv-BN folded, oneDNN weights prepacked
        passes = props["inductor_passes"]
        assert set(props["inductor_cache"]) <= {"fxgraph_cache_hit", "fxgraph_cache_miss",
                                                "fxgraph_cache_bypass"}
        if "freezing=false" in rung:
            assert passes == {}
        else:
            assert passes.get("binary_folding", 0) > 0, passes
            assert passes.get("mkldnn_conv_weight_pack_matcher_count", 0) > 0, passes
        assert {"layout_optimization", "cpp_wrapper", "max_autotune"} <= set(props["inductor"])


def test_dry_run_ladder_and_options_make_the_cell_identity(tmp_path):
    proc = run_cli("run", TINY_SPEC, "--ladder", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    cells = json.loads(proc.stdout)["cells"]
    assert [c["backend"] for c in cells] == list(ladder_backends())
    proc = run_cli("run", TINY_SPEC, "--ladder", "--backends", "torch", "--dry-run")
    assert proc.returncode == 2 and "--ladder" in proc.stderr
    cfg = tmp_path / "s.toml"
    cfg.write_text(f'[session]\nworkloads = ["{TINY_SPEC}"]\n'
                   'backends = ["torch", "openvino:cpu[streams=2,hint=throughput]"]\n')
    proc = run_cli("run", "--config", str(cfg), "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [c["backend"] for c in json.loads(proc.stdout)["cells"]] == [
        "torch", "openvino:CPU[hint=THROUGHPUT,streams=2]"]
    proc = run_cli("run", TINY_SPEC, "--backends", "torch,openvino[hint=fast]", "--dry-run")
    assert proc.returncode == 2 and "LATENCY|THROUGHPUT" in proc.stderr


def test_options_are_live_knobs_end_to_end(tmp_path):
    """OpenVINO's hint and streams reach compile_model; the store keys the cell by the text."""
    store = tmp_path / "r" / "s.sqlite"
    proc = run_cli("run", TINY_SPEC, "--backends",
                   "torch[layout=channels_last],openvino:CPU[hint=THROUGHPUT,streams=2]",
                   "--budget", "0.5", "--threads", "1", "--store", str(store), "--no-report",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    backends = {c["backend"] for c in json.loads(proc.stdout)["cells"]}
    assert backends == {"torch[layout=channels_last]", "openvino:CPU[hint=THROUGHPUT,streams=2]"}
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as con:
        rows = dict(con.execute("select backend, meta from cells").fetchall())
    ov = json.loads(rows["openvino:CPU[hint=THROUGHPUT,streams=2]"])
    assert ov["compile_config"]["PERFORMANCE_HINT"] == "THROUGHPUT"  # what was asked...
    assert ov["compile_config"]["NUM_STREAMS"] == 2
    assert ov["properties"]["PERFORMANCE_HINT"] == "THROUGHPUT"  # ...and what OpenVINO resolved
    assert 1 <= ov["properties"]["NUM_STREAMS"] <= 2  # capped by the thread count
    torch_props = json.loads(rows["torch[layout=channels_last]"])["properties"]
    assert torch_props["layout"] == "channels_last"


def test_torch_compile_without_a_compiler_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    ok, why = get_backend("torch-compile").availability()
    assert not ok and "C++ compiler" in why and "no-such-compiler-here" in why
    assert get_backend("torch").availability() == (True, "")  # eager needs none


@pytest.mark.parametrize("name", _marked(registered_backends()))
def test_a_model_that_writes_its_input_is_flagged_and_its_output_is_the_seeded_inputs(name):
    backend = get_backend(name)
    if not backend.availability()[0]:
        pytest.skip(backend.availability()[1])
    torch.manual_seed(0)
    # a first layer that writes into the network's input; iterated, it drives every value to 0
    model = torch.nn.Sequential(torch.nn.Hardswish(inplace=True),
                                torch.nn.Conv2d(3, 4, 3, padding=1)).eval()
    x = torch.randn(1, 3, 8, 8)
    seeded = x.clone()
    with torch.no_grad():
        expected = model(x.clone()).numpy()
    prepared = backend.prepare(model, x, PrepareContext("f32", 1))
    prepared.time_block(8)
    assert torch.equal(x, seeded)  # the worker's tensor (reference, parity) is as seeded
    out = prepared.output()  # the parity output is of the seeded input, not of the 9th call's
    assert np.linalg.norm(out - expected) / np.linalg.norm(expected) < 1e-4
    if isinstance(prepared, TorchPrepared):  # eager and compiled PyTorch time a tensor they write
        assert prepared.info["properties"]["writes_input"] is True
        assert "writes into its input" in prepared.info["flag"]
    else:  # the runtime reads a copy: its timed calls all see the seeded input
        assert "flag" not in prepared.info
    plain, px = tiny()
    fine = backend.prepare(plain, px, PrepareContext("f32", 1))
    assert "flag" not in fine.info
    if isinstance(fine, TorchPrepared):
        assert fine.info["properties"]["writes_input"] is False


def test_a_nan_in_the_input_is_not_taken_for_a_write():
    plain, x = tiny()
    x = x.clone()
    x.view(-1)[0] = float("nan")  # NaN != NaN: an equality test would flag every call
    prepared = get_backend("torch").prepare(plain, x, PrepareContext("f32", 1))
    assert prepared.info["properties"]["writes_input"] is False and "flag" not in prepared.info
