"""Simulated caches through ``valgrind --tool=cachegrind``.

Why a simulator: where hardware counters are hidden (most VMs, locked-down CI) cachegrind still
gives exact, deterministic reference and miss counts for a modelled I1/D1/LL hierarchy. It runs
the program 20-100x slower, so it is meant for a single inference, not a timed loop, and its
figures describe the *modelled* caches: valgrind guesses them from CPUID, which on VMs can be
nonsense (a 256 MiB direct-mapped LL has been seen), so pass ``--D1``/``--LL`` from the machine's
real geometry with ``geometry_args``.

As a counter source (``start``) it simulates the cell's own worker: ``python -m
harness.run.worker`` is run under valgrind twice, fed the cell's setup request and then N and
2N inferences; the difference of the two runs is N steady-state inferences with imports,
conversion and the first inference removed. Results are cached on disk by (workload, backend,
precision, threads, library versions, geometry), like the IR, because one run takes minutes.

valgrind does not execute AVX-512: under it CPUID hides AVX-512 and oneDNN (PyTorch's and
OpenVINO's) and ATen pick AVX2 kernels. The child runs with ``ONEDNN_MAX_CPU_ISA=AVX2`` and
``ATEN_CPU_CAPABILITY=avx2`` so that choice is explicit, and every figure carries
``simulated_isa``: the counts describe the AVX2 code, not the kernels of the timed run.

Counts are read from the output file's ``events:``/``summary:`` lines rather than from the
human summary on stderr, whose layout changes between valgrind versions.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.counters.base import CountContext, CountersUnavailable, NullWindow, Source, register


@functools.cache
def availability() -> tuple[bool, str]:
    binary = shutil.which("valgrind")
    if binary is None:
        return False, "valgrind not found on PATH (install valgrind for simulated cache counts)"
    try:
        proc = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"valgrind could not be run: {exc}"
    if proc.returncode != 0:
        return False, f"valgrind --version failed (exit {proc.returncode})"
    return True, f"{proc.stdout.strip()} at {binary} (simulated caches; minutes per cell)"


def simulated_geometry(real: Mapping[str, int]) -> dict[str, int]:
    """The valid geometry (power-of-two set count) nearest to ``real`` ``{"size", "ways", "line"}``.

    First choice: the same size and line with the nearest associativity whose set count is a
    power of two (480 MiB 16-way, 491,520 sets -> 480 MiB 15-way, 524,288 sets); valgrind's own
    fallback would be 30 ways. Failing that, the same ways and line with the set count rounded
    to the nearest power of two (the size changes).
    """
    size, ways, line = int(real["size"]), int(real["ways"]), int(real["line"])
    lines = size // line
    if size % line == 0:
        best = None
        for exp in range(lines.bit_length()):
            sets = 1 << exp
            if lines % sets == 0:
                w = lines // sets
                if best is None or abs(w - ways) < abs(best - ways):
                    best = w
        if best is not None and abs(best - ways) <= max(1, ways // 4):
            return {"size": size, "ways": best, "line": line}
    sets = max(1, size // (ways * line))
    low = 1 << (sets.bit_length() - 1)
    sets = low if sets - low <= 2 * low - sets else 2 * low
    return {"size": sets * ways * line, "ways": ways, "line": line}


def geometry_plan(geometry: Mapping[str, Mapping[str, int]]) -> tuple[list[str], dict[str, Any]]:
    """``--D1``/``--LL`` options for every level whose geometry is known, rounded to what
    valgrind accepts, and ``{level: {"real", "simulated"}}`` recording both."""
    args: list[str] = []
    record: dict[str, Any] = {}
    for option, levels in (("--D1", ("l1d",)), ("--LL", ("l3", "l2"))):
        for level in levels:
            g = geometry.get(level) or {}
            if not (g.get("size") and g.get("ways") and g.get("line")):
                continue
            sim = simulated_geometry(g)
            args.append(f"{option}={sim['size']},{sim['ways']},{sim['line']}")
            real = {k: int(g[k]) for k in ("size", "ways", "line")}
            record[option.strip("-")] = {"level": level, "real": real, "simulated": sim,
                                         "rounded": sim != real}
            break
    return args, record


def geometry_args(geometry: Mapping[str, Mapping[str, int]]) -> list[str]:
    """``--D1``/``--LL`` options from ``{"l1d"|"l2"|"l3": {"size", "ways", "line"}}``.

    The last-level cache is L3 if known, else L2. A level valgrind cannot model (its set count
    ``size / (ways * line)`` must be a power of two) is left to valgrind's own guess.
    """
    args = []
    for option, levels in (("--D1", ("l1d",)), ("--LL", ("l3", "l2"))):
        for level in levels:
            g = geometry.get(level) or {}
            size, ways, line = g.get("size"), g.get("ways"), g.get("line")
            if size and ways and line and _power_of_two(size // (ways * line)) \
                    and size % (ways * line) == 0:
                args.append(f"{option}={size},{ways},{line}")
                break
    return args


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def parse_out(text: str) -> dict[str, Any]:
    """Totals from a cachegrind output file, with valgrind's own derived rates.

    ``LL_miss_rate`` is LL misses over all references (instruction + data), as valgrind
    prints it; ``LLd_miss_rate`` is the data-only rate.
    """
    caches: dict[str, str] = {}
    names: list[str] = []
    totals: list[int] = []
    for line in text.splitlines():
        if line.startswith("desc:") and "cache:" in line:
            level, _, geometry = line[len("desc:"):].partition("cache:")
            caches[level.strip()] = geometry.strip()
        elif line.startswith("events:"):
            names = line.split()[1:]
        elif line.startswith("summary:"):
            totals = [int(v) for v in line.split()[1:]]
    if not names or len(totals) != len(names):
        raise CountersUnavailable("cachegrind output has no events/summary lines")
    ev = dict(zip(names, totals, strict=True))
    if "D1mr" not in ev:
        raise CountersUnavailable("cachegrind ran without cache simulation (no D1mr event)")
    i_refs, d_refs = ev["Ir"], ev["Dr"] + ev["Dw"]
    d1 = ev["D1mr"] + ev["D1mw"]
    lld = ev["DLmr"] + ev["DLmw"]
    ll = ev["ILmr"] + lld
    return {
        "source": "cachegrind",
        "caches": caches,
        "events": ev,
        "I_refs": i_refs,
        "D_refs": d_refs,
        "D1_misses": d1,
        "LL_refs": ev["I1mr"] + d1,
        "LL_misses": ll,
        "LLd_misses": lld,
        "D1_miss_rate": _rate(d1, d_refs),
        "LLd_miss_rate": _rate(lld, d_refs),
        "LL_miss_rate": _rate(ll, i_refs + d_refs),
    }


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def cachegrind_run(argv: Sequence[str], *, cache_args: Sequence[str] = (),
                   timeout: float | None = None, stdin: str | None = None,
                   env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run ``argv`` under cachegrind and return its totals (see ``parse_out``).

    A command that fails or times out raises ``CountersUnavailable``: counts of a run that did
    not finish would silently describe a different workload.
    """
    ok, why = availability()
    if not ok:
        raise CountersUnavailable(why)
    fd, out = tempfile.mkstemp(prefix="accelbench-cachegrind-", suffix=".out")
    os.close(fd)
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=yes", f"--cachegrind-out-file={out}",
           *cache_args, "--", *argv]
    start = time.perf_counter()
    try:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin,
                                  env={**os.environ, **env} if env else None)
        except subprocess.TimeoutExpired:
            raise CountersUnavailable(f"cachegrind run timed out after {timeout:g} s") from None
        if proc.returncode != 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise CountersUnavailable(f"command under cachegrind failed (exit {proc.returncode}): {tail}")
        result = parse_out(Path(out).read_text())
    finally:
        Path(out).unlink(missing_ok=True)
    return {**result, "argv": list(argv), "returncode": proc.returncode,
            "seconds": time.perf_counter() - start, "stdout": proc.stdout}


# One thread, passive waits and a fixed hash seed make start-up repeatable, so that the
# difference of two runs is the inferences and not run-to-run noise of imports and thread
# pools (valgrind serialises threads anyway, and spinning OpenMP waits burn instructions).
SIMULATED_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "PYTHONHASHSEED": "0",
                 "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                 "OPENBLAS_NUM_THREADS": "1"}
SIMULATED_THREADS = 1
SIMULATED_ISA = "AVX2 (valgrind hides AVX-512; ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2)"
MIN_N, MAX_N = 8, 4000  # inferences in the short run; the long run does 2N
REAL_MS_PER_RUN = 250.0  # N is sized so that N inferences take about this long natively


def inferences_for(first_ms: float | None) -> int:
    """N such that N inferences dwarf the start-up noise but stay cheap next to the imports."""
    if not first_ms or first_ms <= 0:
        return MIN_N
    return max(MIN_N, min(MAX_N, int(REAL_MS_PER_RUN / first_ms)))
RUN_TIMEOUT_S = 3600.0


def cell_cache_key(ctx: CountContext, cache_args: Sequence[str]) -> str:
    """(workload, backend, precision, library versions, simulated geometry) -> a file name."""
    from importlib import metadata

    versions = []
    for package in ("torch", "openvino", "accelbench"):
        try:
            versions.append(f"{package}={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package}=none")
    # N is sized from a timing, so it is left out: the cached result records the N it used.
    ident = [ctx.spec, ctx.model_ref, ctx.backend, ctx.precision, ctx.seed,
             versions, list(cache_args), SIMULATED_THREADS, availability()[1]]
    return hashlib.sha256(json.dumps(ident, default=str).encode()).hexdigest()[:20]


def worker_run(ctx: CountContext, n: int, cache_args: Sequence[str]) -> dict[str, Any]:
    """The cell's own worker under cachegrind: setup, one block of ``n`` inferences, quit."""
    setup = {**ctx.setup, "threads": SIMULATED_THREADS}
    requests = [setup, {"op": "time", "n": n}, {"op": "quit"}]
    argv = [sys.executable, "-m", "harness.run.worker", "--backend", ctx.backend,
            "--threads", str(SIMULATED_THREADS)]
    stdin = "".join(json.dumps(r) + "\n" for r in requests)
    result = cachegrind_run(argv, cache_args=cache_args, timeout=RUN_TIMEOUT_S, stdin=stdin,
                            env=SIMULATED_ENV)
    answers = [json.loads(line) for line in result.pop("stdout", "").splitlines() if line.strip()]
    bad = [a for a in answers if not a.get("ok")]
    if len(answers) < 2 or bad:
        why = bad[0].get("error") if bad else "the worker did not answer"
        raise CountersUnavailable(f"the worker under cachegrind failed: {why}")
    return result


def _parallel_runs() -> int:
    """How many of the two simulated runs go at once: both where two cores are free to us.

    Why this is safe: a simulated run counts events, it times nothing, so two of them side by
    side give the same counts as one after the other, in about half the wall time (valgrind
    runs a program on one core whatever its threads).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return 2 if cores >= 2 else 1


def _both_runs(ctx: CountContext, n: int, cache_args: Sequence[str]) -> tuple[dict, dict]:
    """The N- and 2N-inference runs, side by side where ``_parallel_runs`` allows."""
    if _parallel_runs() < 2:
        return worker_run(ctx, n, cache_args), worker_run(ctx, 2 * n, cache_args)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        short = pool.submit(worker_run, ctx, n, cache_args)
        long = pool.submit(worker_run, ctx, 2 * n, cache_args)
        return short.result(), long.result()


def measure_cell(ctx: CountContext, n: int | None = None) -> dict[str, Any]:
    """Simulated misses of ``n`` steady-state inferences: run(2n) - run(n), cached on disk."""
    n = n or inferences_for(ctx.first_ms)
    if not ctx.setup:
        raise CountersUnavailable("cachegrind needs the cell's setup request to rerun it")
    cache_args, geometry = geometry_plan(ctx.geometry)
    key = cell_cache_key(ctx, cache_args)
    cache = Path(ctx.cache_dir) / "cachegrind" / f"{key}.json" if ctx.cache_dir else None
    if cache is not None and cache.is_file():
        try:
            return {**json.loads(cache.read_text()), "cached": True}
        except ValueError:
            pass  # a torn write: measure again
    t0 = time.perf_counter()
    short, long = _both_runs(ctx, n, cache_args)
    wall = time.perf_counter() - t0
    diff = {k: long["events"][k] - short["events"][k] for k in long["events"]}
    if min(diff["Ir"], diff["Dr"], diff["Dw"]) <= 0:
        raise CountersUnavailable(
            f"the {2 * n}- and {n}-inference runs differ by less than their start-up noise "
            f"(Ir {diff['Ir']}, Dr {diff['Dr']}, Dw {diff['Dw']}); not reported")
    # A miss count can come out slightly negative when the true count is ~0 (everything stays
    # in cache) and start-up differs by a few misses: it is floored at 0 and listed as such.
    below_noise = sorted(k for k, v in diff.items() if v < 0)
    diff = {k: max(v, 0) for k, v in diff.items()}
    per = {k: v / n for k, v in diff.items()}
    d_refs = diff["Dr"] + diff["Dw"]
    lld = diff["DLmr"] + diff["DLmw"]
    line = (geometry.get("LL") or {}).get("simulated", {}).get("line", 64)
    result = {
        "source": "cachegrind",
        "inferences": n,
        "method": f"difference of {2 * n} and {n} inferences in the cell's worker under valgrind",
        "threads_simulated": SIMULATED_THREADS,
        "below_noise": below_noise,
        "simulated_isa": SIMULATED_ISA,
        "geometry": geometry,
        "caches": long["caches"],
        "events_per_inference": per,
        "instructions_per_inference": per["Ir"],
        "misses_per_inference": lld / n,
        "l1d_misses_per_inference": (diff["D1mr"] + diff["D1mw"]) / n,
        "llc_miss_rate": lld / d_refs if d_refs else None,
        "dram_bytes_per_inference": lld * line / n,
        "seconds": wall,
        "cpu_seconds": short["seconds"] + long["seconds"],
        "runs_in_parallel": _parallel_runs(),
        "cached": False,
    }
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, cache)
    return result


class SizingWindow(NullWindow):
    """Counts nothing while timing, but clocks the timed blocks: N is sized from the steady-state
    time per inference, not from the first inference (2-5x slower here, so N came out 2-5x too
    small and the N-vs-2N difference was closer to its start-up noise)."""

    def __init__(self, ctx: CountContext) -> None:
        super().__init__(self._measure)
        self.ctx, self.seconds = ctx, 0.0
        self._t0: float | None = None

    def resume(self) -> None:
        self._t0 = time.perf_counter()

    def pause(self) -> None:
        if self._t0 is not None:
            self.seconds += time.perf_counter() - self._t0
            self._t0 = None

    def _measure(self, inferences: int) -> dict[str, Any]:
        import dataclasses

        steady = self.seconds * 1000 / inferences if inferences and self.seconds > 0 else None
        ctx = dataclasses.replace(self.ctx, first_ms=steady) if steady else self.ctx
        return {**measure_cell(ctx), "sized_from_ms": ctx.first_ms,
                "sized_from": "timed blocks" if steady else "first inference"}


def start(ctx: CountContext) -> NullWindow:
    """Nothing is counted while timing; ``stop`` simulates the cell separately (slow)."""
    ok, why = availability()
    if not ok:
        raise CountersUnavailable(why)
    return SizingWindow(ctx)


SOURCE = register(Source(
    "cachegrind", availability, start,
    "simulated D1/LL misses of the cell's worker (valgrind, AVX2 code, N vs 2N inferences)",
    stop_timeout_s=2 * RUN_TIMEOUT_S + 60,
))
