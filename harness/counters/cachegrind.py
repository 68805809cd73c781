"""Simulated caches through ``valgrind --tool=cachegrind``.

Why a simulator: where hardware counters are hidden (most VMs, locked-down CI) cachegrind still
gives exact, deterministic reference and miss counts for a modelled I1/D1/LL hierarchy. It runs
the program 20-100x slower, so it is meant for a single inference, not a timed loop, and its
figures describe the *modelled* caches: valgrind guesses them from CPUID, which on VMs can be
nonsense (a 256 MiB direct-mapped LL has been seen), so pass ``--D1``/``--LL`` from the machine's
real geometry with ``geometry_args``.

Counts are read from the output file's ``events:``/``summary:`` lines rather than from the
human summary on stderr, whose layout changes between valgrind versions.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.counters.base import CountersUnavailable, Source, register


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
    return True, f"{proc.stdout.strip()} at {binary} (simulated caches; 20-100x slower, one inference)"


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
                   timeout: float | None = None) -> dict[str, Any]:
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
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CountersUnavailable(f"cachegrind run timed out after {timeout:g} s") from None
        if proc.returncode != 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise CountersUnavailable(f"command under cachegrind failed (exit {proc.returncode}): {tail}")
        result = parse_out(Path(out).read_text())
    finally:
        Path(out).unlink(missing_ok=True)
    return {**result, "argv": list(argv), "returncode": proc.returncode,
            "seconds": time.perf_counter() - start}


SOURCE = register(Source(
    "cachegrind", availability, cachegrind_run,
    "simulated I1/D1/LL caches for one run of a command (valgrind)",
))
