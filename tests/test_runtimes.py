"""The other side's full range (issue 23): int8 (NNCF, PT2E), bf16 rules, ONNX Runtime and
torch.compile(backend="openvino"), each as a user meets it, on tiny models.

Backends whose package is absent are skipped with the reason their ``supports``/``availability``
gives; the parity check for quantized models is shown to fail on a broken quantization.
"""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
import torch

from harness.backends import PrepareContext, get_backend, registered_backends
from harness.backends import precision as precision_mod
from harness.measure import parity
from harness.run.worker import Worker
from tests.conftest import run_cli

TINY_SPEC = "plain:depth=1,res=32,width=8"
SETUP = {"op": "setup", "spec": TINY_SPEC, "seed": 0, "threads": 1}


def _need(backend, precision):
    ok, why = backend.availability()
    if ok:
        ok, why = backend.supports(precision)
    if not ok:
        pytest.skip(why)


def _judge(prepared, model, x, n=16):
    """``judge_quantized`` of a prepared int8 model against the f32 module, as the worker does."""
    rng = np.random.default_rng(parity.QUANT_SEED)
    inputs = [rng.standard_normal(tuple(x.shape), dtype=np.float32) for _ in range(n)]
    with torch.inference_mode():
        ref = [model(torch.from_numpy(i)).numpy() for i in inputs]
    return parity.judge_quantized(ref, prepared.outputs_for(inputs))


@pytest.mark.parametrize("name", registered_backends())
def test_bf16_is_skipped_with_the_reason_on_a_cpu_without_it(monkeypatch, name):
    """Simulated flags: an x86 CPU with AVX-512 but neither AVX512_BF16 nor AMX."""
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    ok, why = get_backend(name).supports("bf16")
    assert not ok and why
    if name in ("torch", "openvino"):  # both have a bf16 path: the CPU is the reason
        assert "no bf16 instructions" in why and "avx512_bf16" in why
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda: frozenset({"avx512f", "amx_bf16"}))
    assert get_backend("torch").supports("bf16") == (True, "")
    # and the worker answers a bf16 setup with the reason, before building anything
    answer = Worker("openvino:CPU", 1).handle({**SETUP, "precision": "bf16"}) if name == "torch" else None
    if answer is not None:
        assert answer["ok"], answer  # this CPU has amx_bf16 now
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda: frozenset({"avx2"}))
    answer = Worker("torch", 1).handle({**SETUP, "precision": "bf16"})
    assert answer == {"ok": False, "kind": "availability", "error": answer["error"]}
    assert "no bf16 instructions" in answer["error"]


def test_precisions_a_backend_has_no_path_for_are_skipped_with_the_reason():
    ok, why = get_backend("torch").supports("int8")
    assert not ok and "has no int8 path" in why
    ok, why = get_backend("torch-compile[freezing=false]").supports("int8")
    assert not ok and "freezing" in why
    assert not get_backend("onnxruntime").supports("bf16")[0]


def test_openvino_int8_is_nncf_quantized_cached_and_agrees_with_f32(tmp_path):
    import archs

    backend = get_backend("openvino:CPU[calibration=16]")
    _need(backend, "int8")
    model, x = archs.build(TINY_SPEC)
    ctx = PrepareContext("int8", 1, cache_key="tiny", cache_dir=str(tmp_path))
    prepared = backend.prepare(model, x, ctx)
    q = prepared.info["quantization"]
    assert q["fast_bias_correction"] is False and q["calibration"]["samples"] == 16
    assert q["nncf"] and q["cache_hit"] is False and q["quantize_s"] > 0
    assert prepared.info["precision_effective"] == "int8"
    props = prepared.info["properties"]
    assert props["INFERENCE_PRECISION_HINT"] == "f32"  # the float part forced, not bf16
    assert {"u8", "i8"} & set(props["runtime_precisions"])
    verdict = _judge(prepared, model, x)
    assert verdict["ok"], verdict
    again = backend.prepare(model, x, ctx)  # a second run quantizes nothing
    assert again.info["quantization"]["cache_hit"] is True
    assert again.info["quantization"]["ir_path"] == q["ir_path"]
    np.testing.assert_array_equal(again.output(), prepared.output())
    json.dumps(prepared.info)


def test_a_broken_quantization_is_caught_by_the_int8_parity(monkeypatch):
    """Calibrating on zeros gives activation scales of zero: the judge must flag it."""
    import archs
    from harness.backends import openvino_int8

    backend = get_backend("openvino:CPU[calibration=8]")
    _need(backend, "int8")
    monkeypatch.setattr(openvino_int8, "calibration_inputs",
                        lambda shape, n, seed: [np.zeros(shape, np.float32)] * n)
    model, x = archs.build(TINY_SPEC)
    prepared = backend.prepare(model, x, PrepareContext("int8", 1))
    verdict = _judge(prepared, model, x)
    assert not verdict["ok"] and verdict["rel_l2"] > parity.QUANT_TOLERANCE["rel_l2"], verdict
    assert "int8 vs f32" in parity.describe(verdict)


def test_int8_cli_end_to_end_records_parity_and_skips_what_has_no_path(tmp_path):
    store = tmp_path / "s.sqlite"
    proc = run_cli("run", TINY_SPEC, "--backends", "torch,openvino:CPU[calibration=16]",
                   "--precision", "int8", "--threads", "1", "--budget", "0.3",
                   "--store", str(store), "--no-report", "--json")
    cells = {c["backend"]: c for c in json.loads(proc.stdout)["cells"]}
    assert cells["torch"]["status"] == "skipped" and "no int8 path" in cells["torch"]["reason"]
    ov = cells["openvino:CPU[calibration=16]"]
    if "nncf" in (ov.get("reason") or ""):
        pytest.skip(ov["reason"])
    assert ov["status"] == "done", ov
    assert ov["parity"]["ok"] and ov["parity"]["inputs"] == parity.QUANT_INPUTS
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as con:
        meta = json.loads(con.execute("select meta from cells where backend like 'openvino%'").fetchone()[0])
    assert meta["quantization"]["calibration"]["samples"] == 16
    assert meta["precision_effective"] == "int8"


def test_onnxruntime_session_is_explicit_and_its_export_cached(tmp_path):
    import archs

    backend = get_backend("onnxruntime")
    _need(backend, "f32")
    model, x = archs.build(TINY_SPEC)
    ctx = PrepareContext("f32", 2, cache_key="tiny", cache_dir=str(tmp_path))
    first = backend.prepare(model, x, ctx)
    props = first.info["properties"]
    assert props["providers"] == ["CPUExecutionProvider"]
    assert props["intra_op_num_threads"] == 2 and props["inter_op_num_threads"] == 1
    assert props["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert "dynamo=True" in props["exporter"] and props["opset"]
    assert first.info["ir_cache_hit"] is False and first.info["convert_s"] > 0
    second = backend.prepare(model, x, ctx)
    assert second.info["ir_cache_hit"] is True and second.info["convert_s"] == 0
    with torch.no_grad():
        expected = model(x).numpy()
    assert parity.rel_l2(expected, second.output()) < 1e-4
    inputs = [np.ones(tuple(x.shape), np.float32)]
    with torch.no_grad():
        assert parity.rel_l2(model(torch.from_numpy(inputs[0])).numpy(),
                             second.outputs_for(inputs)[0]) < 1e-4


def test_onnxruntime_later_process_reuses_the_known_key_without_tracing(tmp_path, monkeypatch):
    """A cell's later process (``known_artefact_key``) opens the ONNX file its first process
    keyed without tracing the model to key it again; an unknown key is keyed from the model."""
    import archs
    from harness.backends import artefacts

    backend = get_backend("onnxruntime")
    _need(backend, "f32")
    model, x = archs.build(TINY_SPEC)
    first = backend.prepare(model, x, PrepareContext("f32", 1, cache_dir=str(tmp_path)))
    assert first.info["artefact_key_reused"] is False and first.info["artefact_key"]
    traced: list[int] = []
    real = artefacts.trace
    monkeypatch.setattr(artefacts, "trace", lambda *a: traced.append(1) or real(*a))
    again = backend.prepare(model, x, PrepareContext(
        "f32", 1, cache_dir=str(tmp_path), known_artefact_key=first.info["artefact_key"]))
    assert traced == [] and again.info["artefact_key_reused"] is True
    assert again.info["ir_cache_hit"] is True
    np.testing.assert_allclose(again.output(), first.output(), rtol=1e-6)
    other = backend.prepare(model, x, PrepareContext(
        "f32", 1, cache_dir=str(tmp_path), known_artefact_key="onnx:gone"))
    assert traced == [1] and other.info["artefact_key"] == first.info["artefact_key"]


def test_torch_compile_openvino_passes_precision_and_threads_and_reads_them_back():
    import archs

    backend = get_backend("torch-compile[backend=openvino]")
    _need(backend, "f32")
    model, x = archs.build(TINY_SPEC)
    with torch.no_grad():
        expected = model(x).numpy()
    prepared = backend.prepare(model, x, PrepareContext("f32", 1))
    props = prepared.info["properties"]
    assert props["compile_backend"] == "openvino" and props["openvino_partitions"] >= 1
    config = props["torch_compile_options"]["config"]
    assert config["INFERENCE_PRECISION_HINT"] == "f32" and config["INFERENCE_NUM_THREADS"] == "1"
    for resolved in props["openvino_properties"]:  # what OpenVINO resolved, per partition
        assert resolved["INFERENCE_PRECISION_HINT"] == "f32"
        assert resolved["INFERENCE_NUM_THREADS"] == 1
    assert parity.rel_l2(expected, prepared.output()) < 1e-4


@pytest.mark.slow
def test_pytorch_int8_is_pt2e_lowered_to_int8_kernels():
    import archs

    backend = get_backend("torch-compile[calibration=8]")
    _need(backend, "int8")
    model, x = archs.build(TINY_SPEC)
    prepared = backend.prepare(model, x, PrepareContext("int8", 1))
    props = prepared.info["properties"]
    assert "X86InductorQuantizer" in props["quantization"]["method"]
    assert props["quantization"]["calibration"]["samples"] == 8
    assert props["inductor_passes"].get("qconv_weight_prepack_matcher_count", 0) > 0, props
    assert _judge(prepared, model, x)["ok"]


@pytest.mark.slow
def test_torch_bf16_cast_runs_bf16_weights_and_keeps_the_module_f32():
    import archs

    backend = get_backend("torch[bf16=cast]")
    _need(backend, "bf16")
    model, x = archs.build(TINY_SPEC)
    prepared = backend.prepare(model, x, PrepareContext("bf16", 1))
    assert "cast to bfloat16 once" in prepared.info["properties"]["precision_method"]
    assert next(prepared.model.parameters()).dtype == torch.bfloat16
    assert next(model.parameters()).dtype == torch.float32  # the reference stays f32
    with torch.no_grad():
        assert parity.rel_l2(model(x).numpy(), prepared.output()) < parity.TOLERANCE["bf16"]
