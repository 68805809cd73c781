"""Roofs per cache level (issue 28, item 2): ``accelbench peak`` measures a triad that fits L2
and one that fits L3 besides DRAM's, and the report puts a cell whose working set lives in a
cache under that level's roof instead of telling the user to measure the roofs again."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from harness.counters.cell import roof_fraction
from harness.machine import peak
from harness.store import Store
from reports.roofline import attainable, serving_level
from tests.conftest import run_cli

STEP = 2.0**-10  # the stub clock's tick: a binary fraction, so every difference is exact
CACHES = {"l1d": 32 << 10, "l2": 1 << 20, "l3": 32 << 20}


def _stub_clock(monkeypatch):
    ticks = iter(range(10**9))
    monkeypatch.setattr(peak, "CLOCK", lambda: next(ticks) * STEP)


def _stub_gemm(backend, n, threads, seconds, precision="f32"):
    return {"backend": backend, "n": n, "threads": threads, "precision": precision,
            "gflops": {"median": 100.0, "ci95": [99.0, 101.0], "n": 10}}


def test_cache_triads_are_sized_to_each_level():
    sizes = peak.cache_triad_sizes(CACHES, threads=2)
    assert sizes["l2"][0] == int(0.5 * (1 << 20) * 2 // 24)  # two cores' L2s, half full
    assert sizes["l3"][0] == int(0.5 * (32 << 20) // 24)
    assert "L3" in sizes["l3"][1] and "L2" in sizes["l2"][1]
    # an L3 no larger than the L2s together would be served by them: no L3 roof
    assert set(peak.cache_triad_sizes({"l2": 1 << 20, "l3": 4 << 20}, threads=4)) == {"l2"}
    assert peak.cache_triad_sizes({}, threads=1) == {}


def test_measure_peaks_stores_a_roof_per_level_with_a_stub_clock(monkeypatch):
    _stub_clock(monkeypatch)
    monkeypatch.setattr(peak, "gemm", _stub_gemm)
    got = peak.measure_peaks({"id": "m", "caches": CACHES}, 1, ["torch"], rounds=2,
                             triad_elements_override=1000)
    l2_n, l3_n = 21845, 699050  # half of 1 MiB and of 32 MiB over three float64 arrays
    l2_loops, l3_loops = 129, 5  # enough triads per repeat to move 64 MiB
    assert got["bandwidth_gbs"] == pytest.approx(24 * 1000 / STEP / 1e9, rel=1e-12)
    assert got["cache_bandwidth_gbs"]["l2"] == pytest.approx(24 * l2_n * l2_loops / STEP / 1e9,
                                                            rel=1e-12)
    assert got["cache_bandwidth_gbs"]["l3"] == pytest.approx(24 * l3_n * l3_loops / STEP / 1e9,
                                                            rel=1e-12)
    detail = got["detail"]["cache_triads"]["l2"]
    assert detail["elements"] == l2_n and detail["loops"] == l2_loops
    assert len(detail["rounds"]) == 2 and "L2" in detail["sized"]
    assert got["gflops"] == {"torch": 100.0}


def test_a_cell_is_placed_under_the_roof_of_the_level_that_serves_it():
    peaks = {"gflops": {"torch": 100.0}, "bandwidth_gbs": 10.0,
             "cache_bandwidth_gbs": {"l2": 80.0, "l3": 40.0}}
    in_l2 = {"source": "model", "layers_l2": 9, "layers_l3": 0, "layers_dram": 0, "dram_bytes": 0}
    in_l3 = {**in_l2, "layers_l3": 2}
    spills = {**in_l3, "layers_dram": 1, "dram_bytes": 4096}
    assert [serving_level(c) for c in (in_l2, in_l3, spills)] == ["L2", "L3", "DRAM"]
    assert serving_level({"source": "perf"}) == "DRAM"  # LLC misses are DRAM traffic
    assert attainable(0.5, "torch", peaks, "L2") == 40.0
    assert attainable(0.5, "torch", peaks, "L3") == 20.0
    assert attainable(0.5, "torch", peaks, "DRAM") == 5.0
    assert attainable(5.0, "torch", peaks, "L2") == 100.0  # compute-bound
    run = roof_fraction(30.0, 0.5, "torch", peaks, "L2")
    assert run["fraction_of_peak"] == pytest.approx(0.75) and "L2 memory" in run["peak_basis"]


@pytest.mark.slow
def test_report_of_a_cache_resident_session_uses_the_cache_roof(tmp_path: Path, monkeypatch):
    store = tmp_path / "s.sqlite"
    proc = run_cli("run", "plain:depth=1,width=8,res=16", "--backends", "torch", "--threads", "1",
                   "--budget", "0.3", "--store", str(store), "--no-report", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    counters = json.loads(proc.stdout)["cells"][0]["counters"]
    assert counters["source"] == "model" and counters["dram_bytes"] == 0  # fits the caches
    with sqlite3.connect(store) as conn:
        machine_id = conn.execute("SELECT machine_id FROM sessions").fetchone()[0]
    # roofs as the stub clock measures them: DRAM far below the cell, L2 and L3 far above it
    old = {"gflops": {"torch": 1e6}, "bandwidth_gbs": 1e-3, "threads": 1}
    with Store.open(store) as s:
        s.put_peak(machine_id, old, measured=1.0)

    def report(name: str) -> str:
        done = run_cli("report", "--store", str(store), "--out", str(tmp_path / name))
        assert done.returncode == 0, done.stderr[-2000:]
        return (tmp_path / name / "report.md").read_text()

    before = report("old")  # peaks from before the cache roofs: says so, blames no spell
    assert "served by L2" in before and "run it once to add those roofs" in before
    assert "Measure the roofs again" not in before

    _stub_clock(monkeypatch)
    monkeypatch.setattr(peak, "gemm", _stub_gemm)
    caches = {"l2": counters["caches"]["l2"], "l3": counters["caches"]["l3"]}
    new = peak.measure_peaks({"id": machine_id, "caches": caches}, 1, ["torch"], rounds=1,
                             triad_elements_override=1000)
    new["bandwidth_gbs"] = 1e-3  # a DRAM roof the cell is far above, as in the issue
    with Store.open(store) as s:
        s.put_peak(machine_id, new, measured=2.0)
    after = report("new")
    assert "| L2 |" in after  # the roof column names the level that serves the cell
    assert "points lie above their roof" not in after and "Measure the roofs again" not in after
    assert "cache triads GB/s: L2" in after  # the header shows the new roofs
    assert (tmp_path / "new" / "roofline.png").is_file()
