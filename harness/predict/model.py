"""Per-kernel-kind linear models plus cell-level terms, fitted jointly on whole-cell latencies.

A cell's quiet-state latency (``harness.predict.dataset.quiet_figure``) is modelled as
``overhead + boundary * MB_in_out + cold * MB_cold + switch * switches + switch_MB * MB_switched
+ sum over its kernels of c0[kind] + c1[kind] * MFLOP + c2[kind] * activation_MB + c3[kind] *
weight_MB``: one linear model per kernel kind on FLOPs, activation bytes and weight bytes (eager
PyTorch reorders a convolution's weights on every call, OpenVINO packs them once: their bytes
cost differently), plus terms of the cell as a whole (issue 26):

* the per-inference overhead;
* the boundary: the bytes entering the first kernel and leaving the last. A runtime converts
  its input and output between the framework's plain layout and its own blocked one once per
  inference, not once per kernel; a one-kernel cell pays that conversion on the kernel's own
  tensors, a network on its image and logits only. Without the term, a one-kernel cell's
  conversion is charged to its kind, and a network of fifty small OpenVINO kernels was
  predicted at twice its latency. OpenVINO's conversions are now read from its runtime graph
  as reorder kernels of their own (``harness.predict.fusion.reorder_kernel``), so for a backend
  whose kernels include them this term is 0: eager PyTorch's conversions stay in it;
* cold weights: all the weight bytes of a cell whose weights exceed the last-level cache (the
  machine's L3, from the store). Weights that fit stay warm from one inference to the next, as
  in every small kernel cell; a network whose weights do not (ResNet-18: 47 MB) streams them
  from memory on every inference, at memory bandwidth, and eager PyTorch reorders them too.
  All of them, not the part beyond the cache: each inference reads the weights in the same
  order, and a cache that evicts the least recently used line has evicted each one before it
  comes round again. Counted beyond the cache only, the batch-1 MLP of 50 MB (`wide`) was
  predicted at 0.54 of its OpenVINO time and 0.83 of its PyTorch time; counted whole, 0.69
  and 1.02 (Zen 4 VM, 32 MiB L3, 2026-12-06; ``cold_weight_mb``). Only cells whose weights
  exceed the cache (the kernel preset's long chains of wide convolutions, its 67 MB linear
  layers) identify it; without them its coefficient is 0 and ``Fit.cold_identified`` says so;
* switches: convolutions that follow a different kernel (kind or shape; ``switched`` says why
  only convolutions). A kernel cell repeats one kernel,
  so every call after the first finds its weights, buffers and the library's state warm; in a
  network each kernel follows a different one. Measured on a Zen 1 VM (eager PyTorch, 2
  threads), the 18 layers of a plain ConvNet summed to 1.00 ms timed alone and took 1.42-1.67 ms
  called one after another, the second call of each layer again costing its alone time.
  Same-kernel ``repeat=`` chains (no switch) beside ``op=mix`` chains (a switch at every
  convolution) identify it; without both, its column is left out and ``Fit.switch_identified`` says
  so (in a network switches are nearly kernels - 1, which the count terms would absorb). A
  second switch term per MB of the switching kernel's input: the input was written by another
  kernel's threads, partly in the other core's cache (fitted on a Zen 4 VM: eager PyTorch 7.5
  µs a switch plus 15 µs per MB, OpenVINO 0; a second run of the kernel preset, with 16 more
  kernels, 7.3 µs plus 2 µs per MB: the per-MB term is poorly pinned by eight mixed chains);
* activation functions: per costly function (``fusion.FUNCTIONS``: GELU, SiLU, Tanh, ...), the
  megabytes it writes, fused into a convolution or alone (``TERMS``). A kind's features say how
  much a kernel moves and computes, not which function it evaluates: eager PyTorch took 26-29 µs
  for a ReLU and 584 µs for a Tanh on the same 0.88 MB tensor (Zen 4 VM). The ``op=act`` and
  ``post=act`` kernel cells identify each; a function none evaluated is priced as a ReLU and
  noted (``Fit.out_of_range``). Chains of fused ones (``post=act``, ``repeat=4``) matter: fitted
  on one-kernel cells only, OpenVINO's came out at 21-93 µs/MB, and networks with a GELU, SiLU
  or Tanh fused into their depthwise convolutions at 1.17-1.22x their time; with the chains,
  5-48 µs/MB and 1.06-1.10x.

The sum is linear in the coefficients, so one non-negative least-squares solve (scipy's
``nnls``) fits every kind and cell term at once, from kernel cells of one or several kernels
(the kernel family's ``repeat=`` chains are what separate the overhead and the boundary from a
kernel's fixed cost). Rows are weighted by 1/latency: the error that matters is relative
(nn-Meter's ±10%), and a 50 ms cell must not outvote fifty 0.1 ms ones. The kernel cells' own
residuals agree: their squared residuals regressed on latency² and 1 give a relative error
(OpenVINO 17%, eager PyTorch 36%) and no absolute floor (Zen 4 VM, kernel store of 2026-12-06). Weighted by 1/latency^0.8
instead, the quick preset's networks came out better on OpenVINO (64 -> 73% within ±10%) and on
the speed-up (64 -> 73%; a second set of 12 networks 50 -> 92%), PyTorch's second set worse
(67 -> 58%): a sign that the kernel cells' fixed costs carry over to networks too heavily, not
a reason to weight by what the scored networks prefer. Non-negative, because a kernel that
gets cheaper with more work is an artefact of the fit.

Chains and their single kernel, twice (``chain_pairs``):

* a difference row. A chain of n copies less its one-kernel cell is n - 1 kernels in a network's
  state, with the cell's fixed costs (overhead, and OpenVINO's layout conversions, which no
  feature describes well) cancelled. On a Zen 4 VM a one-kernel OpenVINO cell of a 16-channel
  64x64 convolution spent 100-150 µs converting its output back to the plain layout against
  13-16 µs in the convolution; fitted on whole cells only, those conversions leaked into the
  kinds' activation-MB coefficients, and small-channel networks at 64x64 were predicted at
  1.3-1.4x their time. With the difference rows, OpenVINO's networks within ±10%: 36-41% ->
  55-64% (two quick sessions' 22 networks, Zen 4, 2026-12-06);
* a measured kernel. Where a network runs a kernel of exactly the shape of a chain, that
  chain's marginal cost (the difference less the cell terms' difference, per copy) replaces
  the kind's regression (``Fit.measured``). The regression cannot follow the library's choice
  of algorithm by shape: eager PyTorch's 1x1 convolution of 72 channels at 16x16 took 29 µs,
  of 36 channels at 32x32 (the same FLOPs and activation bytes) 128 µs (kernel preset, Zen 4).

The interval of a prediction: a bootstrap over the fitted cells (cases resampled by spec, the
same draw for every backend so a speed-up's two sides stay paired), each refit's prediction
multiplied by a relative residual of the full fit drawn at random: parameter uncertainty and
the scatter of real cells around the model, together. The 2.5 and 97.5 percentiles bound it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.optimize import nnls

from harness.layers.kinds import KINDS
from harness.predict.fusion import (
    BROADER,
    FUNCTIONS,
    GLOBAL_POOL,
    LINEAR_ACT,
    REORDER_KINDS,
    Kernel,
)

KERNEL_KINDS = KINDS + (GLOBAL_POOL, LINEAR_ACT) + REORDER_KINDS
# The kernels a switch is charged to: the convolutions (oneDNN primitives in eager PyTorch).
# Also the kinds whose unmeasured channel counts are noted (``Fit.out_of_range``).
CONVOLUTIONS = ("conv", "depthwise", "pointwise", "grouped")
FEATURES = ("count", "MFLOP", "act_MB", "weight_MB")
CELL = ("overhead", "boundary_MB", "cold_weight_MB", "switches", "switch_MB")
# The terms a cell's kernels add up apart from their kinds: the megabytes each costly activation
# function writes, fused or alone (``fusion.FUNCTIONS``); then the kinds' features.
TERMS = CELL + tuple(f"{f}_MB" for f in FUNCTIONS)
BOOT = 200


def cold_weight_mb(kernels: list[Kernel], cache_bytes: int) -> float:
    """Weight megabytes a cell streams from memory on every inference: all its weights when
    they exceed ``cache_bytes`` (read in the same order every inference, each is evicted before
    its next use), none when they fit; 0 when no cache size is known (the term is then never
    used)."""
    if cache_bytes <= 0:
        return 0.0
    total = sum(k.weight_bytes for k in kernels)
    return total / 1e6 if total > cache_bytes else 0.0


def _signature(k: Kernel) -> tuple:
    return (k.kind, k.kernel, k.stride, k.groups, k.cin, k.cout, k.flops, k.bytes)


def computing(kernels: list[Kernel]) -> list[Kernel]:
    """The kernels that are units of the model (the runtime's layout conversions left out)."""
    return [k for k in kernels if k.kind not in REORDER_KINDS]


def switched(kernels: list[Kernel]) -> list[Kernel]:
    """Convolutions that follow a different kernel (kind or shape), in execution order; layout
    conversions between them neither count nor separate two equal kernels.

    Why convolutions only: the mixed chains that identify the term switch into a convolution
    at every other kernel, and a chain of small linear layers and activations pays nothing
    like it. Counted at every kernel, eager PyTorch's switch (8 µs fitted on a Zen 4 VM) put an
    MLP of four linear layers and their ReLUs (116-118 µs measured in six sessions) at 179 µs;
    counted at convolutions, at 121 µs."""
    ks = computing(kernels)
    return [b for a, b in zip(ks, ks[1:], strict=False)
            if b.kind in CONVOLUTIONS and _signature(a) != _signature(b)]


def switches(kernels: list[Kernel]) -> int:
    return len(switched(kernels))


def kernel_row(kernels: list[Kernel], cache_bytes: int = 0,
               modelled: list[Kernel] | None = None) -> np.ndarray:
    """The design-matrix row of one network: its cell terms (1 for the overhead, the boundary
    megabytes, the cold weight megabytes, the switches and the megabytes they read), the
    megabytes written by each costly activation function (every kernel's, measured or not: a
    measured kernel's price excludes its function, which this column adds), then per kind the
    feature sums
    (``FEATURES``) of ``modelled`` (default: every kernel; ``Fit.split`` leaves out those priced
    by measurement). A backend whose kernels include its layout
    conversions (OpenVINO's reorder kernels) pays the boundary through them, so its boundary
    column is 0."""
    row = np.zeros(len(TERMS) + len(KERNEL_KINDS) * len(FEATURES))
    row[0] = 1.0
    ks = computing(kernels)
    if ks and len(ks) == len(kernels):  # a runtime's read conversions are its reorder kernels
        row[1] = (ks[0].in_bytes + ks[-1].out_bytes) / 1e6
    row[2] = cold_weight_mb(kernels, cache_bytes)
    after = switched(kernels)
    row[3] = len(after)
    row[4] = sum(k.in_bytes for k in after) / 1e6
    for k in kernels:
        for f, written in k.functions:
            row[len(CELL) + FUNCTIONS.index(f)] += written / 1e6
    for k in kernels if modelled is None else modelled:
        i = len(TERMS) + KERNEL_KINDS.index(k.kind) * len(FEATURES)
        row[i:i + 4] += (1.0, k.flops / 1e6, (k.bytes - k.weight_bytes) / 1e6,
                         k.weight_bytes / 1e6)
    return row


def _solve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    w = 1.0 / y
    coef, _ = nnls(x * w[:, None], y * w)
    return coef


def shape(k: Kernel) -> tuple:
    """What a measured kernel is matched on: kind, window, stride, groups, channels, and the
    bytes in and out (the map sizes). Units fused into it (a batch norm, a ReLU) are not."""
    return (k.kind, k.kernel, k.stride, k.groups, k.cin, k.cout, k.in_bytes, k.out_bytes)


def chain_pairs(rows: list[tuple[str, float, list[Kernel]]]) -> list[tuple[int, int]]:
    """``(single, chain)`` row indices: a cell of one kernel and a cell of several copies of
    that kernel's shape and activation functions (the kernel family's ``repeat=``), each chain
    with its single."""
    singles: dict[tuple, int] = {}
    chains: list[tuple[tuple, int]] = []
    for i, (_, _, ks) in enumerate(rows):
        comp = computing(ks)
        # a chain with a GELU after each copy pairs with the single that has one too
        keys = {(shape(k), tuple(f for f, _ in k.functions)) for k in comp}
        if not comp or len(keys) != 1:
            continue
        if len(comp) == 1:
            singles[keys.pop()] = i
        else:
            chains.append((keys.pop(), i))
    return [(singles[key], i) for key, i in chains if key in singles]


def _with_differences(x: np.ndarray, y: np.ndarray, pairs: list[tuple[int, int]]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The rows, plus a row chain - single for each pair whose chain took longer."""
    keep = [(a, b) for a, b in pairs if y[b] > y[a]]
    if not keep:
        return x, y
    return (np.vstack([x, np.array([x[b] - x[a] for a, b in keep])]),
            np.concatenate([y, np.array([y[b] - y[a] for a, b in keep])]))


def _measured(rows: list[tuple[str, float, list[Kernel]]], x: np.ndarray,
              pairs: list[tuple[int, int]], coef: np.ndarray) -> dict[tuple, float]:
    """Per chained shape, one copy's cost: (chain - single) less the cell terms' and activation
    functions' difference, over the copies added (the mean where several chains share a shape);
    none when not > 0."""
    n = len(TERMS)
    got: dict[tuple, list[float]] = {}
    for a, b in pairs:
        copies = len(computing(rows[b][2])) - 1
        cells = float((x[b, :n] - x[a, :n]) @ coef[:n])
        per = (rows[b][1] - rows[a][1] - cells) / copies
        got.setdefault(shape(computing(rows[a][2])[0]), []).append(per)
    return {key: float(np.mean(v)) for key, v in got.items() if np.mean(v) > 0}


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
    cache_bytes: int = 0  # the last-level cache the cold-weight term counts beyond
    cold_identified: bool = False  # whether any fitted cell's weights exceeded it
    switch_identified: bool = False  # whether same-kernel chains and mixed chains were fitted
    # shape -> the marginal ms of one copy, from a chain beside its single kernel (``shape``)
    measured: dict[tuple, float] = field(default_factory=dict)
    # per convolution kind, the channel counts its fitted kernels had (in or out)
    channels: dict[str, set[int]] = field(default_factory=dict)
    # the activation functions (``fusion.FUNCTIONS``) some fitted cell evaluated
    functions: set[str] = field(default_factory=set)

    def split(self, kernels: list[Kernel]) -> tuple[np.ndarray, float]:
        """The design row of what the regression prices (the cell terms and every kernel whose
        shape no chain measured) and the ms of the kernels priced by measurement."""
        kernels = [self.fitted(k) for k in kernels]
        priced = [k for k in kernels if self.is_measured(k)]
        modelled = [k for k in kernels if not self.is_measured(k)]
        return (kernel_row(kernels, self.cache_bytes, modelled),
                sum(self.measured[shape(k)] for k in priced))

    def predict_ms(self, kernels: list[Kernel]) -> float:
        row, fixed = self.split(kernels)
        return float(row @ self.coef) + fixed

    def is_measured(self, k: Kernel) -> bool:
        """Priced by a chain of its exact shape (only computing kernels are ever chained, so a
        layout conversion never is)."""
        return shape(self.fitted(k)) in self.measured

    def fitted(self, k: Kernel) -> Kernel:
        """``k`` as this fit prices it: of its broader kind (``BROADER``) where no cell of its
        own kind was fitted and one of the broader kind was."""
        wider = BROADER.get(k.kind)
        if k.kind in self.ranges or wider not in self.ranges:
            return k
        return replace(k, kind=wider)

    def coefficients(self) -> dict[str, Any]:
        """The model, readable: the cell terms and each measured kind's four coefficients."""
        out: dict[str, Any] = {"overhead_ms": float(self.coef[0]),
                               "boundary_ms_per_MB": float(self.coef[1]),
                               "cold_weight_ms_per_MB": float(self.coef[2]),
                               "cache_bytes": self.cache_bytes,
                               "cold_identified": self.cold_identified,
                               "switch_ms": float(self.coef[3]),
                               "switch_ms_per_MB": float(self.coef[4]),
                               "switch_identified": self.switch_identified,
                               "measured_shapes": len(self.measured),
                               "function_ms_per_MB": {
                                   f: float(self.coef[len(CELL) + FUNCTIONS.index(f)])
                                   for f in FUNCTIONS if f in self.functions}}
        for kind in self.ranges:
            i = len(TERMS) + KERNEL_KINDS.index(kind) * len(FEATURES)
            out[kind] = {"ms_per_kernel": float(self.coef[i]), "ms_per_MFLOP": float(self.coef[i + 1]),
                         "ms_per_activation_MB": float(self.coef[i + 2]),
                         "ms_per_weight_MB": float(self.coef[i + 3])}
        return out

    def kernel_ms(self, k: Kernel) -> float:
        """One kernel's own share: its measured cost or its kind's terms, and its activation
        functions' (no cell terms)."""
        k = self.fitted(k)
        row = kernel_row([k], modelled=[] if self.is_measured(k) else None)
        own = float(row[len(CELL):] @ self.coef[len(CELL):])
        return own + (self.measured[shape(k)] if self.is_measured(k) else 0.0)

    def out_of_range(self, kernels: list[Kernel]) -> list[str]:
        """What in ``kernels`` lies outside the fitted cells' kinds and ranges (never silent)."""
        notes = []
        unpriced: dict[str, str] = {}
        for k in kernels:
            for f, _ in k.functions:
                if f not in self.functions:
                    unpriced.setdefault(f, k.units[0])
            as_fitted = self.fitted(k)
            if as_fitted.kind != k.kind:
                notes.append(f"{k.units[0]}: no {k.kind} kernel was measured; priced as "
                             f"{as_fitted.kind} (its own kind may cost more: run the kernel "
                             "preset again)")
                k = as_fitted
            rng = self.ranges.get(k.kind)
            if rng is None:
                notes.append(f"{k.units[0]}: no {k.kind} kernel was measured")
                continue
            for feat, value in _range_features(k):
                lo, hi = rng[feat]
                if value > hi * 1.0001 or value < lo * 0.9999:
                    notes.append(f"{k.units[0]} ({k.kind}): {feat} {value:.3g} outside the "
                                 f"measured {lo:.3g}..{hi:.3g}")
        notes += [f"{unit}: no kernel with a {f} activation was measured; priced as a ReLU "
                  f"(it may cost several times more: run the kernel preset again)"
                  for f, unit in unpriced.items()]
        return notes + self._unseen_channels(kernels)

    def _unseen_channels(self, kernels: list[Kernel]) -> list[str]:
        """One note per convolution kind and channel count no fitted kernel of that kind had.

        Why channels and not only FLOPs and bytes: the libraries choose a convolution's
        algorithm by its shape, and the cost follows the choice. On a Zen 4 VM eager PyTorch's
        1x1 convolution of 36 channels at 32x32 took 128 µs, of 72 at 16x16 (the same FLOPs)
        29 µs; a held-out network of 24- to 192-channel 3x3 convolutions (48 and 192 at no
        count of the kernel preset) ran at 2.1x its prediction, within every FLOP and byte
        range."""
        unseen: dict[tuple[str, int], str] = {}
        for k in kernels:
            seen = self.channels.get(k.kind)
            if not seen or self.is_measured(k):
                continue
            for c in (k.cin, k.cout):
                if c not in seen:
                    unseen.setdefault((k.kind, c), k.units[0])
        return [f"{unit} ({kind}): {c} channels, a count no {kind} kernel was measured at "
                f"(measured: {_counts(self.channels[kind])}); the library may take another "
                f"algorithm there" for (kind, c), unit in unseen.items()]


def _counts(values: set[int], most: int = 12) -> str:
    got = sorted(values)
    return ", ".join(map(str, got[:most])) + (f", ... ({len(got)})" if len(got) > most else "")


def _range_features(k: Kernel) -> tuple[tuple[str, float], ...]:
    """The features a kernel's range is checked on: those its kind's model is fitted on."""
    return (("MFLOP", k.flops / 1e6), ("activation MB", (k.bytes - k.weight_bytes) / 1e6),
            ("weight MB", k.weight_bytes / 1e6))


def fit(data: dict[str, list[tuple[str, float, list[Kernel]]]], seed: int = 0,
        cache_bytes: int = 0) -> dict[str, Fit]:
    """``data``: per backend, ``(spec, quiet_ms, kernels)`` of each fitted cell;
    ``cache_bytes``: the measured machine's last-level cache (0: no cold-weight term)."""
    specs = sorted({s for rows in data.values() for s, _, _ in rows})
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(specs), len(specs)) for _ in range(BOOT)]
    fits = {}
    for backend, rows in data.items():
        if not rows:
            continue
        x = np.array([kernel_row(k, cache_bytes) for _, _, k in rows])
        y = np.array([ms for _, ms, _ in rows])
        n_kernels = np.array([len(computing(k)) for _, _, k in rows])
        # the switch term needs chains without switches beside chains with them
        switch_ok = bool(np.any((n_kernels > 1) & (x[:, 3] == 0)) and np.any(x[:, 3] >= 2))
        if not switch_ok:
            x[:, 3:5] = 0.0  # left out: NNLS gives an all-zero column a zero coefficient
        pairs = chain_pairs(rows)
        coef = _solve(*_with_differences(x, y, pairs))
        where: dict[str, list[int]] = {}
        for i, (s, _, _) in enumerate(rows):
            where.setdefault(s, []).append(i)
        boot = []
        for d in draws:
            idx = [i for j in d for i in where.get(specs[j], [])]
            pos = {i: p for p, i in enumerate(idx)}  # the resample's rows; a pair counts once
            drawn = list({(pos[a], pos[b]) for a, b in pairs if a in pos and b in pos})
            boot.append(_solve(*_with_differences(x[idx], y[idx], drawn)) if idx else coef)
        ranges: dict[str, dict[str, tuple[float, float]]] = {}
        channels: dict[str, set[int]] = {}
        for _, _, ks in rows:
            for k in ks:
                if k.kind in CONVOLUTIONS:
                    channels.setdefault(k.kind, set()).update((k.cin, k.cout))
                r = ranges.setdefault(k.kind, {})
                for feat, v in _range_features(k):
                    got = r.get(feat, (np.inf, -np.inf))
                    r[feat] = (min(got[0], v), max(got[1], v))
        fitted = x @ coef
        ratios = np.where(fitted > 0, y / np.maximum(fitted, 1e-12), 1.0)
        functions = {f for i, f in enumerate(FUNCTIONS) if np.any(x[:, len(CELL) + i] > 0)}
        fits[backend] = Fit(backend, coef, np.array(boot), ratios, ranges, len(rows),
                            sorted(where), cache_bytes, bool(np.any(x[:, 2] > 0)), switch_ok,
                            _measured(rows, x, pairs, coef), channels, functions)
    return fits


def draws(f: Fit, kernels: list[Kernel], rng: np.random.Generator) -> np.ndarray:
    """Predictive draws of one network's latency (ms) on ``f``'s backend (a measured kernel's
    cost is held at its measurement, its activation functions drawn with the cell terms and
    the kinds; the residual draw scales the whole)."""
    row, fixed = f.split(kernels)
    return (f.boot @ row + fixed) * rng.choice(f.ratios, size=len(f.boot))


def interval(values: np.ndarray) -> list[float]:
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]
