"""accelbench peak at small sizes, the triad's sizing rule, the stored roofs, the roofline."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from harness.cli import main
from harness.machine import peak
from harness.measure.results import CellKey, CellResult, SessionInfo
from reports import build_report
from reports.render import render_markdown
from reports.roofline import above_roof, attainable, axis_label, plot_roofline, roofline_points


def test_gemm_and_triad_small():
    g = peak.gemm_in_process("torch", 64, 1, seconds=0.05)
    s = g["gflops"]
    assert s["n"] >= 10 and s["median"] > 0 and s["ci95"][0] <= s["median"] <= s["ci95"][1]
    t = peak.triad(1, 100_000, repeats=8)
    assert t["array_bytes"] == 800_000 and t["gbs"]["median"] > 0 and t["gbs"]["ci95"]


def test_gemm_and_triad_figures_from_a_stubbed_clock(monkeypatch):
    # Every clock read 2 ms after the last: each timed GEMM takes exactly 2 ms, through the real
    # torch prepare path and base.time_calls' ns -> ms conversion, so the GFLOP/s is exact:
    # 2 n^3 FLOPs / 2 ms. A x1000 unit error anywhere on the way is off by 1000x.
    from harness.backends import base

    ns = iter(range(0, 10**12, 2_000_000))
    monkeypatch.setattr(base, "time", SimpleNamespace(perf_counter_ns=lambda: next(ns)))
    g = peak.gemm_in_process("torch", 100, 1, seconds=0.0, min_repeats=10)
    assert g["gflops"]["median"] == pytest.approx(2 * 100**3 / 2e-3 / 1e9)  # 1.0 GFLOP/s
    assert g["gflops"]["n"] == 10
    # the triad: each repeat 0.5 ms, 3 arrays x 8 B x 100,000 elements = 2.4 MB -> 4.8 GB/s
    s = iter(x * 0.0005 for x in range(10**6))
    monkeypatch.setattr(peak, "CLOCK", lambda: next(s))
    t = peak.triad(1, 100_000, repeats=8)
    assert t["gbs"]["median"] == pytest.approx(4.8) and t["gbs"]["n"] == 8
    # a cache-sized triad loops inside each repeat: 10 loops in 0.5 ms move ten times the bytes
    t = peak.triad(1, 100_000, repeats=8, loops=10)
    assert t["gbs"]["median"] == pytest.approx(48.0)


def test_triad_sizing_says_which():
    n, why = peak.triad_elements(32 << 20, 64 << 30)
    assert n == 4 * (32 << 20) // 8 and why.startswith("4x the last-level cache (32 MiB)")
    # a 480 MiB L3 with 4 GiB free: 4x would need 5.6 GiB for three arrays
    n, why = peak.triad_elements(480 << 20, 4 << 30)
    assert n == int((4 << 30) * 0.5 // 24) and "largest that fits" in why and "wanted 4x" in why
    assert peak.triad_elements(None, None, elements=1000) == (1000, "0 MiB per array (as asked)")


def test_peak_cli_stores_and_machine_shows_them(tmp_path, capsys, monkeypatch):
    from harness.backends import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))  # no bf16 here
    store = tmp_path / "s.sqlite"
    args = ["peak", "--store", str(store), "--json", "--backends", "torch", "--gemm-n", "128",
            "--seconds", "0.1", "--threads", "1", "--triad-mib", "4", "--rounds", "2"]
    assert main(args) == 0
    measured = json.loads(capsys.readouterr().out)
    gemm = measured["detail"]["gemm"]["f32"]["torch"]
    assert measured["rounds"] == 2 and len(gemm["rounds"]) == 2
    assert measured["gflops"]["torch"] == max(gemm["rounds"])  # the roof is the best round
    assert measured["bandwidth_gbs"] == max(measured["detail"]["triad"]["rounds"])
    assert set(measured["gflops"]) == {"torch"} and measured["gflops"]["torch"] > 0
    assert measured["gemm_gflops"] == {"f32": measured["gflops"]}  # bf16, int8: skipped, and why
    assert "no bf16 instructions" in measured["gemm_skipped"]["bf16"]["torch"]
    assert "torch has no int8 path" in measured["gemm_skipped"]["int8"]["torch"]
    assert measured["machine_gflops"]["f32"] == {"gflops": measured["gflops"]["torch"],
                                                 "backend": "torch"}
    assert measured["bandwidth_gbs"] > 0 and len(measured["bandwidth_ci95"]) == 2
    assert measured["detail"]["triad"]["sized"] == "4 MiB per array (as asked)"
    assert main(["machine", "--store", str(store), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["peak"]["gflops"] == measured["gflops"]
    assert shown["peak"]["bandwidth_gbs"] == measured["bandwidth_gbs"]
    assert {"perf", "cachegrind", "model"} <= set(shown["counters"])
    assert all(c["ok"] or c["why"] for c in shown["counters"].values())
    # another store finds them in the per-machine file; with neither, there are none
    assert main(["machine", "--store", str(tmp_path / "none.sqlite"), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["peak"]
    assert found["gflops"] == measured["gflops"] and found["from"].endswith(".json")
    monkeypatch.setenv("ACCELBENCH_PEAKS", str(tmp_path / "empty"))
    assert main(["machine", "--store", str(tmp_path / "none.sqlite"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["peak"] is None


def test_peak_cli_bad_usage(tmp_path, capsys):
    assert main(["peak", "--store", str(tmp_path / "s.sqlite"), "--gemm-n", "1"]) == 2
    assert "--gemm-n" in capsys.readouterr().err
    assert main(["peak", "--store", str(tmp_path / "s.sqlite"), "--rounds", "0"]) == 2
    assert "--rounds" in capsys.readouterr().err
    assert main(["peak", "--store", str(tmp_path / "s.sqlite"), "--precisions", "f32,f16"]) == 2
    assert "--precisions" in capsys.readouterr().err
    assert not (tmp_path / "s.sqlite").exists()


def test_best_round_keeps_every_round_and_survives_failed_ones():
    def run(median):
        return {"backend": "torch", "gflops": {"median": median, "ci95": [median - 1, median + 1]}}
    got = peak.best_round([run(98.2), {"error": "GEMM through torch failed"}, run(141.6)], "gflops")
    assert got["gflops"]["median"] == 141.6 and got["gflops"]["ci95"] == [140.6, 142.6]
    assert got["rounds"] == [98.2, None, 141.6]
    assert got["round_errors"] == ["GEMM through torch failed"]
    failed = peak.best_round([{"error": "a"}, {"error": "b"}], "gflops")
    assert failed["error"] == "a" and failed["rounds"] == [None, None]


def _cells():
    def cell(backend, ms, counters):
        return CellResult(CellKey("a:x=1", backend, "f32", 1), "done", None, [ms] * 10, None,
                          {"flops": 2e6, "counters": counters})
    return [cell("torch", 0.1, {"source": "model", "arithmetic_intensity": 2.0,
                                "arithmetic_intensity_basis": "compulsory_bytes"}),
            cell("openvino:CPU", 0.02, {"source": "perf", "arithmetic_intensity": 100.0,
                                        "arithmetic_intensity_basis": "perf LLC misses x 64 B"}),
            cell("other", 0.1, {"source": "model", "error": "cache sizes unknown"})]


def test_roofline_points_and_plot(tmp_path):
    report = build_report(SessionInfo(id="s", started=1.0, status="finished"), _cells(), None)
    peaks = {"gflops": {"torch": 50.0, "openvino": 80.0}, "bandwidth_gbs": 10.0}
    points = roofline_points(report, peaks)
    assert [(p["backend"], p["source"]) for p in points] == [("torch", "model"),
                                                             ("openvino:CPU", "perf")]
    torch_pt, ov_pt = points
    assert torch_pt["achieved_gflops"] == pytest.approx(20.0)
    assert torch_pt["attainable_gflops"] == pytest.approx(20.0)  # memory roof 2 x 10
    assert ov_pt["attainable_gflops"] == pytest.approx(80.0)  # openvino's compute roof
    assert ov_pt["fraction_of_peak"] == pytest.approx(100.0 / 80.0)
    assert attainable(1.0, "torch", None) is None
    assert above_roof(points) == [ov_pt]  # 100 GFLOP/s under an 80 GFLOP/s roof
    assert axis_label(points) == "arithmetic intensity (FLOP / byte; bytes per point: see legend)"
    assert axis_label([torch_pt]) == ("arithmetic intensity (FLOP / byte of compulsory bytes "
                                      "(weights + input + output))")
    with_roofs = build_report(SessionInfo(id="s", started=1.0, status="finished"), _cells(),
                              {"peaks": peaks})
    text = render_markdown(with_roofs)
    assert "1 of 2 points lie above their roof (up to 125%, a:x=1 on openvino:CPU)" in text
    assert "LLC-miss traffic" in text and "compulsory bytes" in text
    assert "1 timed cell has no arithmetic intensity" in text and "a:x=1 on other" in text
    out = plot_roofline(points, peaks, tmp_path / "roof.png")
    assert out is not None and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_roofline([], peaks, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
    cells = {c["backend"]: c for c in report.as_json()["cells"]}
    assert cells["torch"]["counters"]["source"] == "model"
    assert cells["other"]["fraction_of_peak"] is None
