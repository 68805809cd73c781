"""Backends in-process: the registry's grammar, availability, preparation, the IR cache."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import archs
from harness.backends import (
    BackendError,
    BackendSpec,
    PrepareError,
    get_backend,
    ircache,
    parse_backend,
    registered_backends,
    split_backend_list,
)
from harness.backends import base as base_module
from harness.backends.base import PrepareContext as Ctx
from harness.backends.base import readable, time_calls


def tiny() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5),
    ).eval()
    return model, torch.randn(1, 3, 16, 16)


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    """One conversion shared by the cache tests: ``(cache_dir, first prepare's info)``."""
    cache = tmp_path_factory.mktemp("ir")
    model, x = tiny()
    first = get_backend("openvino:CPU").prepare(
        model, x, Ctx("f32", 1, cache_key="k", cache_dir=str(cache)))
    return cache, first.info, first.output()


def test_registry_names_the_three_backends():
    assert {"torch", "torch-compile", "openvino"} <= set(registered_backends())


@pytest.mark.parametrize("text, canonical, device", [
    ("torch", "torch", "cpu"),
    ("torch:cpu", "torch", "cpu"),
    (" Torch:CUDA ", "torch:cuda", "cuda"),
    ("torch:cuda:1", "torch:cuda:1", "cuda:1"),
    ("torch-compile", "torch-compile", "cpu"),
    ("openvino", "openvino:CPU", "CPU"),
    ("openvino:cpu", "openvino:CPU", "CPU"),
    ("openvino:GPU.1", "openvino:GPU.1", "GPU.1"),
    ("openvino:AUTO", "openvino:AUTO", "AUTO"),
    ("openvino:hetero:gpu, cpu", "openvino:HETERO:GPU,CPU", "HETERO:GPU,CPU"),
])
def test_parse_backend_is_canonical(text, canonical, device):
    spec = parse_backend(text)
    assert (spec.text, spec.device) == (canonical, device)
    assert parse_backend(spec.text) == spec  # round-trips
    assert isinstance(hash(spec), int)


@pytest.mark.parametrize("text, needle", [
    ("tensorrt", "registered: onnxruntime, openvino, torch, torch-compile"),
    ("", "expected one of"),
    ("torch:", "empty device"),
    ("torch:tpu", "cpu, cuda or cuda:N"),
    ("openvino:CPU,GPU", "only valid after AUTO"),
    ("openvino:HETERO", "needs a device list"),
    ("openvino:gpu!", "expected a name like"),
])
def test_parse_backend_refuses_with_a_reason(text, needle):
    with pytest.raises(BackendError, match=needle):
        parse_backend(text)


def test_backend_spec_is_frozen():
    spec = parse_backend("torch")
    with pytest.raises(AttributeError):
        spec.name = "openvino"  # type: ignore[misc]
    assert isinstance(spec, BackendSpec)


@pytest.mark.parametrize("text, expected", [
    ("torch,openvino", ["torch", "openvino"]),
    ("torch, openvino:HETERO:GPU,CPU", ["torch", "openvino:HETERO:GPU,CPU"]),
    ("openvino:MULTI:GPU,CPU,torch-compile,", ["openvino:MULTI:GPU,CPU", "torch-compile"]),
    ("torch,bogus", ["torch", "bogus"]),  # left for parse_backend to name
])
def test_split_backend_list(text, expected):
    assert split_backend_list(text) == expected


def test_split_backend_list_refuses_empty():
    with pytest.raises(BackendError):
        split_backend_list(" , ")


def test_torch_cpu_and_openvino_cpu_are_available():
    assert get_backend("torch").availability() == (True, "")
    assert get_backend("openvino:CPU").availability() == (True, "")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_torch_cuda_unavailable_says_why():
    ok, why = get_backend("torch:cuda").availability()
    assert not ok
    assert "CUDA is not available" in why and torch.__version__ in why


def test_openvino_missing_device_names_available_ones():
    import openvino as ov

    available = ov.Core().available_devices
    ok, why = get_backend("openvino:NPU").availability()
    assert not ok
    assert "NPU" in why and all(d in why for d in available)
    if "GPU" not in " ".join(available):
        ok, why = get_backend("openvino:HETERO:GPU,CPU").availability()
        assert not ok and "GPU" in why and "available devices" in why


def test_time_calls_counts_and_restores_gc():
    calls = []
    samples = time_calls(lambda: calls.append(1), 7)
    assert len(samples) == 7 == len(calls)
    assert all(s >= 0 for s in samples)
    assert gc.isenabled()
    with pytest.raises(ValueError):
        time_calls(lambda: None, 0)


def test_time_calls_reports_milliseconds_of_a_known_sleep():
    # a 20 ms sleep must read 20 ms: sleep never returns early, and a shared machine may only add.
    # A unit error (us or s read as ms) is off by 1000x and lands far outside [20, 200).
    samples = time_calls(lambda: time.sleep(0.020), 3)
    assert all(20.0 <= s < 200.0 for s in samples), samples


def test_time_calls_converts_nanoseconds_exactly(monkeypatch):
    ticks = iter(range(0, 10 * 2_500_000, 2_500_000))  # each clock read 2.5 ms after the last
    monkeypatch.setattr(base_module, "time", SimpleNamespace(perf_counter_ns=lambda: next(ticks)))
    assert time_calls(lambda: None, 3) == [2.5, 2.5, 2.5]


class _Sleeps(torch.nn.Module):
    """A model whose forward takes a known 20 ms, to check the backend's timed block."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.020)
        return x + 1


def test_torch_backend_times_a_known_forward_in_milliseconds():
    prepared = get_backend("torch").prepare(_Sleeps().eval(), torch.zeros(1, 3), Ctx("f32", 1))
    assert 20.0 <= prepared.first_ms < 1000.0
    assert all(20.0 <= s < 200.0 for s in prepared.time_block(3))


def test_readable_drops_cpp_locations_and_truncates():
    exc = RuntimeError("Exception from src/core.cpp:1:\nreal problem\n" + "x" * 2000)
    text = readable(exc, limit=100)
    assert text.startswith("RuntimeError: real problem") and len(text) == 100
    assert "src/core.cpp" not in text


def test_torch_prepare_records_threads_and_matches_eager():
    model, x = tiny()
    prepared = get_backend("torch").prepare(model, x, Ctx("f32", 1))
    info = prepared.info
    assert info["properties"]["num_threads"] == 1 == torch.get_num_threads()
    assert info["properties"]["precision_method"] == "float32"
    assert info["precision_effective"] == "f32" and info["ir_cache_hit"] is None
    assert prepared.first_ms > 0
    assert len(prepared.time_block(5)) == 5
    with torch.no_grad():
        expected = model(x).numpy()
    out = prepared.output()
    assert out.dtype == np.float32 and out.shape == (1, 5)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_torch_bf16_goes_through_autocast():
    model, x = tiny()
    prepared = get_backend("torch").prepare(model, x, Ctx("bf16", 1))
    assert "autocast" in prepared.info["properties"]["precision_method"]
    with torch.no_grad():
        expected = model(x).numpy()
    out = prepared.output()
    assert out.dtype == np.float32
    assert 0 < rel_l2(out, expected) < 5e-2  # bf16 really ran: not bit-equal, still close


def test_prepare_refuses_bad_precision_and_threads():
    model, x = tiny()
    with pytest.raises(BackendError, match="precision"):
        get_backend("torch").prepare(model, x, Ctx("fp16", 1))
    with pytest.raises(BackendError, match="threads"):
        get_backend("openvino").prepare(model, x, Ctx("f32", 0))


def test_openvino_prepare_is_static_explicit_and_matches_torch(tmp_path):
    model, x = tiny()
    prepared = get_backend("openvino:CPU").prepare(
        model, x, Ctx("f32", 1, cache_key="tiny", cache_dir=str(tmp_path)))
    props = prepared.info["properties"]
    assert props["INFERENCE_PRECISION_HINT"] == "f32"
    assert props["PERFORMANCE_HINT"] == "LATENCY"
    assert props["NUM_STREAMS"] == 1 and props["INFERENCE_NUM_THREADS"] == 1
    assert props["EXECUTION_DEVICES"] == ["CPU"]
    assert "ENABLE_CPU_PINNING" in props and props["runtime_precisions"]
    assert prepared.info["precision_effective"] == "f32"
    # forced and read back: nothing ran bf16 even on a CPU that has it (OpenVINO's default)
    assert set(props["runtime_precisions"]) <= {"f32", "i32", "i64", "dynamic", "undefined"}
    assert prepared.cm.input(0).get_partial_shape().is_static
    assert prepared.first_ms > 0 and prepared.info["compile_s"] > 0
    samples = prepared.time_block(5)
    assert len(samples) == 5 and all(s > 0 for s in samples)
    with torch.no_grad():
        expected = model(x).numpy()
    out = prepared.output()
    assert out.dtype == np.float32 and rel_l2(out, expected) < 1e-4
    out[:] = 0  # a copy: the next read is unaffected
    assert rel_l2(prepared.output(), expected) < 1e-4


def test_openvino_lean_infer_agrees_with_public_infer(tiny_cache):
    model, x = tiny()
    prepared = get_backend("openvino:CPU").prepare(
        model, x, Ctx("f32", 1, cache_key="k", cache_dir=str(tiny_cache[0])))
    public = prepared.req.infer()[0].copy()
    np.testing.assert_array_equal(prepared.output(), public)
    assert prepared._infer is not prepared.req.infer  # the lean path is the one in use


def test_openvino_bf16_records_what_was_chosen(tiny_cache):
    model, x = tiny()
    prepared = get_backend("openvino:CPU").prepare(
        model, x, Ctx("bf16", 1, cache_key="k", cache_dir=str(tiny_cache[0])))
    info = prepared.info
    assert info["precision_requested"] == "bf16"
    chosen = info["properties"]["INFERENCE_PRECISION_HINT"]
    assert info["precision_effective"] == chosen
    caps = info["properties"]["devices"]["CPU"]["OPTIMIZATION_CAPABILITIES"]
    if "BF16" not in caps:
        assert chosen == "f32"  # no bf16 hardware: recorded as f32, not pretended


def test_openvino_conversion_failure_is_readable():
    class Talks(torch.nn.Module):
        def forward(self, x):
            return "not a tensor"

    with pytest.raises(PrepareError) as err:
        get_backend("openvino:CPU").prepare(Talks(), torch.zeros(1, 3), Ctx("f32", 1))
    assert err.value.kind == "conversion"
    assert str(err.value).startswith("OpenVINO conversion failed")
    assert len(str(err.value)) < 700 and "\n" not in str(err.value)


def test_ir_cache_second_prepare_converts_nothing(tiny_cache):
    cache, first, first_out = tiny_cache
    model, x = tiny()
    second = get_backend("openvino:CPU").prepare(
        model, x, Ctx("f32", 1, cache_key="k", cache_dir=str(cache)))
    assert first["ir_cache_hit"] is False and first["convert_s"] > 0
    assert second.info["ir_cache_hit"] is True and second.info["convert_s"] == 0.0
    assert second.info["ir_path"] == first["ir_path"]
    np.testing.assert_array_equal(second.output(), first_out)


def test_a_later_process_reuses_the_known_key_without_tracing(tiny_cache, monkeypatch):
    """A cell's later process (``known_artefact_key``) loads the IR its first process keyed
    without tracing the model again; a key the cache does not hold is traced and keyed as
    always, and what runs is the same network either way."""
    from harness.backends import artefacts

    cache, first, first_out = tiny_cache
    model, x = tiny()
    real_trace = artefacts.trace
    traced: list[int] = []
    monkeypatch.setattr(artefacts, "trace", lambda *a: traced.append(1) or real_trace(*a))
    again = get_backend("openvino:CPU").prepare(
        model, x, Ctx("f32", 1, cache_dir=str(cache), known_artefact_key=first["artefact_key"]))
    assert traced == [] and again.info["artefact_key_reused"] is True
    assert again.info["artefact_key"] == first["artefact_key"] and again.info["ir_cache_hit"]
    np.testing.assert_array_equal(again.output(), first_out)

    unknown = get_backend("openvino:CPU").prepare(
        model, x, Ctx("f32", 1, cache_dir=str(cache), known_artefact_key="openvino-ir:gone"))
    assert traced == [1] and unknown.info["artefact_key_reused"] is False
    assert unknown.info["artefact_key"] == first["artefact_key"]  # keyed from the model


def test_ir_cache_treats_damaged_entry_as_miss(tiny_cache, tmp_path):
    cache, first, first_out = tiny_cache
    for f in cache.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / Path(first["ir_path"]).name).write_text("<net broken")
    model, x = tiny()
    again = get_backend("openvino:CPU").prepare(
        model, x, Ctx("f32", 1, cache_key="k", cache_dir=str(tmp_path)))
    assert again.info["ir_cache_hit"] is False
    assert rel_l2(again.output(), first_out) < 1e-6

    # a later process whose known entry is damaged: not reused, keyed from the model, rewritten
    (tmp_path / Path(first["ir_path"]).name).write_text("<net broken")
    later = get_backend("openvino:CPU").prepare(
        model, x, Ctx("f32", 1, cache_dir=str(tmp_path), known_artefact_key=first["artefact_key"]))
    assert later.info["ir_cache_hit"] is False and later.info["artefact_key_reused"] is False
    assert later.info["artefact_key"] == first["artefact_key"] and later.info["trace_s"] > 0
    assert rel_l2(later.output(), first_out) < 1e-6


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_ir_cache_keeps_weights_in_f32(tmp_path):
    model = torch.nn.Linear(64, 64).eval()
    calls = []

    def convert():
        import openvino as ov

        calls.append(1)
        return ov.convert_model(model, example_input=torch.zeros(1, 64), input=[(1, 64)])

    _, info = ircache.load_or_convert(tmp_path, "lin", convert)
    weights = sum(p.numel() for p in model.parameters())
    bin_path = tmp_path / (ircache.entry_stem(tmp_path, "lin").name + ".bin")
    assert bin_path.stat().st_size >= 4 * weights  # fp16 compression would halve it
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers
    ircache.load_or_convert(tmp_path, "lin", convert)
    assert len(calls) == 1


def test_ir_cache_key_includes_openvino_version(tmp_path, monkeypatch):
    import openvino as ov

    before = ircache.entry_stem(tmp_path, "k")
    assert ircache.entry_stem(tmp_path, "k2") != before
    monkeypatch.setattr(ov, "get_version", lambda: "0.0.0-other")
    assert ircache.entry_stem(tmp_path, "k") != before


@pytest.mark.slow
def test_small_family_spec_runs_on_both_backends():
    model, x = archs.build("mobilenetv2:res=32,width=0.35")
    ref = get_backend("torch").prepare(model, x, Ctx("f32", 1)).output()
    out = get_backend("openvino").prepare(model, x, Ctx("f32", 1)).output()
    assert np.isfinite(ref).all() and rel_l2(out, ref) < 1e-4


@pytest.mark.slow
def test_torch_compile_records_compile_time_apart():
    model, x = tiny()
    prepared = get_backend("torch-compile").prepare(model, x, Ctx("f32", 1))
    assert prepared.info["compile_s"] > 0.5  # inductor really compiled
    assert prepared.first_ms < prepared.info["compile_s"] * 1e3
    assert prepared.info["properties"]["compile_backend"] == "inductor"
    with torch.no_grad():
        expected = model(x).numpy()
    assert rel_l2(prepared.output(), expected) < 1e-4
    assert len(prepared.time_block(3)) == 3
