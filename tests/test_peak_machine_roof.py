"""The machine's roof is the best any runtime reaches (issue 23): ``accelbench peak`` measures a
GEMM roof per runtime and precision, the machine's roof per precision is the best of them, each
cell is judged against both its own runtime's roof and the machine's, the roofline draws both
and the report says when a runtime's own roof is far below the machine's. Peaks stored before
(f32 only, keyed by backend name) still read."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from harness.cli.info import peak_text
from harness.counters import derive
from harness.counters.roofs import (
    far_below,
    gemm_roofs,
    machine_roof,
    roof_precision,
    runtime_roof,
)
from harness.machine import peak
from harness.measure.results import CellKey, CellResult, SessionInfo
from reports import build_report
from reports.render import render_markdown
from reports.roofline import compute_roof_lines, plot_roofline, roofline_points

# as in the issue: a Zen 5 where PyTorch's f32 GEMM runs at under half of OpenVINO's
FIGURES = {("torch", "f32"): 197.0, ("openvino:CPU", "f32"): 431.0,
           ("torch", "bf16"): 600.0, ("openvino:CPU", "bf16"): 744.0,
           ("openvino:CPU", "int8"): 1500.0}
PEAKS = {"gemm_gflops": {"f32": {"torch": 197.0, "openvino:CPU": 431.0},
                         "bf16": {"torch": 600.0, "openvino:CPU": 744.0},
                         "int8": {"openvino:CPU": 1500.0}},
         "gflops": {"torch": 197.0, "openvino:CPU": 431.0}, "bandwidth_gbs": 10.0}
OLD = {"gflops": {"torch": 100.0, "openvino": 200.0, "broken": None}, "bandwidth_gbs": 10.0}


def _stub_gemm(failing=()):
    def gemm(backend, n, threads, seconds, precision="f32"):
        head = {"backend": backend, "n": n, "threads": threads, "precision": precision}
        if (backend, precision) in failing:
            return {**head, "error": f"GEMM through {backend} at {precision} failed"}
        g = FIGURES[(backend, precision)]
        return {**head, "gflops": {"median": g, "ci95": [g - 1, g + 1], "n": 10}}
    return gemm


def test_measure_peaks_keys_roofs_by_precision_and_the_machine_roof_is_the_best(monkeypatch):
    # a bf16 CPU, whatever runs the test (a Zen 2 has no bf16 instructions and skips bf16)
    monkeypatch.setattr("harness.backends.base.cpu_bf16", lambda: (True, ""))
    ticks = iter(range(10**9))
    monkeypatch.setattr(peak, "CLOCK", lambda: next(ticks) * 2.0**-10)
    monkeypatch.setattr(peak, "gemm", _stub_gemm())
    got = peak.measure_peaks({"id": "m"}, 2, ["torch", "openvino:CPU"], rounds=1,
                             triad_elements_override=1000)
    assert got["gemm_gflops"] == PEAKS["gemm_gflops"]
    assert got["gflops"] == {"torch": 197.0, "openvino:CPU": 431.0}  # f32, as stored before
    assert got["gemm_gflops_ci95"]["bf16"]["torch"] == [599.0, 601.0]
    assert got["machine_gflops"] == {"f32": {"gflops": 431.0, "backend": "openvino:CPU"},
                                     "bf16": {"gflops": 744.0, "backend": "openvino:CPU"},
                                     "int8": {"gflops": 1500.0, "backend": "openvino:CPU"}}
    assert "torch has no int8 path" in got["gemm_skipped"]["int8"]["torch"]
    # the best is a max, not the first or the last measured: torch wins bf16 here
    faster = {**FIGURES, ("torch", "bf16"): 800.0}
    monkeypatch.setattr(peak, "gemm", lambda b, n, t, s, precision="f32": {
        "backend": b, "n": n, "gflops": {"median": faster[(b, precision)], "ci95": None}})
    got = peak.measure_peaks({"id": "m"}, 2, ["openvino:CPU", "torch"], rounds=1,
                             triad_elements_override=1000, precisions=["bf16"])
    assert got["machine_gflops"] == {"bf16": {"gflops": 800.0, "backend": "torch"}}
    assert got["gflops"] == {} and set(got["gemm_gflops"]) == {"bf16"}


def test_a_cpu_without_bf16_and_a_failed_gemm_are_skipped_with_the_reason(monkeypatch):
    from harness.backends import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    ticks = iter(range(10**9))
    monkeypatch.setattr(peak, "CLOCK", lambda: next(ticks) * 2.0**-10)
    monkeypatch.setattr(peak, "gemm", _stub_gemm(failing={("openvino:CPU", "f32")}))
    got = peak.measure_peaks({"id": "m"}, 2, ["torch", "openvino:CPU"], rounds=2,
                             triad_elements_override=1000, precisions=["f32", "bf16"])
    assert got["gemm_gflops"] == {"f32": {"torch": 197.0}}
    skipped = got["gemm_skipped"]
    assert set(skipped["bf16"]) == {"torch", "openvino:CPU"}
    assert all("no bf16 instructions" in why for why in skipped["bf16"].values())
    assert skipped["f32"] == {"openvino:CPU": "GEMM through openvino:CPU at f32 failed"}
    assert got["machine_gflops"] == {"f32": {"gflops": 197.0, "backend": "torch"}}


def test_a_gemm_that_ran_another_precision_is_no_roof_of_the_one_asked(monkeypatch):
    import harness.backends as backends

    class Prepared:
        info = {"precision_effective": "f32"}  # as OpenVINO falling back from bf16

        def time_block(self, n):
            return [1.0] * n

    fake = SimpleNamespace(prepare=lambda model, x, ctx: Prepared())
    monkeypatch.setattr(backends, "get_backend", lambda text: fake)
    got = peak.gemm_in_process("torch", 64, 1, seconds=0.0, precision="bf16")
    assert "gflops" not in got and "ran f32 when asked for bf16" in got["error"]
    Prepared.info = {"precision_effective": "bf16"}
    got = peak.gemm_in_process("torch", 64, 1, seconds=0.0, precision="bf16")
    assert got["gflops"]["median"] == pytest.approx(2 * 64**3 / 1e6)  # 1 ms each


def test_int8_gemms_calibrate_on_a_few_inputs():
    assert peak.gemm_backend("openvino:CPU", "int8") == \
        f"openvino:CPU[calibration={peak.GEMM_CALIBRATION}]"
    assert peak.gemm_backend("openvino:CPU[calibration=7]", "int8") == \
        "openvino:CPU[calibration=7]"
    assert peak.gemm_backend("openvino:CPU", "f32") == "openvino:CPU"
    assert peak.gemm_backend("onnxruntime", "int8") == "onnxruntime"  # no such option


def test_a_cell_has_its_own_runtimes_fraction_and_the_machines():
    raw = {"source": "perf", "misses_per_inference": 10.0}  # 2e9 FLOP / 640 B: compute-bound
    d = derive(raw, flops=2e9, median_ms=2e9 / 98.5e6, backend="torch", peaks=PEAKS)
    assert d["achieved_gflops"] == pytest.approx(98.5)
    assert d["fraction_of_peak"] == pytest.approx(0.5)  # half of torch's own 197
    assert d["fraction_of_machine_peak"] == pytest.approx(98.5 / 431.0)
    assert d["machine_attainable_gflops"] == 431.0 and d["machine_roof_runtime"] == "openvino:CPU"
    # bf16: against the bf16 roofs; the best runtime's cell has equal fractions
    d = derive(raw, flops=2e9, median_ms=2e9 / 372e6, backend="openvino:CPU[hint=THROUGHPUT]",
               peaks=PEAKS, precision="bf16")
    assert d["fraction_of_peak"] == d["fraction_of_machine_peak"] == pytest.approx(0.5)
    assert d["roof_precision"] == "bf16"
    # memory-bound: both roofs are the bandwidth's, so both fractions agree
    low = {"source": "model", "arithmetic_intensity": 2.0}
    d = derive(low, flops=2e6, median_ms=0.2, backend="torch", peaks=PEAKS)
    assert d["fraction_of_peak"] == d["fraction_of_machine_peak"] == pytest.approx(0.5)
    # a precision without measured roofs is judged against f32's, and says so
    d = derive(raw, flops=2e9, median_ms=2e9 / 98.5e6, backend="torch", peaks=OLD,
               precision="int8")
    assert d["fraction_of_peak"] == pytest.approx(0.985)
    assert d["fraction_of_machine_peak"] == pytest.approx(0.4925)
    assert "f32 compute (no int8 roof measured)" in d["peak_basis"]
    none = derive(raw, flops=2e9, median_ms=1.0, backend="torch", peaks=None)
    assert none["fraction_of_machine_peak"] is None and none["fraction_of_peak"] is None


def test_old_f32_only_peaks_still_read():
    assert gemm_roofs(OLD) == {"f32": {"torch": 100.0, "openvino": 200.0}}
    assert machine_roof(OLD, "f32") == (200.0, "openvino")
    assert machine_roof(OLD, "bf16") == (200.0, "openvino")  # no bf16 roof: f32's
    assert roof_precision("bf16", OLD) == "f32" and roof_precision("bf16", PEAKS) == "bf16"
    assert runtime_roof("openvino:CPU[hint=THROUGHPUT]", OLD) == 200.0  # keyed by name then
    assert runtime_roof("onnxruntime", OLD) is None
    assert far_below(OLD) == [{"runtime": "torch", "precision": "f32", "gflops": 100.0,
                               "share": 0.5, "machine_gflops": 200.0,
                               "machine_runtime": "openvino"}]
    assert machine_roof(None) is None and gemm_roofs({}) == {}
    text = peak_text({**OLD, "from": "s.sqlite"}, "s.sqlite")
    assert "GEMM GFLOP/s: f32 torch 100, openvino 200 (machine 200)" in text


def test_far_below_takes_the_threshold_and_the_cells_runtimes():
    near = {"gemm_gflops": {"f32": {"torch": 305.0, "openvino:CPU": 431.0}}}
    assert far_below(near) == []  # 71%: not far below
    under = {"gemm_gflops": {"f32": {"torch": 301.0, "openvino:CPU": 431.0}}}
    assert [r["runtime"] for r in far_below(under)] == ["torch"]  # 69.8%
    assert far_below(PEAKS, [("openvino:CPU", "f32"), ("torch", "bf16")]) == []  # 81% in bf16
    got = far_below(PEAKS, [("torch[layout=channels_last]", "f32")])
    assert [(r["runtime"], r["precision"]) for r in got] == [("torch", "f32")]


def _cells(precision="f32"):
    def cell(backend, gflops):  # compute-bound: the compute roofs decide
        flops = 2e9
        counters = derive({"source": "perf", "misses_per_inference": 10.0}, flops=flops,
                          median_ms=flops / (gflops * 1e6), backend=backend, peaks=PEAKS,
                          precision=precision)
        return CellResult(CellKey("a:x=1", backend, precision, 2), "done", None,
                          [flops / (gflops * 1e6)] * 10, None,
                          {"flops": flops, "counters": counters})
    return [cell("torch", 98.5), cell("openvino:CPU", 400.0)]


def test_the_report_says_when_a_runtimes_roof_is_far_below_the_machines(tmp_path):
    session = SessionInfo(id="s", started=1.0, status="finished")
    report = build_report(session, _cells(), {"peaks": PEAKS})
    md = render_markdown(report)
    assert ("torch's f32 GEMM reaches 46% of the machine's best (openvino:CPU 431 GFLOP/s)"
            in md)
    assert "GEMM GFLOP/s f32: torch 197, openvino:CPU 431 (machine's roof 431, openvino:CPU)" \
        in md
    cells = {c["backend"]: c for c in report.as_json()["cells"]}  # --json: both fractions
    assert cells["torch"]["fraction_of_peak"] == pytest.approx(0.5)
    assert cells["torch"]["fraction_of_machine_peak"] == pytest.approx(98.5 / 431)
    assert cells["torch"]["counters"]["machine_roof_runtime"] == "openvino:CPU"
    points = {p["backend"]: p for p in roofline_points(report, PEAKS)}
    assert points["torch"]["fraction_of_machine_peak"] == pytest.approx(98.5 / 431)
    assert points["torch"]["runtime_roof_gflops"] == 197.0
    machine, own = compute_roof_lines(list(points.values()))
    assert machine == {"f32": (431.0, "openvino:CPU")} and own == {("torch", "f32"): 197.0}
    out = plot_roofline(list(points.values()), PEAKS, tmp_path / "roof.png")
    assert out is not None and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # in bf16 torch reaches 81% of the machine's: no sentence
    md = render_markdown(build_report(session, _cells("bf16"), {"peaks": PEAKS}))
    assert "far below the machine's" not in md and "| a:x=1 |" in md
    json.dumps(report.as_json())  # stays serialisable
