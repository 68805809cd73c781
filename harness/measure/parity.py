"""Do two backends compute the same function? Output comparison with an honest tolerance.

A speed-up only means something if both sides compute the same outputs. f32 kernels differ in
summation order and fusion (OpenVINO folds BatchNorm, reorders convolutions), so exact equality
is not expected: the relative L2 error must stay under a tolerance set by the precision. Deep
stacks amplify rounding, though, so PyTorch's own f32 output can already be 1e-3 away from the
exact (float64) answer; when a float64 reference is available the tolerance grows with that
distance, which separates an ill-conditioned model from a backend that computes something else.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

TOLERANCE = {"f32": 1e-3, "bf16": 5e-2}
CONDITIONING_FACTOR = 4.0  # a candidate may be a few times as far off as the baseline itself


def finite(out: np.ndarray) -> bool:
    """Whether every output value is a number: the one definition the worker and judge use."""
    return bool(np.isfinite(out).all())


def lone(out: np.ndarray) -> dict[str, Any] | None:
    """The verdict for an output with nothing to compare against (the baseline itself, or a
    session of one backend): only finiteness can fail; None when there is nothing to say."""
    return None if finite(out) else {"ok": False, "finite": False}


def rel_l2(ref: np.ndarray, out: np.ndarray) -> float | None:
    """||out - ref|| / ||ref||; None when shapes differ or the result is not finite."""
    if ref.shape != out.shape:
        return None
    r = ref.astype(np.float64).ravel()
    d = float(np.linalg.norm(r - out.astype(np.float64).ravel()) / (np.linalg.norm(r) or 1.0))
    return d if math.isfinite(d) else None


def judge(base: np.ndarray, cand: np.ndarray, reference: np.ndarray | None,
          precision: str) -> dict[str, Any]:
    """The parity verdict stored with a candidate cell."""
    tolerance = TOLERANCE[precision]
    verdict: dict[str, Any] = {"finite": finite(cand)}
    if reference is not None:
        base_f64, cand_f64 = rel_l2(reference, base), rel_l2(reference, cand)
        verdict.update(baseline_vs_f64=base_f64, candidate_vs_f64=cand_f64)
        if base_f64 is not None:
            tolerance = max(tolerance, CONDITIONING_FACTOR * base_f64)
    verdict["tolerance"] = tolerance
    if base.shape != cand.shape:
        verdict.update(ok=False, rel_l2=None, why=f"shape {list(cand.shape)} vs {list(base.shape)}")
        return verdict
    err = rel_l2(base, cand)
    verdict["rel_l2"] = err
    verdict["max_abs"] = float(np.max(np.abs(base.astype(np.float64) - cand))) if verdict["finite"] and base.size else None
    verdict["ok"] = verdict["finite"] and err is not None and err <= tolerance
    return verdict


def describe(verdict: Any) -> str:
    """One line for a failed verdict: a flagged cell's reason, in the store and in reports.

    Reads verdicts from any store, so it tolerates missing or malformed fields.
    """
    if not isinstance(verdict, dict):
        return "outputs failed the parity check"
    if verdict.get("finite") is False:
        return "outputs hold NaN or Inf"
    if verdict.get("why"):
        return str(verdict["why"])
    err, tol = verdict.get("rel_l2"), verdict.get("tolerance")
    if not isinstance(tol, (int, float)) or isinstance(tol, bool):
        return "outputs failed the parity check"
    shown = f"{err:.3g}" if isinstance(err, (int, float)) and not isinstance(err, bool) else "not finite"
    return f"rel_l2 {shown} > tolerance {tol:.3g} (relative L2 error)"
