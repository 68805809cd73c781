"""Per-kernel-kind linear models, fitted jointly on whole-cell latencies, with intervals.

A cell's median latency is modelled as ``overhead + sum over its kernels of
c0[kind] + c1[kind] * MFLOP + c2[kind] * MB``: one linear model per kernel kind on FLOPs and
bytes moved, plus a per-inference overhead. The sum is linear in the coefficients, so one
non-negative least-squares solve (scipy's ``nnls``) fits every kind and the overhead at once,
from kernel cells of one or several kernels (the kernel family's ``repeat=`` chains are what
separate the overhead from a kernel's fixed cost). Rows are weighted by 1/latency: the error
that matters is relative (nn-Meter's ±10%), and a 50 ms cell must not outvote fifty 0.1 ms ones.
Non-negative, because a kernel that gets cheaper with more work is an artefact of the fit.

The interval of a prediction: a bootstrap over the fitted cells (cases resampled by spec, the
same draw for every backend so a speed-up's two sides stay paired), each refit's prediction
multiplied by a relative residual of the full fit drawn at random: parameter uncertainty and
the scatter of real cells around the model, together. The 2.5 and 97.5 percentiles bound it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import nnls

from harness.layers.kinds import KINDS
from harness.predict.fusion import Kernel

FEATURES = ("count", "MFLOP", "MB")
BOOT = 200


def kernel_row(kernels: list[Kernel]) -> np.ndarray:
    """The design-matrix row of one network: 1 (overhead), then per kind its feature sums."""
    row = np.zeros(1 + len(KINDS) * len(FEATURES))
    row[0] = 1.0
    for k in kernels:
        i = 1 + KINDS.index(k.kind) * len(FEATURES)
        row[i:i + 3] += (1.0, k.flops / 1e6, k.bytes / 1e6)
    return row


def _solve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    w = 1.0 / y
    coef, _ = nnls(x * w[:, None], y * w)
    return coef


@dataclass
class Fit:
    """One backend's fitted model (at one precision and thread count)."""

    backend: str
    coef: np.ndarray
    boot: np.ndarray  # (BOOT, p) refits on resampled cells
    ratios: np.ndarray  # measured / fitted, per fitted cell
    ranges: dict[str, dict[str, tuple[float, float]]]  # kind -> feature -> (min, max)
    n_cells: int
    specs: list[str] = field(default_factory=list)

    def coefficients(self) -> dict[str, Any]:
        """The model, readable: overhead and each measured kind's three coefficients."""
        out: dict[str, Any] = {"overhead_ms": float(self.coef[0])}
        for kind in self.ranges:
            i = 1 + KINDS.index(kind) * len(FEATURES)
            out[kind] = {"ms_per_kernel": float(self.coef[i]), "ms_per_MFLOP": float(self.coef[i + 1]),
                         "ms_per_MB": float(self.coef[i + 2])}
        return out

    def kernel_ms(self, k: Kernel) -> float:
        return float(kernel_row([k])[1:] @ self.coef[1:])

    def out_of_range(self, kernels: list[Kernel]) -> list[str]:
        """What in ``kernels`` lies outside the fitted cells' kinds and ranges (never silent)."""
        notes = []
        for k in kernels:
            rng = self.ranges.get(k.kind)
            if rng is None:
                notes.append(f"{k.units[0]}: no {k.kind} kernel was measured")
                continue
            for feat, value in (("MFLOP", k.flops / 1e6), ("MB", k.bytes / 1e6)):
                lo, hi = rng[feat]
                if value > hi * 1.0001 or value < lo * 0.9999:
                    notes.append(f"{k.units[0]} ({k.kind}): {feat} {value:.3g} outside the "
                                 f"measured {lo:.3g}..{hi:.3g}")
        return notes


def fit(data: dict[str, list[tuple[str, float, list[Kernel]]]], seed: int = 0) -> dict[str, Fit]:
    """``data``: per backend, ``(spec, median_ms, kernels)`` of each fitted cell."""
    specs = sorted({s for rows in data.values() for s, _, _ in rows})
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(specs), len(specs)) for _ in range(BOOT)]
    fits = {}
    for backend, rows in data.items():
        if not rows:
            continue
        x = np.array([kernel_row(k) for _, _, k in rows])
        y = np.array([ms for _, ms, _ in rows])
        coef = _solve(x, y)
        where: dict[str, list[int]] = {}
        for i, (s, _, _) in enumerate(rows):
            where.setdefault(s, []).append(i)
        boot = []
        for d in draws:
            idx = [i for j in d for i in where.get(specs[j], [])]
            boot.append(_solve(x[idx], y[idx]) if idx else coef)
        ranges: dict[str, dict[str, tuple[float, float]]] = {}
        for _, _, ks in rows:
            for k in ks:
                r = ranges.setdefault(k.kind, {"MFLOP": (np.inf, -np.inf), "MB": (np.inf, -np.inf)})
                for feat, v in (("MFLOP", k.flops / 1e6), ("MB", k.bytes / 1e6)):
                    r[feat] = (min(r[feat][0], v), max(r[feat][1], v))
        fitted = x @ coef
        ratios = np.where(fitted > 0, y / np.maximum(fitted, 1e-12), 1.0)
        fits[backend] = Fit(backend, coef, np.array(boot), ratios, ranges, len(rows),
                            sorted(where))
    return fits


def draws(f: Fit, kernels: list[Kernel], rng: np.random.Generator) -> np.ndarray:
    """Predictive draws of one network's latency (ms) on ``f``'s backend."""
    row = kernel_row(kernels)
    return (f.boot @ row) * rng.choice(f.ratios, size=len(f.boot))


def interval(values: np.ndarray) -> list[float]:
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]
