"""Which oneDNN kernels PyTorch reaches: one inference traced with oneDNN's verbose mode.

Why: "bf16 is slower than f32 in PyTorch" (issue 23: MobileNetV2 5.2 ms in PyTorch bf16 against
0.21 ms in OpenVINO bf16 on a Zen 5) is a fact without a cause until one sees the kernels. oneDNN
names every primitive it executes with its implementation (``jit_bf16:avx512_core_bf16``,
``brg_conv_fwd:avx512_core_amx``, ``jit:uni`` for a reorder) and its time. Eager PyTorch converts
between its plain layout and oneDNN's blocked one around each convolution; those ``reorder``
primitives are the tell-tale of a path that pays more in layout changes than the narrower type
saves.

How: ``torch.backends.mkldnn.verbose`` turns the log on for one call; oneDNN writes it to the
C-level stdout, so file descriptor 1 is pointed at a temporary file for that call and restored
after (the worker protocol has its own descriptor; nothing else is lost). Operators PyTorch runs
with its own kernels (not oneDNN) do not appear: ``onednn_ms`` against the call's wall time says
how much of the inference oneDNN accounts for.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

PREFIX = "onednn_verbose,"


def capture(call: Callable[[], Any]) -> tuple[list[str], float]:
    """Run ``call()`` once with oneDNN's verbose log on; its log lines and the call's wall ms."""
    import torch

    fd = 1
    sys.stdout.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                t0 = time.perf_counter()
                call()
                wall_ms = (time.perf_counter() - t0) * 1e3
        finally:
            sys.stdout.flush()
            os.dup2(saved, fd)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode("utf-8", errors="replace")
    return [ln for ln in text.splitlines() if ln.startswith(PREFIX)], wall_ms


def summarize(lines: list[str], wall_ms: float | None = None) -> dict[str, Any]:
    """Executed primitives grouped by (kind, implementation): calls and ms, slowest first; the
    ISA line oneDNN reports; the share of oneDNN's time spent in reorders (layout changes)."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    isa = None
    for line in lines:
        parts = line.split(",")
        if len(parts) > 4 and parts[2] == "info" and parts[4].startswith("isa:"):
            isa = parts[4][len("isa:"):]
        if len(parts) < 8 or parts[2] != "primitive" or parts[3] != "exec":
            continue
        kind, impl = parts[5], parts[6]
        try:
            ms = float(parts[-1])
        except ValueError:
            continue
        g = groups.setdefault((kind, impl), {"kind": kind, "impl": impl, "calls": 0, "ms": 0.0})
        g["calls"] += 1
        g["ms"] += ms
    rows = sorted(groups.values(), key=lambda g: -g["ms"])
    total = sum(g["ms"] for g in rows)
    reorder = sum(g["ms"] for g in rows if g["kind"] == "reorder")
    return {
        "isa": isa,
        "primitives": [{**g, "ms": round(g["ms"], 4)} for g in rows],
        "calls": sum(g["calls"] for g in rows),
        "onednn_ms": round(total, 4),
        "wall_ms": round(wall_ms, 4) if wall_ms is not None else None,
        "reorder_calls": sum(g["calls"] for g in rows if g["kind"] == "reorder"),
        "reorder_share": round(reorder / total, 4) if total > 0 else None,
    }


def trace(call: Callable[[], Any]) -> dict[str, Any]:
    """``summarize(capture(call))``; a failure to trace is recorded, never raised (the trace
    explains a time, it is not one)."""
    from harness.backends.base import readable

    try:
        lines, wall_ms = capture(call)
    except Exception as exc:
        return {"error": readable(exc)}
    return summarize(lines, wall_ms)


def describe(summary: Any) -> str | None:
    """One phrase for a report: the main kernel and the reorders, or None without a trace."""
    if not isinstance(summary, dict) or not summary.get("primitives"):
        return None
    compute = [p for p in summary["primitives"] if p["kind"] != "reorder"]
    main = compute[0] if compute else summary["primitives"][0]
    text = f"oneDNN ran {main['kind']} as {main['impl']} ({main['calls']} calls)"
    share = summary.get("reorder_share")
    if summary.get("reorder_calls"):
        text += (f" and {summary['reorder_calls']} layout reorders"
                 + (f", {share:.0%} of its oneDNN time" if share is not None else ""))
    return text
