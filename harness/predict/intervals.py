"""Prediction intervals of the latency predictor: paired predictive draws of a network's latency
on each backend (``draws``), from a fit's bootstrap refits and held-out residuals
(``harness.predict.model``) and the machine's session level (``harness.predict.session``), and
the 95% interval of a set of draws (``interval``).
"""

from __future__ import annotations

import numpy as np

from harness.predict.design import CELL
from harness.predict.fusion import Kernel
from harness.predict.model import Fit
from harness.predict.session import SessionLevel


def draws(fits: dict[str, Fit], kernels: dict[str, list[Kernel]], rng: np.random.Generator,
          session: SessionLevel | None = None) -> dict[str, np.ndarray]:
    """Predictive draws of one network's latency (ms) on each backend of ``kernels`` (its
    kernels there; each backend's fit in ``fits``), paired across backends draw by draw, each
    multiplied by the machine's session level where one was recorded (``session``).

    A draw prices the network with one bootstrap refit (``Fit.boot``: the coefficients'
    uncertainty) and multiplies each kernel's price, and the cell terms' apart, by the relative
    residual (measured / predicted by a fit that held it out) of a fitted cell drawn at random:
    each kernel of a network
    strays from its kind's regression as a kernel cell does, and independently of the others.
    Pairing: a layer draws the same cell on every backend (a kernel is known by its first
    unit, so OpenVINO's fused kernel and eager PyTorch's convolution of that layer share the
    draw), and every backend the same refit, so a speed-up's two sides move together where the
    cells' residuals do.

    Centred: the residuals drawn are scaled so that their mean is their median. The kernel
    cells' residuals have a long upper tail (shapes a library runs slowly, a cell timed in a
    host's slow stretch): over the kernel preset they average 1.08 on OpenVINO and 1.10-1.12 on
    eager PyTorch at medians of 1.00-1.02 (Zen 4 VM, 2026-12-07), and a network of many
    kernels, whose draws average out, had its interval pushed up by the tail: OpenVINO's
    bottleneck at 0.338 ms was predicted at 0.351 ms in [0.338, 0.527]. The measured networks
    are not above their predictions that way: scaled up by the residuals' mean (1.08),
    OpenVINO's predictions fall within ±10% less often on six of seven scored sets (by 9-42
    points). Uncentred, the 95% intervals held 82-93% of OpenVINO's measured figures on seven
    scored sets (median half-width ±32-34%); centred, 95-100% at ±30-33%, eager PyTorch's
    98-100% at ±28-38% (was ±31-42%) and the speed-up's 95-100% at ±31-39% (fitted on one run
    of the kernel preset, k9). Divided by the mean instead, the same within a point. This is a
    correction the measured networks ask for, not one the model implies: were a network's
    kernels to stray as independently and as far upwards as the cells do, its latency would
    converge on the prediction times the cells' mean residual, and on a synthetic machine built
    that way (log-normal kernels, ``tests/test_predict_intervals.py``) the centred intervals hold
    fewer networks than the uncentred (76% against 81% over six machines).

    Why not one residual for the whole network (as before 2026-12-07): a kernel cell's residual
    is one kernel's, and a network's errors partly cancel over its kernels. On a Zen 4 VM
    (fitted on one kernel-preset run, scored on 22 quick and 12 held-out networks and the 57 of
    the axes preset) that interval was ±43-48% wide on OpenVINO, ±83-86% on PyTorch and ±89-99%
    on the speed-up at the median, and held the measured figure 96-100% of the time, where the
    predictions' RMSPE was 10-20%: true and useless. Drawn kernel by kernel: ±26-30%, ±26-34%,
    ±31-37%, holding it 88-100% of the time (``score`` states both, for every store it scores).
    """
    backends = [b for b in kernels if b in fits]
    common = set.intersection(*(set(fits[b].residuals) for b in backends)) if backends else set()
    pool = sorted(common)
    n = len(fits[backends[0]].boot) if backends else 0
    picks: dict[str, np.ndarray] = {}  # a layer (or the cell terms, "") -> cell drawn per draw

    # each backend's residuals as drawn (the shared pool, or its own cells without one), their
    # mean brought to their median: a draw strays around the typical cell, not its tail
    drawn = {b: np.array([fits[b].residuals[s] for s in pool] if pool
                         else list(fits[b].residuals.values())) for b in backends}
    centred = {b: r * np.median(r) / r.mean() if r.size and r.mean() > 0 else r
               for b, r in drawn.items()}

    def residual(b: str, key: str) -> np.ndarray:
        if not pool:  # no cell every backend ran: each backend's own cells, unpaired
            return rng.choice(centred[b], size=n)
        if key not in picks:
            picks[key] = rng.integers(0, len(pool), size=n)
        return centred[b][picks[key]]

    out = {}
    for b in backends:
        f, ks = fits[b], kernels[b]
        row, _ = f.split(ks)
        total = (f.boot[:, :len(CELL)] @ row[:len(CELL)]) * residual(b, "")
        for k in ks:
            own, priced = f.split([k])
            share = f.boot[:, len(CELL):] @ own[len(CELL):] + priced
            total = total + share * residual(b, k.units[0] if k.units else repr(k))
        out[b] = total
    if session is not None and out:  # a whole session's level, on every backend paired
        for b, factor in session.factors(sorted(out), n, rng).items():
            out[b] = out[b] * factor
    return out


def interval(values: np.ndarray) -> list[float]:
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]
