"""Did every backend of a group compute the same function? Asked once per cell, on its first pass.

Why apart from the coordinator: timing decides *when* to ask the workers what; this module only
asks for outputs and judges them (``harness.measure.parity``), and a verdict that fails becomes a
``flag`` in the side's metadata — the cell keeps its time, but no speed-up is read from it.
Each candidate is compared with the baseline's output on the same seeded input, with the
baseline's float64 output as the reference that sets the tolerance; a quantized precision is
judged against the f32 model instead, in each side's own worker.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.precision import QUANTIZED
from harness.measure import parity
from harness.measure.results import FAILED
from harness.run import protocol
from harness.run.client import WorkerCrashed, WorkerError, WorkerTimeout
from harness.run.side import Side

# (side, message, timeout) -> the worker's reply, or None once the side has been ended
Request = Callable[[Side, dict[str, Any], float], dict[str, Any] | None]


def check_parity(sides: list[Side], precision: str, baseline: str, timeout: float,
                 request: Request) -> None:
    """Compare every candidate's output with the baseline's on the same seeded input; a
    quantized precision is judged against the f32 model instead (``check_quantized``)."""
    if precision in QUANTIZED:
        check_quantized(sides, timeout, request)
        return
    with tempfile.TemporaryDirectory(prefix="accelbench-out-") as tmp:
        outputs: dict[str, np.ndarray] = {}
        for side in sides:
            if not side.active:
                continue
            path = Path(tmp) / f"{len(outputs)}.npy"
            if request(side, {"op": protocol.OUTPUT, "path": str(path)}, timeout) is not None:
                outputs[side.backend] = np.load(path, allow_pickle=False)
        base_name = baseline if baseline in outputs else None
        reference = _reference(sides, base_name, Path(tmp), timeout)
        for side in sides:
            out = outputs.get(side.backend)
            if out is None:
                continue
            if base_name is None or side.backend == base_name:
                verdict = parity.lone(out)
            else:
                verdict = parity.judge(outputs[base_name], out, reference, precision)
                verdict["baseline"] = base_name
            if verdict is None:
                continue
            side.info["parity"] = verdict
            if verdict["ok"]:
                continue
            why = parity.describe(verdict)
            if verdict.get("finite") is False or base_name is None:
                side.flag(why)
            elif verdict.get("unjudged"):
                side.flag(f"outputs cannot be compared with {base_name}'s: {why}")
            else:
                side.flag(f"outputs differ from {base_name}: {why}")


def check_quantized(sides: list[Side], timeout: float, request: Request) -> None:
    """Every quantized cell against the f32 model, in its own worker: there is no int8
    baseline to compare with (eager PyTorch has no int8 path), and the question is whether
    quantizing kept the model's decisions, not whether two int8 runtimes agree."""
    for side in sides:
        if not side.active:
            continue
        reply = request(side, {"op": protocol.QUANTIZED}, timeout)
        if reply is None:
            continue
        verdict = reply["verdict"]
        side.info["parity"] = verdict
        if not verdict.get("ok"):
            side.flag(f"quantized outputs differ from the f32 model: {parity.describe(verdict)}")


def _reference(sides: list[Side], base_name: str | None, tmp: Path,
               timeout: float) -> np.ndarray | None:
    """float64 output of the model from the baseline's worker; None if it cannot be had."""
    if base_name is None or len(sides) < 2:
        return None
    side = next(s for s in sides if s.backend == base_name)
    path = tmp / "reference.npy"
    try:
        assert side.client is not None
        side.client.request({"op": protocol.REFERENCE, "path": str(path)}, timeout=timeout)
    except WorkerError:
        return None  # a backend without one, or a model that cannot run in float64
    except (WorkerTimeout, WorkerCrashed) as exc:
        if side.client is not None:
            side.client.kill()
        side.end(FAILED, f"worker failed computing the f64 reference: {exc}")
        return None
    return np.load(path, allow_pickle=False)
