"""The one counter-source interface: a contract over every registered source, the auto choice,
perf's multiplexing and not-supported paths from recorded ``perf stat -x, --no-scale`` output,
cachegrind's geometry rounding, and the per-cell figures derived from counts."""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

import pytest

from archs.profiling import LayerProfile, Profile
from harness import counters
from harness.counters import CellCounters, CountContext, CountersUnavailable, derive, perf
from harness.counters.cachegrind import geometry_plan, simulated_geometry

FIXTURES = Path(__file__).parent / "fixtures" / "perf"


def tiny_profile() -> Profile:
    # one conv-like layer: weights 400 B, input 1200 B, output 800 B, 10,000 FLOPs
    layer = LayerProfile("conv", "Conv2d", (1, 2, 10, 10), 10000, 100, 400, 1200, 800, 2400)
    return Profile("tiny", 10000, 5000, 100, 400, 800, 2400, (1, 3, 10, 10), (layer,), 1200)


def ctx(**kw) -> CountContext:
    base = {"backend": "torch", "caches": {"l2": 1 << 20, "l3": 32 << 20},
            "profile": lambda: tiny_profile().as_json(), "pid": os.getpid()}
    return CountContext(**{**base, **kw})


SMALL_CACHES = {"l2": 256, "l3": 1024}  # smaller than tiny_profile's 2,400 B per inference


def _work(inferences: int) -> None:
    """Real memory traffic in this process (the counted pid), for the sources that measure."""
    for _ in range(inferences):
        block = bytearray(8 << 20)
        block[::4096] = b"x" * len(block[::4096])


# -- contract: every registered source, so a new one is tested for free -----------------


@pytest.mark.parametrize("name", sorted(counters.SOURCES))
def test_every_source_keeps_the_contract(name):
    source = counters.get_source(name)
    ok, why = source.availability()
    assert isinstance(ok, bool) and isinstance(why, str) and why
    assert source.availability() == (ok, why)  # cached: probing spawns programs once
    if not ok:
        with pytest.raises(CountersUnavailable):
            source.start(ctx())
        return
    # caches far smaller than the work: every inference must miss, by any source's account
    window = source.start(ctx(caches=SMALL_CACHES))  # no setup request: a source that must
    window.resume()                                  # rerun the cell says so at stop
    _work(10)
    window.pause()
    try:
        result = window.stop(10)
    except CountersUnavailable as exc:
        assert str(exc)
        return
    assert result["source"] == name
    figures = {k: result.get(k) for k in ("misses_per_inference", "llc_miss_rate", "ipc")}
    assert all(v is None or (math.isfinite(v) and v >= 0) for v in figures.values()), figures
    assert figures["llc_miss_rate"] is None or figures["llc_miss_rate"] <= 1
    assert figures["ipc"] is None or figures["ipc"] > 0  # instructions ran in the window
    # never a silent zero: ten counted inferences through caches smaller than their data miss
    assert figures["misses_per_inference"] is not None and figures["misses_per_inference"] > 0


@pytest.mark.parametrize("name", sorted(counters.SOURCES))
def test_cell_counters_never_raise_and_name_their_source(name, monkeypatch):
    handle = CellCounters(name, ctx(caches=SMALL_CACHES))
    handle.resume()
    _work(10)
    handle.pause(10)
    got = handle.finish()
    assert got["source"] == name and got["choice"] == name
    # figures over the counted inferences, or the reason there are none: never neither
    assert got.get("error") or (got["inferences_counted"] == 10
                                and got.get("misses_per_inference", 0) > 0), got
    if name == "model":  # the analytic model, by hand: 2,400 B from DRAM per inference / 64 B
        assert got["misses_per_inference"] == 2400 / 64 and got["dram_bytes"] == 2400


def test_off_counts_nothing():
    handle = CellCounters("off", ctx())
    handle.resume()
    handle.pause(5)
    assert handle.finish() is None


# -- auto ---------------------------------------------------------------------------------


def test_auto_is_perf_where_it_works_else_model(monkeypatch):
    source = counters.get_source("perf")
    monkeypatch.setitem(counters.SOURCES, "perf", counters.Source("perf", lambda: (True, "ok"),
                                                                   source.start))
    assert counters.resolve("auto") == ("perf", "auto: perf works here")
    monkeypatch.setitem(counters.SOURCES, "perf", counters.Source(
        "perf", lambda: (False, "no PMU"), source.start))
    name, why = counters.resolve("auto")
    assert name == "model" and "no PMU" in why
    assert counters.resolve("cachegrind")[0] == "cachegrind"  # only when asked for
    assert counters.resolve("off")[0] is None
    with pytest.raises(KeyError, match="valid: auto, cachegrind, model, perf, off"):
        counters.resolve("papi")


def test_auto_here_says_why_perf_was_not_used():
    got = CellCounters("auto", ctx()).finish()
    if perf.availability()[0]:
        assert got["source"] == "perf"
    else:
        assert got["source"] == "model" and perf.availability()[1] in got["chosen_because"]
        assert got["misses_per_inference"] == 0.0 and got["arithmetic_intensity"] > 0


# -- perf: recorded output of machines with a PMU, and without --------------------------


def test_perf_multiplexed_counts_are_scaled_by_time_running():
    counts = perf.parse_stat((FIXTURES / "xeon_multiplexed.csv").read_text())
    r = perf.summarize(counts, perf.EVENTS)
    assert r["multiplexed"] is True
    assert r["raw_events"]["LLC-load-misses"] == 6012345
    assert r["events"]["LLC-load-misses"] == round(6012345 * 100 / 66.67)
    assert r["events"]["L1-dcache-load-misses"] == 2 * 120012345  # ran half the time
    assert r["events"]["cycles"] == 4210934521  # fixed counter: 100% running, unscaled
    assert r["ipc"] == pytest.approx(7893012345 / 4210934521)
    assert r["llc_load_miss_rate"] == pytest.approx(6012345 / 35012345)
    per = perf.per_inference(r, 1000)
    assert per["llc_misses_basis"] == "LLC-load-misses"
    assert per["misses_per_inference"] == pytest.approx(round(6012345 * 100 / 66.67) / 1000)
    assert per["l1d_misses_per_inference"] == pytest.approx(240024.69)


def test_perf_partial_support_falls_back_to_cache_misses_and_never_zero():
    r = perf.summarize(perf.parse_stat((FIXTURES / "zen_partial.csv").read_text()), perf.EVENTS)
    assert r["unsupported"] == ["LLC-loads", "LLC-load-misses", "L1-dcache-load-misses"]
    assert r["events"]["L1-dcache-load-misses"] is None and r["multiplexed"] is False
    per = perf.per_inference(r, 100)
    assert per["llc_misses_basis"] == "cache-misses"
    assert per["misses_per_inference"] == pytest.approx(40617.25)
    assert per["l1d_misses_per_inference"] is None
    assert per["llc_miss_rate"] == pytest.approx(0.05)


def test_perf_not_supported_recorded_here_says_so_plainly():
    text = (FIXTURES / "vm_no_pmu.csv").read_text()
    assert perf.parse_probe(0, text)[1].startswith("perf runs but the CPU exposes no hardware counters")
    with pytest.raises(CountersUnavailable, match="not supported"):
        perf.summarize(perf.parse_stat(text), perf.EVENTS)


def test_perf_unavailable_cell_says_why(monkeypatch):
    monkeypatch.setattr(perf, "availability", lambda: (False, "no virtual PMU in this VM"))
    got = CellCounters("perf", ctx()).finish()
    assert got == {"source": "perf", "choice": "perf", "chosen_because": "asked for",
                   "inferences_counted": 0, "error": "no virtual PMU in this VM"}


@pytest.mark.skipif(shutil.which("perf") is None, reason="perf not installed")
def test_perf_window_counts_only_while_resumed(monkeypatch):
    """The --control FIFO mechanics, with a software event that needs no PMU."""
    monkeypatch.setattr(perf, "availability", lambda: (True, "test"))
    window = perf.PerfWindow(os.getpid(), events=("task-clock",))
    window.resume()
    total = sum(i * i for i in range(300_000))  # some work while counting
    window.pause()
    t0 = time.process_time()
    sum(i * i for i in range(3_000_000))  # ten times more work while paused
    paused_ms = (time.process_time() - t0) * 1000
    result = window.stop(1)
    assert total > 0 and result["source"] == "perf"
    counted_ms = result["events"]["task-clock"]
    assert counted_ms is not None and 0 < counted_ms < paused_ms


# -- cachegrind geometry ------------------------------------------------------------------


def test_geometry_rounding_480mib_16way_keeps_size_and_records_both():
    real = {"size": 480 << 20, "ways": 16, "line": 64}  # 491,520 sets: not a power of two
    sim = simulated_geometry(real)
    assert sim == {"size": 480 << 20, "ways": 15, "line": 64}  # 524,288 sets; valgrind: 30 ways
    assert sim["size"] // (sim["ways"] * sim["line"]) == 1 << 19
    args, record = geometry_plan({"l1d": {"size": 32768, "ways": 8, "line": 64}, "l3": real})
    assert args == ["--D1=32768,8,64", f"--LL={480 << 20},15,64"]
    assert record["LL"] == {"level": "l3", "real": real, "simulated": sim, "rounded": True}
    assert record["D1"]["rounded"] is False


def test_geometry_rounding_cases():
    assert simulated_geometry({"size": 32 << 20, "ways": 16, "line": 64}) == \
        {"size": 32 << 20, "ways": 16, "line": 64}  # already valid: unchanged
    assert simulated_geometry({"size": 30 << 20, "ways": 20, "line": 64})["ways"] == 15
    # 48 KiB 12-way: 64 sets, valid as is
    assert simulated_geometry({"size": 48 << 10, "ways": 12, "line": 64})["ways"] == 12
    # a size with no power-of-two split near the ways: the set count is rounded instead
    odd = simulated_geometry({"size": 3 * 5 * 7 * 64 * 11, "ways": 11, "line": 64})
    sets = odd["size"] // (odd["ways"] * odd["line"])
    assert odd["ways"] == 11 and sets & (sets - 1) == 0 and sets == 128


# -- derived per-cell figures ---------------------------------------------------------------


def test_derive_by_hand():
    raw = {"source": "perf", "misses_per_inference": 500.0, "ipc": 1.5, "llc_miss_rate": 0.2}
    peaks = {"gflops": {"torch": 100.0, "openvino": 200.0}, "bandwidth_gbs": 10.0}
    d = derive(raw, flops=2e6, median_ms=0.1, backend="openvino:CPU", peaks=peaks)
    assert d["misses_per_kflop"] == pytest.approx(500 / 2000)
    assert d["achieved_gflops"] == pytest.approx(20.0)  # 2e6 FLOP in 0.1 ms
    assert d["arithmetic_intensity"] == pytest.approx(2e6 / (500 * 64))  # 62.5 FLOP/B
    assert d["attainable_gflops"] == pytest.approx(200.0)  # 62.5 x 10 = 625 > compute roof
    assert d["fraction_of_peak"] == pytest.approx(0.1)
    assert d["ipc"] == 1.5 and d["source"] == "perf"
    low = derive({"source": "model", "arithmetic_intensity": 2.0, "misses_per_inference": 0.0},
                 flops=2e6, median_ms=0.1, backend="torch", peaks=peaks)
    assert low["attainable_gflops"] == pytest.approx(20.0) and low["fraction_of_peak"] == 1.0
    assert "memory roof" in low["peak_basis"]
    none = derive(raw, flops=None, median_ms=None, backend="torch", peaks=None)
    assert none["achieved_gflops"] is None and none["fraction_of_peak"] is None
    assert "accelbench peak" in none["peak_basis"]
    assert derive({"source": "perf", "error": "no PMU"}, flops=1, median_ms=1, backend="t",
                  peaks=peaks) == {"source": "perf", "error": "no PMU"}


def test_stop_timeouts_come_from_the_sources():
    from harness.counters.cell import stop_timeout_s

    assert stop_timeout_s("cachegrind") > 3600 and stop_timeout_s("model") == 120.0
    assert stop_timeout_s("auto") == 120.0


@pytest.mark.skipif(shutil.which("perf") is None, reason="perf not installed")
def test_perf_that_cannot_attach_says_so_without_hanging(monkeypatch):
    monkeypatch.setattr(perf, "availability", lambda: (True, "test"))
    # perf may fail before or after opening its control FIFOs: either way, no hang, a reason
    with pytest.raises(CountersUnavailable, match="attach|acknowledge|exited|counted none"):
        window = perf.PerfWindow(2**22 + 12345, events=("task-clock",))  # no such process
        window.resume()
        window.pause()
        window.stop(1)


class _FakeClient:
    def __init__(self, raises=None, answer=None):
        self.raises, self.answer, self.killed = raises, answer, False

    def request(self, msg, timeout):
        assert msg == {"op": "counters"} and timeout > 0
        if self.raises:
            raise self.raises
        return self.answer

    def kill(self):
        self.killed = True


def test_request_counters_costs_the_figures_not_the_cell():
    from harness.counters.cell import request_counters
    from harness.run.client import WorkerCrashed, WorkerError, WorkerTimeout

    ok = _FakeClient(answer={"ok": True, "counters": {"source": "model"}})
    assert request_counters(ok, "model") == {"source": "model"}
    assert request_counters(_FakeClient(), "off")["source"] == "off"  # said, not blank
    hung = _FakeClient(raises=WorkerTimeout(7200))
    got = request_counters(hung, "cachegrind")
    assert hung.killed and got["source"] == "cachegrind" and "7200" in got["error"]
    got = request_counters(_FakeClient(raises=WorkerCrashed("SIGSEGV")), "perf")
    assert "SIGSEGV" in got["error"]
    got = request_counters(_FakeClient(raises=WorkerError("no op", "protocol")), "perf")
    assert got["error"] == "protocol: no op"


def _events(ir, dr, dw, d1, dl):
    return {"Ir": ir, "I1mr": 0, "ILmr": 0, "Dr": dr, "D1mr": d1, "DLmr": dl, "Dw": dw,
            "D1mw": 0, "DLmw": 0}


@pytest.mark.parametrize("parallel", [1, 2])
def test_cachegrind_difference_floors_noise_refuses_nonsense_and_caches(monkeypatch, tmp_path,
                                                                        parallel):
    from harness.counters import cachegrind as cg

    monkeypatch.setattr(cg, "_parallel_runs", lambda: parallel)  # side by side or one by one

    assert cg.inferences_for(None) == cg.MIN_N and cg.inferences_for(0.001) == cg.MAX_N
    assert cg.inferences_for(10.0) == 25
    runs = {8: _events(1000, 500, 100, 50, 7), 16: _events(1800, 900, 180, 90, 5)}
    calls = []

    def fake_run(c, n, args):
        calls.append(n)
        return {"events": runs[n], "caches": {"LL": "x"}, "seconds": 1.0}

    monkeypatch.setattr(cg, "worker_run", fake_run)
    monkeypatch.setattr(cg, "availability", lambda: (True, "valgrind-test"))
    c = ctx(setup={"op": "setup", "spec": "x"}, cache_dir=str(tmp_path), first_ms=1000.0,
            geometry={"l3": {"size": 480 << 20, "ways": 16, "line": 64}})
    r = cg.measure_cell(c)
    assert sorted(calls) == [8, 16] and r["inferences"] == 8
    assert r["cpu_seconds"] == 2.0 and r["runs_in_parallel"] == parallel
    assert r["instructions_per_inference"] == 100.0 and r["l1d_misses_per_inference"] == 5.0
    assert r["misses_per_inference"] == 0.0 and r["below_noise"] == ["DLmr"]  # 5 - 7 < 0
    assert r["geometry"]["LL"]["simulated"]["ways"] == 15 and r["cached"] is False
    again = cg.measure_cell(CountContext(**{**c.__dict__, "first_ms": 1.0}))  # another timing
    assert again["cached"] is True and sorted(calls) == [8, 16]  # from the cache, no rerun
    runs[16] = _events(900, 900, 180, 90, 9)  # the long run did less work: nonsense
    with pytest.raises(CountersUnavailable, match="start-up noise"):
        cg.measure_cell(ctx(setup={"op": "setup", "spec": "y"}, first_ms=1000.0))


def test_cachegrind_sizes_n_from_the_timed_blocks_not_the_first_inference(monkeypatch):
    from harness.counters import cachegrind as cg

    seen = []
    monkeypatch.setattr(cg, "availability", lambda: (True, "valgrind-test"))
    monkeypatch.setattr(cg, "measure_cell", lambda c, n=None: seen.append(c.first_ms) or {"x": 1})
    clock = iter([10.0, 10.5, 20.0, 20.5])  # two blocks of 0.5 s
    monkeypatch.setattr(cg.time, "perf_counter", lambda: next(clock))
    window = cg.start(ctx(setup={"op": "setup"}, first_ms=40.0))
    for _ in range(2):
        window.resume()
        window.pause()
    got = window.stop(100)  # 1 s over 100 inferences: 10 ms each, not the first call's 40
    assert seen == [10.0] and got["sized_from"] == "timed blocks" and got["sized_from_ms"] == 10.0
    untimed = cg.start(ctx(setup={"op": "setup"}, first_ms=40.0)).stop(0)
    assert seen[-1] == 40.0 and untimed["sized_from"] == "first inference"
