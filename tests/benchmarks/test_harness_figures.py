"""Benchmarks of the harness itself: does accelbench measure what OpenVINO's own tool measures,
how much does its timing loop add, and do its speed-ups repeat?

These produce figures (printed, and kept in pytest-benchmark's extra_info); they are not part of
the default suite because they need a quiet machine and minutes. Run them with

    pytest -m benchmark_harness -s --benchmark-enable tests/benchmarks

Each figure's assertion is the acceptance bound from the issue; a noisy machine can fail it, so
read the printed spread before believing a failure (or a pass).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

import archs

pytestmark = pytest.mark.benchmark_harness

THREADS = 2
# This VM's latency drifts by 20-30% over minutes; more interleaved rounds let the median of
# each tool's runs settle. Many short rounds beat a few long ones: the host's slow stretches
# last 10-60 s and move a model by up to 1.5x, so 5 rounds of 15 s (2026-12-05) gave ratios of
# 0.72 and 1.07 from paired rounds between 0.65 and 1.59, while 12 rounds of 3 s an hour later
# gave 0.988 (f32) and 1.023 (int8). ACCELBENCH_BENCH_ROUNDS overrides the count.
ROUNDS = int(os.environ.get("ACCELBENCH_BENCH_ROUNDS", "12"))
SECONDS = 3  # measuring time of each tool in each round
MODEL = "mobilenetv2"
ONE_MS_MODEL = "mobilenetv2:width=0.5,res=128"  # about 1 ms in OpenVINO on 2 cores here


def _accelbench(tmp: Path, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", *args, "--store", str(tmp / "s.sqlite"),
         "--threads", str(THREADS), "--json", "--no-report"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900, cwd=tmp,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _ir_path(tmp: Path, session: str, precision: str = "f32") -> str:
    import sqlite3

    con = sqlite3.connect(tmp / "s.sqlite")
    (meta,) = con.execute("SELECT meta FROM cells WHERE session_id=? AND backend LIKE 'openvino%'",
                          (session,)).fetchone()
    con.close()
    meta = json.loads(meta)
    # An int8 cell's IR is NNCF's quantized model, cached beside the f32 one.
    return meta["quantization"]["ir_path"] if precision == "int8" else meta["ir_path"]


def _benchmark_app(ir: str, shape: tuple[int, ...], seconds: int = 15,
                   hint: str = "none") -> float:
    tool = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    # benchmark_app refuses -nstreams/-nthreads with a hint; "none" plus one stream and the
    # thread count is exactly what accelbench compiles with (LATENCY resolves to that on a
    # machine with THREADS cores). hint="latency" is the plain `-hint latency` a user types.
    tuning = ["-hint", "none", "-nstreams", "1", "-nthreads", str(THREADS)] if hint == "none" \
        else ["-hint", hint]
    proc = subprocess.run(
        [tool, "-m", ir, "-d", "CPU", *tuning, "-infer_precision", "f32", "-api", "sync",
         "-t", str(seconds), "-shape", str(list(shape)).replace(" ", "")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    match = re.search(r"Median:\s*([\d.]+)\s*ms", proc.stdout)
    assert match, proc.stdout[-2000:]
    return float(match.group(1))


@pytest.mark.parametrize("precision", ["f32", "int8"])
def test_openvino_median_agrees_with_benchmark_app(tmp_path: Path, benchmark, precision: str):
    """Same static IR, sync API, LATENCY hint, f32, same threads: medians within ±5%.

    int8 (issue 23): the NNCF-quantized IR that accelbench cached, against
    `benchmark_app -m <the int8 IR> -d CPU -hint latency` (float parts in f32, as accelbench
    compiles them; the hint's own threads, which are all cores here).

    Both tools measure for the same wall time (accelbench's CI target is set out of reach so
    it spends its whole budget, as benchmark_app spends its -t), in interleaved rounds so the
    VM's drift hits both. A first short accelbench run converts the model and fills the IR
    cache; it is not counted, since benchmark_app has no such step.

    Only MobileNetV2 (the issue's model) is held to ±5%. For a 1 ms model the two tools differ
    by design: benchmark_app's Python loop leaves tens of microseconds between inferences, and
    OpenVINO's threads idle in them (in-process, a 100-500 us gap between inferences adds 3-10%
    to a 1 ms model's latency here), while accelbench times inferences back to back.
    """
    from harness.backends import get_backend

    spec = MODEL
    shape = tuple(archs.build(spec)[1].shape)
    ok, why = get_backend("openvino:CPU").supports(precision)
    if not ok:
        pytest.skip(why)
    common = ("--backends", "openvino:CPU", "--precision", precision, "--processes", "1")
    setup = _accelbench(tmp_path, spec, *common, "--budget", "1")
    ir = _ir_path(tmp_path, setup["session"], precision)
    ours, theirs = [], []
    for _ in range(ROUNDS):
        ours.append(_accelbench(tmp_path, spec, *common, "--budget", str(SECONDS),
                                "--target", "0.0001")["cells"][0]["median_ms"])
        theirs.append(_benchmark_app(ir, shape, SECONDS,
                                     hint="latency" if precision == "int8" else "none"))
    ratio = statistics.median(ours) / statistics.median(theirs)
    pairs = [a / b for a, b in zip(ours, theirs, strict=True)]
    benchmark.extra_info.update(spec=spec, precision=precision, accelbench_ms=ours,
                                benchmark_app_ms=theirs,
                                ratio=ratio, paired_ratios=pairs)
    print(f"\n{spec} {precision}: accelbench {ours} ms, benchmark_app {theirs} ms, ratio of medians "
          f"{ratio:.3f}, paired ratios {[round(r, 3) for r in pairs]}")
    benchmark.pedantic(lambda: None, rounds=1)
    assert 0.95 <= ratio <= 1.05


def test_timing_loop_overhead_for_a_1ms_model(benchmark):
    """Wall time of a timed block vs the sum of its samples: what the loop adds around them."""
    from harness.backends import PrepareContext as Ctx
    from harness.backends import get_backend

    model, x = archs.build(ONE_MS_MODEL)
    prepared = get_backend("openvino:CPU").prepare(model, x, Ctx("f32", THREADS))
    prepared.time_block(200)  # warm
    n = 200
    samples: list[list[float]] = []

    def block():
        samples.append(prepared.time_block(n))

    benchmark.pedantic(block, rounds=15, iterations=1)
    wall_ms = benchmark.stats.stats.median * 1000
    inside_ms = statistics.median(sum(s) for s in samples)
    overhead = (wall_ms - inside_ms) / wall_ms
    per_iter = statistics.median(v for s in samples for v in s)
    benchmark.extra_info.update(per_iteration_ms=per_iter, block_wall_ms=wall_ms,
                                samples_sum_ms=inside_ms, overhead=overhead)
    print(f"\n{ONE_MS_MODEL}: {per_iter:.3f} ms/iter; block wall {wall_ms:.1f} ms, "
          f"samples sum {inside_ms:.1f} ms, loop overhead {overhead:.2%}")
    assert overhead <= 0.02


def test_mobilenetv2_speedup_repeats_across_sessions(tmp_path: Path, benchmark):
    """Three back-to-back sessions: every speed-up within ±5% of their mean."""
    speedups = []
    for _ in range(3):
        t0 = time.monotonic()
        data = _accelbench(tmp_path, MODEL, "--budget", "10")
        speedups.append(data["speedups"][0]["speedup"])
        print(f"\nsession {data['session']}: speed-up {speedups[-1]:.3f} "
              f"{data['speedups'][0]['ci95']} in {time.monotonic() - t0:.0f} s")
    mean = statistics.mean(speedups)
    spread = max(abs(s - mean) / mean for s in speedups)
    benchmark.extra_info.update(speedups=speedups, max_rel_deviation=spread)
    benchmark.pedantic(lambda: None, rounds=1)
    assert spread <= 0.05
