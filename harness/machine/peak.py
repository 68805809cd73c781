"""The machine's measured limits: attainable GEMM GFLOP/s per runtime and precision, and triad
bandwidth.

Why measured and not computed from the data sheet: a roofline with the theoretical peak (cores x
FMA width x clock) places every cell far below it without saying whether the library, the
clock under load, or a shared core is to blame. The roofs here are what a large GEMM reaches
through each backend's own library at the sessions' thread count, and what a STREAM-style
triad (``a = b + s * c``) reaches from memory, each with a 95% CI of the median over repeats.
Each roof is the best of several rounds (interleaved across backends), for the reason
``best_round`` gives.

Each GEMM runs in its own process with the thread environment set before import (as the
workers do), through the backend's ordinary ``prepare`` path: a bias-free ``nn.Linear(n, n)``
on an ``n x n`` input is one ``n x n x n`` GEMM (2 n^3 FLOPs), so no backend-specific code
lives here.

Why every runtime at every precision (issue 23): a cell judged only against its own runtime's
roof hides that the runtime is slow (on a Zen 5 PyTorch's f32 GEMM reached 197 GFLOP/s,
OpenVINO's 415-447, OpenVINO's bf16 744). So ``peak`` measures each backend this install runs
(``harness.backends.capabilities``, the variants such as ``torch-compile[backend=openvino]``
included) at each precision it supports here (bf16 only on a CPU with bf16 instructions, int8
where the backend has a quantization flow), says why every other pair is skipped, and the
machine's roof per precision is the best any runtime reached (``harness.counters.roofs``). An
int8 GEMM is quantized from a small calibration set (``GEMM_CALIBRATION``): its scales do not
change its speed, and NNCF's default 300 inputs of ``n x n`` would hold gigabytes. A pair whose
backend reports having run another precision than asked (``precision_effective``) is no roof
of that precision and is recorded as failed. The triad uses float64 arrays (as STREAM does) of at least 4x the last-level
cache each, so caches cannot serve them; where memory does not allow that, the largest size
that fits is used and ``triad.sized`` says so.

Why cache roofs too: a model whose working set fits in L2 or L3 is served by that level, not by
DRAM, and a DRAM roof puts it "above the roof" (254% in issue 28) for no fault of the roofs. So
the same triad also runs at sizes that fit each cache level (``cache_triad_sizes``), each timed
over enough loops that the call overhead does not dominate, and the report places each cell
under the roof of the level the analytic model says serves it (``reports.roofline``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.backends.precision import PRECISIONS
from harness.measure import stats

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
LLC_FACTOR = 4  # each triad array is at least this many times the last-level cache
MEMORY_SHARE = 0.5  # the triad's three arrays may use at most this share of available memory
CACHE_SHARE = 0.5  # a cache-level triad's three arrays fill at most this share of the level
LOOP_BYTES = 64 * 2**20  # a cache-level repeat loops until it has moved about this many bytes
CLOCK = time.perf_counter  # the triads' clock (tests give a stub, for exact figures)
GEMM_CALIBRATION = 4  # int8 GEMMs: calibration inputs (each n x n float32)
GEMM_TIMEOUT_S = 900  # one GEMM process: import, prepare (PT2E and inductor compile), timing


def _summary(values: Sequence[float]) -> dict[str, Any]:
    lo, hi = stats.median_ci(values)
    finite = bool(np.isfinite(lo) and np.isfinite(hi))
    return {"median": float(np.median(values)), "ci95": [lo, hi] if finite else None,
            "n": len(values)}


def gemm_in_process(backend: str, n: int, threads: int, seconds: float = 2.0,
                    min_repeats: int = 10, precision: str = "f32") -> dict[str, Any]:
    """GFLOP/s of ``n x n x n`` GEMMs at ``precision`` through ``backend``'s prepare path, in
    this process; an ``error`` instead when the backend ran another precision than asked."""
    import torch

    from harness.backends import get_backend
    from harness.backends.base import PrepareContext

    torch.manual_seed(0)
    model = torch.nn.Linear(n, n, bias=False).eval()
    x = torch.randn(n, n)
    t0 = time.perf_counter()
    prepared = get_backend(gemm_backend(backend, precision)).prepare(
        model, x, PrepareContext(precision, threads))
    prepare_s = time.perf_counter() - t0
    ran = prepared.info.get("precision_effective", precision)
    head = {"backend": backend, "n": n, "threads": threads, "precision": precision,
            "precision_effective": ran, "prepare_s": prepare_s}
    if ran != precision:
        return {**head, "error": f"{backend} ran {ran} when asked for {precision}: its GEMM "
                f"is no {precision} roof"}
    prepared.time_block(2)  # warm-up: thread pools, primitive caches
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    while len(samples) < min_repeats or time.monotonic() < deadline:
        samples.extend(prepared.time_block(1))
        if len(samples) >= 1000:
            break
    gflops = [2 * n**3 / (ms * 1e6) for ms in samples if ms > 0]
    return {**head, "gflops": _summary(gflops)}


def gemm_backend(backend: str, precision: str) -> str:
    """The backend text a GEMM roof runs: ``backend`` itself, except that a quantized precision
    calibrates on ``GEMM_CALIBRATION`` inputs where the backend has a ``calibration`` option."""
    from harness.backends import backend_class, parse_backend
    from harness.backends.options import options_of
    from harness.backends.precision import QUANTIZED

    if precision not in QUANTIZED:
        return backend
    spec = parse_backend(backend)
    cls = backend_class(spec.name)
    if "calibration" not in options_of(cls.Config):
        return backend
    options = dict(spec.options)
    options.setdefault("calibration", GEMM_CALIBRATION)
    return parse_backend(cls.canonical(spec.device, tuple(sorted(options.items())))).text


def gemm(backend: str, n: int, threads: int, seconds: float = 2.0,
         precision: str = "f32") -> dict[str, Any]:
    """``gemm_in_process`` in a fresh process with the thread environment set before import."""
    env = {**os.environ, **{k: str(threads) for k in THREAD_ENV}}
    cmd = [sys.executable, "-m", "harness.machine.peak", "--backend", backend, "--n", str(n),
           "--threads", str(threads), "--seconds", str(seconds), "--precision", precision]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=GEMM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"backend": backend, "n": n, "threads": threads, "precision": precision,
                "error": f"GEMM through {backend} at {precision} took over {GEMM_TIMEOUT_S} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        return {"backend": backend, "n": n, "threads": threads, "precision": precision,
                "error": f"GEMM through {backend} at {precision} failed (exit "
                         f"{proc.returncode}): {tail}"}
    return json.loads(lines[-1])


def default_backends() -> list[str]:
    """Every backend (and variant) this install can run: ``harness.backends.capabilities``."""
    from harness.backends import capabilities

    return [text for text, c in capabilities().items() if c["ok"]]


def gemm_plan(backends: Sequence[str], precisions: Sequence[str]
              ) -> tuple[list[tuple[str, str]], dict[str, dict[str, str]]]:
    """``[(backend, precision)]`` that can run here, in order, and why each other pair is
    skipped: ``{precision: {backend: why}}`` (the backend's ``availability`` and ``supports``:
    no bf16 instructions, no int8 flow, a package missing). Backends are canonical texts."""
    from harness.backends import get_backend

    run: list[tuple[str, str]] = []
    skipped: dict[str, dict[str, str]] = {}
    for text in backends:
        backend = get_backend(text)
        ok, why = backend.availability()
        for p in precisions:
            p_ok, p_why = backend.supports(p) if ok else (False, why)
            if p_ok:
                run.append((backend.spec.text, p))
            else:
                skipped.setdefault(p, {})[backend.spec.text] = p_why
    return run, skipped


def triad_elements(llc_bytes: int | None, available_bytes: int | None,
                   elements: int | None = None) -> tuple[int, str]:
    """Elements per float64 array, and a sentence saying how the size was chosen."""
    if elements:
        return elements, f"{elements * 8 / 2**20:.0f} MiB per array (as asked)"
    llc = llc_bytes or 32 * 2**20
    want = LLC_FACTOR * llc // 8
    fits = int(available_bytes * MEMORY_SHARE // 24) if available_bytes else want
    if want <= fits:
        return want, f"{LLC_FACTOR}x the last-level cache ({llc / 2**20:.0f} MiB) per array"
    return fits, (f"the largest that fits in {MEMORY_SHARE:.0%} of available memory: "
                  f"{fits * 8 / llc:.1f}x the last-level cache per array (wanted {LLC_FACTOR}x)")


def cache_triad_sizes(caches: dict[str, Any], threads: int) -> dict[str, tuple[int, str]]:
    """Elements per float64 array for a triad served by L2 and one served by L3, with a
    sentence saying how each was sized. Sizes are per instance (sysfs: L2 per core, L3 per
    socket); ``threads`` threads each hold their share of the arrays in their own L2. A level
    is left out when its size is unknown, or (L3) when it is not larger than the L2s together:
    its triad would be served by L2."""
    out: dict[str, tuple[int, str]] = {}
    l2, l3 = caches.get("l2"), caches.get("l3")
    if l2:
        total = CACHE_SHARE * l2 * threads
        out["l2"] = (max(1, int(total // 24)), f"{CACHE_SHARE:.0%} of {threads} x "
                     f"{l2 / 2**10:.0f} KiB L2 for the three arrays")
    if l3 and (not l2 or CACHE_SHARE * l3 > 2 * l2 * threads):
        out["l3"] = (int(CACHE_SHARE * l3 // 24),
                     f"{CACHE_SHARE:.0%} of the {l3 / 2**20:.0f} MiB L3 for the three arrays")
    return out


def triad(threads: int, elements: int, repeats: int = 20, loops: int = 1) -> dict[str, Any]:
    """STREAM triad ``a = b + s*c`` bandwidth in GB/s (3 arrays x 8 bytes per element moved,
    STREAM's convention: the write-allocate read of ``a`` is not counted). Each repeat times
    ``loops`` triads back to back: a cache-sized triad takes microseconds, as long as the call."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        b = torch.rand(elements, dtype=torch.float64)
        c = torch.rand(elements, dtype=torch.float64)
        a = torch.empty_like(b)
        torch.add(b, c, alpha=3.0, out=a)  # first touch: page faults are not bandwidth
        rates = []
        for _ in range(repeats):
            t0 = CLOCK()
            for _ in range(loops):
                torch.add(b, c, alpha=3.0, out=a)
            dt = CLOCK() - t0
            rates.append(3 * 8 * elements * loops / dt / 1e9)
    finally:
        torch.set_num_threads(old)
    return {"elements": elements, "array_bytes": 8 * elements, "threads": threads,
            "loops": loops, "gbs": _summary(rates)}


def cache_triad(threads: int, elements: int) -> dict[str, Any]:
    """``triad`` looped to move about ``LOOP_BYTES`` per repeat."""
    return triad(threads, elements, loops=max(1, -(-LOOP_BYTES // (24 * elements))))


def available_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def best_round(runs: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """The round whose median ``key`` is highest, with every round's median under ``rounds``.

    Why the best and not the median of rounds: a roof is what the machine can attain. On a
    shared VM a GEMM's median moved by up to 40% between runs minutes apart (neighbours, clock);
    a roof from a slow round puts cells timed in a fast spell above it, which no roofline allows.
    The spread across rounds stays in the record so a reader can see how settled the roof is.
    """
    medians = [(r.get(key) or {}).get("median") for r in runs]
    good = [(m, r) for m, r in zip(medians, runs, strict=True) if isinstance(m, (int, float))]
    if not good:
        return {**runs[0], "rounds": medians}  # every round failed: the first one's error
    best = max(good, key=lambda mr: mr[0])[1]
    errors = [r["error"] for r in runs if "error" in r]
    return {**best, "rounds": medians, **({"round_errors": errors} if errors else {})}


def measure_peaks(machine: dict[str, Any], threads: int, backends: Sequence[str], *,
                  gemm_n: int = 2048, gemm_seconds: float = 2.0, rounds: int = 3,
                  triad_elements_override: int | None = None,
                  precisions: Sequence[str] = PRECISIONS) -> dict[str, Any]:
    """The roofs stored with the machine (the best round's median of each, with its CI):

    - ``gemm_gflops``: ``{precision: {backend: GFLOP/s}}``, every pair ``gemm_plan`` runs;
      ``gemm_skipped``: ``{precision: {backend: why}}``, the pairs not run or failed;
      ``machine_gflops``: ``{precision: {"gflops", "backend"}}``, the best per precision;
    - ``gflops``: the f32 ones, ``{backend: GFLOP/s}``, as stored before precisions were;
    - ``bandwidth_gbs`` (DRAM) and ``cache_bandwidth_gbs`` (``{"l2": .., "l3": ..}``).

    Every round's median, and how each was measured, under ``detail``."""
    from harness.counters.roofs import machine_roof

    if rounds < 1:
        raise ValueError(f"rounds={rounds}: at least one round")
    caches = machine.get("caches") or {}
    llc = caches.get("l3") or caches.get("l2")
    elements, sized = triad_elements(llc, available_memory(), triad_elements_override)
    pairs, skipped = gemm_plan(backends, precisions)
    gemm_rounds: dict[tuple[str, str], list[dict[str, Any]]] = {pair: [] for pair in pairs}
    triad_rounds: list[dict[str, Any]] = []
    levels = cache_triad_sizes(caches, threads)
    level_rounds: dict[str, list[dict[str, Any]]] = {lv: [] for lv in levels}
    for _ in range(rounds):  # interleaved: a slow spell of the machine hits every roof alike
        for b, p in pairs:
            gemm_rounds[(b, p)].append(gemm(b, gemm_n, threads, gemm_seconds, precision=p))
        triad_rounds.append(triad(threads, elements))
        for lv, (n, _) in levels.items():
            level_rounds[lv].append(cache_triad(threads, n))
    gemms: dict[str, dict[str, dict[str, Any]]] = {}
    for (b, p), runs in gemm_rounds.items():
        gemms.setdefault(p, {})[b] = best_round(runs, "gflops")
    roofs: dict[str, dict[str, float]] = {}
    cis: dict[str, dict[str, Any]] = {}
    for p, by in gemms.items():
        for b, g in by.items():
            median = (g.get("gflops") or {}).get("median")
            if isinstance(median, (int, float)):
                roofs.setdefault(p, {})[b] = median
                cis.setdefault(p, {})[b] = g["gflops"].get("ci95")
            else:
                skipped.setdefault(p, {})[b] = g.get("error") or "no GFLOP/s measured"
    best = {p: machine_roof({"gemm_gflops": roofs}, p) for p in roofs}
    bw = best_round(triad_rounds, "gbs")
    bw["sized"] = sized
    cache_bw = {lv: {**best_round(runs, "gbs"), "sized": levels[lv][1]}
                for lv, runs in level_rounds.items()}
    return {
        "gemm_gflops": roofs,
        "gemm_gflops_ci95": cis,
        "gemm_skipped": skipped,
        "machine_gflops": {p: {"gflops": v[0], "backend": v[1]} for p, v in best.items() if v},
        "gflops": dict(roofs.get("f32") or {}),
        "gflops_ci95": dict(cis.get("f32") or {}),
        "gemm_n": gemm_n,
        "bandwidth_gbs": bw["gbs"]["median"],
        "bandwidth_ci95": bw["gbs"]["ci95"],
        # the cache levels' roofs (triads sized to fit each): where a cell's working set lives
        "cache_bandwidth_gbs": {lv: t["gbs"]["median"] for lv, t in cache_bw.items()},
        "cache_bandwidth_ci95": {lv: t["gbs"]["ci95"] for lv, t in cache_bw.items()},
        "threads": threads,
        "rounds": rounds,
        "machine_id": machine.get("id"),
        "measured_at": time.time(),
        "detail": {"gemm": gemms, "triad": bw, "cache_triads": cache_bw,
                   "loadavg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
    }


def main(argv: list[str] | None = None) -> int:
    """Child entry point: one backend's GEMM, answered as one JSON line on stdout."""
    p = argparse.ArgumentParser(prog="python -m harness.machine.peak")
    p.add_argument("--backend", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--precision", default="f32", choices=PRECISIONS)
    a = p.parse_args(argv)
    out = sys.stdout
    sys.stdout = sys.stderr  # library chatter must not reach the JSON line
    result = gemm_in_process(a.backend, a.n, a.threads, a.seconds, precision=a.precision)
    print(json.dumps(result), file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
