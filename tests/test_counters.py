"""harness.counters: perf output parsing, the analytic model by hand, cachegrind if present."""

from __future__ import annotations

import shutil

import pytest

from archs.profiling import LayerProfile, Profile
from harness import counters
from harness.counters import CountersUnavailable, cachegrind, perf

PERF_NOT_SUPPORTED_CSV = "<not supported>,,instructions,0,100.00,,\n"
PERF_NOT_SUPPORTED_HUMAN = """
 Performance counter stats for 'true':

   <not supported>      instructions

       0.003051312 seconds time elapsed
"""
PERF_OK_CSV = "1234567,,instructions:u,402150,100.00,,\n"
PERF_PARANOID = """Error:
Access to performance monitoring and observability operations is limited.
Consider adjusting /proc/sys/kernel/perf_event_paranoid setting to open
perf_event_paranoid setting is 4:
"""
PERF_FULL_CSV = """# started on Sat Nov 23 02:00:00 2025

2000000,,cycles:u,1000,100.00,,
3000000,,instructions:u,1000,100.00,1.50,insn per cycle
50000,,cache-references:u,1000,100.00,,
5000,,cache-misses:u,1000,100.00,10.000,of all cache refs
<not supported>,,LLC-loads:u,0,100.00,,
<not supported>,,LLC-load-misses:u,0,100.00,,
"""


@pytest.mark.parametrize("output", [PERF_NOT_SUPPORTED_CSV, PERF_NOT_SUPPORTED_HUMAN])
def test_perf_probe_not_supported(output):
    ok, why = perf.parse_probe(0, output)
    assert not ok and "no hardware counters" in why


def test_perf_probe_working():
    ok, why = perf.parse_probe(0, PERF_OK_CSV)
    assert ok and "1234567" in why


def test_perf_probe_permission():
    ok, why = perf.parse_probe(255, PERF_PARANOID)
    assert not ok and "perf_event_paranoid=4" in why


def test_perf_probe_missing_kernel_tools_and_failures():
    ok, why = perf.parse_probe(2, "WARNING: perf not found for kernel 6.5.0-1\n")
    assert not ok and "linux-tools" in why
    ok, why = perf.parse_probe(1, "something broke\n")
    assert not ok and "exit 1" in why and "something broke" in why
    ok, why = perf.parse_probe(0, "")
    assert not ok and "unrecognised" in why


def test_perf_parse_and_summarize():
    counts = perf.parse_stat(PERF_FULL_CSV)
    assert counts["instructions"]["value"] == 3000000
    assert counts["LLC-loads"] == {"value": None, "unit": "", "running_pct": 100.0, "status": "not supported"}
    result = perf.summarize(counts, perf.EVENTS)
    assert result["source"] == "perf"
    assert result["ipc"] == 1.5 and result["cache_miss_rate"] == 0.1
    assert result["llc_load_miss_rate"] is None  # missing, not zero
    assert result["unsupported"] == ["LLC-loads", "LLC-load-misses"]


def test_perf_summarize_refuses_all_missing():
    counts = perf.parse_stat("".join(f"<not supported>,,{e},0,100.00,,\n" for e in perf.EVENTS))
    with pytest.raises(CountersUnavailable, match="not supported"):
        perf.summarize(counts, perf.EVENTS)


def test_perf_availability_here_and_without_binary(monkeypatch):
    ok, why = perf.availability()
    assert isinstance(ok, bool) and why
    perf.availability.cache_clear()
    monkeypatch.setattr(perf.shutil, "which", lambda name: None)
    try:
        assert perf.availability() == (False, "perf not found on PATH (install linux-tools / linux-perf)")
    finally:
        perf.availability.cache_clear()


def test_perf_measure_raises_when_unavailable(monkeypatch):
    monkeypatch.setattr(perf, "availability", lambda: (False, "no PMU in this test"))
    with pytest.raises(CountersUnavailable, match="no PMU in this test"):
        perf.perf_attach(1, 0.01)
    with pytest.raises(CountersUnavailable, match="no PMU in this test"):
        perf.perf_run(["true"])


def _layer(name, ws, weights, flops):
    return LayerProfile(name, "X", (1,), flops, weights // 4, weights, 0, ws - weights, ws)


def hand_profile() -> Profile:
    layers = (_layer("a", 800, 100, 1000), _layer("b", 5000, 1000, 3000), _layer("c", 20000, 2000, 6000))
    return Profile("hand", 10000, 5000, 775, 3100, 0, 20000, (1,), layers)


def test_model_by_hand_weights_not_resident():
    # LLC 10000 < weights 3100 + peak 20000: every cached layer re-reads its weights.
    r = counters.model_counters(hand_profile(), {"l1d": 64, "l2": 1000, "l3": 10000})
    assert r["source"] == "model" and r["weights_resident"] is False
    assert [(x["level"], x["dram_bytes"]) for x in r["layers"]] == [("L2", 100), ("L3", 1000), ("DRAM", 20000)]
    assert (r["layers_l2"], r["layers_l3"], r["layers_dram"]) == (1, 1, 1)
    assert r["dram_bytes"] == 21100 and r["bytes_touched"] == 25800
    assert r["cache_served_fraction"] == pytest.approx(1 - 21100 / 25800)
    assert r["llc_fit_flops_fraction"] == pytest.approx(0.4)
    assert r["arithmetic_intensity"] == pytest.approx(10000 / 21100)


def test_model_by_hand_weights_resident_and_json_input():
    caches = {"l2": 1000, "l3": 30000}  # 3100 + 20000 fits: weights stay in L3
    r = counters.model_counters(hand_profile(), caches)
    assert r["weights_resident"] is True
    assert [(x["level"], x["dram_bytes"]) for x in r["layers"]] == [("L2", 0), ("L3", 0), ("L3", 0)]
    assert r["dram_bytes"] == 0
    # never null (issue 10): nothing spills, so the compulsory bytes bound the traffic:
    # weights 3100 + input 4 (shape (1,), f32) + last output 20000 - 2000 = 21104
    assert r["compulsory_bytes"] == 21104 and r["arithmetic_intensity_basis"] == "compulsory_bytes"
    assert r["arithmetic_intensity"] == pytest.approx(10000 / 21104)
    assert counters.model_counters(hand_profile().as_json(), caches) == r


def test_model_without_l3_uses_l2_as_last_level():
    r = counters.model_counters(hand_profile(), {"l2": 6000, "l3": None})
    assert [x["level"] for x in r["layers"]] == ["L2", "L2", "DRAM"]
    assert r["caches"]["llc"] == 6000


def test_model_needs_cache_sizes():
    with pytest.raises(CountersUnavailable, match="cache sizes unknown"):
        counters.model_counters(hand_profile(), {"l1d": 32768, "l2": None, "l3": None})


CACHEGRIND_OUT = """desc: I1 cache:         32768 B, 64 B, 8-way associative
desc: D1 cache:         32768 B, 64 B, 8-way associative
desc: LL cache:         33554432 B, 64 B, 16-way associative
cmd: /bin/true
events: Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw
fl=x.c
fn=main
1 2 0 0 0 0 0 0 0 0
summary: 127771 1091 1072 29403 1224 1015 10266 344 312
"""


def test_cachegrind_parse_matches_valgrinds_own_summary():
    r = cachegrind.parse_out(CACHEGRIND_OUT)
    # valgrind printed: I refs 127,771; D refs 39,669; D1 misses 1,568; LLd misses 1,327;
    # LL refs 2,659; LL misses 2,399; D1 miss rate 4.0%; LLd 3.3%; LL 1.4%.
    assert (r["I_refs"], r["D_refs"], r["D1_misses"], r["LLd_misses"]) == (127771, 39669, 1568, 1327)
    assert (r["LL_refs"], r["LL_misses"]) == (2659, 2399)
    assert round(100 * r["D1_miss_rate"], 1) == 4.0
    assert round(100 * r["LLd_miss_rate"], 1) == 3.3
    assert round(100 * r["LL_miss_rate"], 1) == 1.4
    assert r["caches"]["LL"].startswith("33554432 B")
    assert r["source"] == "cachegrind"


def test_cachegrind_parse_refuses_output_without_cache_sim():
    with pytest.raises(CountersUnavailable, match="without cache simulation"):
        cachegrind.parse_out("events: Ir\nsummary: 100\n")
    with pytest.raises(CountersUnavailable):
        cachegrind.parse_out("")


def test_geometry_args():
    geo = {"l1d": {"size": 32768, "ways": 8, "line": 64}, "l2": {"size": 1 << 20, "ways": 16, "line": 64},
           "l3": {"size": 30 << 20, "ways": 20, "line": 64}}  # 24576 sets: valgrind cannot model
    assert cachegrind.geometry_args(geo) == ["--D1=32768,8,64", "--LL=1048576,16,64"]
    assert cachegrind.geometry_args({}) == []


needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")


@needs_valgrind
def test_cachegrind_runs_a_tiny_command():
    args = ["--D1=32768,8,64", "--LL=4194304,16,64"]
    r = counters.cachegrind_run(["/bin/true"], cache_args=args, timeout=120)
    assert r["source"] == "cachegrind" and r["returncode"] == 0
    assert r["I_refs"] > 1000 and 0 < r["D1_misses"] <= r["D_refs"]
    assert r["caches"]["LL"].startswith("4194304 B, 64 B, 16-way")


@needs_valgrind
def test_cachegrind_failed_command_raises():
    with pytest.raises(CountersUnavailable, match="exit 1"):
        counters.cachegrind_run(["/bin/false"], timeout=120)


def test_registry():
    assert set(counters.SOURCES) == {"perf", "cachegrind", "model"}
    # What the registry hands out must be the source asked for (asserting `start is
    # model.start` would only restate the registration line); what each source measures is
    # checked over every source by tests/test_counter_sources.py.
    for name in counters.SOURCES:
        assert counters.get_source(name).name == name
    assert "model" in counters.available_sources()
    with pytest.raises(KeyError, match="valid: cachegrind, model, perf"):
        counters.get_source("papi")
    report = counters.availability_report()
    assert report["model"] == {"ok": True, "why": "analytic working-set model (an estimate from "
                                                  "layer sizes and cache sizes)"}
    assert set(report) == {"perf", "cachegrind", "model"}
    assert all(isinstance(r["ok"], bool) and r["why"] for r in report.values())
