"""Steady-state memory for the workers: glibc malloc with fixed thresholds, recorded per cell.

Why: on the AMD EPYC VM (2026-11-30), eager PyTorch on ``dwbottleneck:depth=8,res=128`` (2
threads) ran at 10.0-10.8 ms in some fresh worker processes and at 15-24 ms in others, each
stable within itself. The slow ones took 3,400-6,100 minor page faults per inference, the fast
ones none: glibc's *dynamic* mmap threshold decides, from the order of a process's early
allocations, whether the large activation buffers live on the heap or are mapped and returned
to the kernel after every inference, to be faulted back in (and zeroed) on the next. Which
regime a worker lands in is luck, and the eager baseline's latency - hence every speed-up over
it - doubled with it, while each session's CI (one worker per cell) could not see it.

With both thresholds fixed (mmap threshold 32 MiB, the most glibc accepts on 64-bit; trim
threshold 4 GiB) every one of the same processes ran at 10.0-10.7 ms with at most 38 faults per
inference. Fixed thresholds are what the allocators PyTorch's CPU tuning guide recommends
(jemalloc, tcmalloc) give by design; setting two environment variables needs nothing installed.

Policy (``ACCELBENCH_MALLOC``): ``fixed`` (default) sets the two variables in every worker's
environment; ``default`` leaves glibc's dynamic behaviour, to measure PyTorch as an untuned
process runs it. A user who sets either variable, or preloads another allocator, is respected.
Every cell records the policy and values (``allocator``) and its minor page faults per timed
inference (``minor_faults_per_inference``), so the regime is visible on any machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

POLICY_ENV = "ACCELBENCH_MALLOC"
FIXED = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(4 * 2**30)}
POLICIES = ("fixed", "default")


class AllocatorPolicyError(ValueError):
    """``ACCELBENCH_MALLOC`` names no policy."""


def worker_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to add to a worker's environment under the policy ``environ`` asks for."""
    policy = environ.get(POLICY_ENV, "fixed")
    if policy not in POLICIES:
        raise AllocatorPolicyError(f"{POLICY_ENV}={policy!r}: valid: {', '.join(POLICIES)}")
    if policy == "default" or _user_chose(environ):
        return {}
    return dict(FIXED)


def _user_chose(environ: Mapping[str, str]) -> bool:
    preload = environ.get("LD_PRELOAD", "")
    return any(k in environ for k in FIXED) or any(
        lib in preload for lib in ("jemalloc", "tcmalloc", "mimalloc"))


def describe(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What this process runs under, for the cell's record (called in the worker)."""
    env = os.environ if environ is None else environ
    values = {k: env.get(k) for k in FIXED}
    preload = env.get("LD_PRELOAD") or None
    if values == FIXED:
        policy = "fixed thresholds (accelbench)"
    elif _user_chose(env):
        policy = "set by the user"
    else:
        policy = "glibc default (dynamic thresholds)"
    return {"policy": policy, **values, "LD_PRELOAD": preload}
