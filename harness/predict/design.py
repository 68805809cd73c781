"""One cell's row of the predictor's design matrix: the terms of the cell as a whole, then per
kernel kind the sums of its kernels' features (``kernel_row``). ``harness.predict.model`` fits
the coefficients of these rows; this module says what each column counts and why.

A cell's quiet-state latency (``harness.predict.dataset.quiet_figure``) is modelled as
``overhead + boundary * MB_in_out + cold * MB_cold + switch * switches + switch_MB * MB_switched
+ sum over its kernels of c0[kind] + c1[kind] * MFLOP + c2[kind] * activation_MB + c3[kind] *
weight_MB + sum over costly activation functions of fn[f] * MB_written[f] + fc[f] * calls[f]``:
one linear model per kernel kind on FLOPs, activation bytes and weight bytes (eager PyTorch
reorders a convolution's weights on every call, OpenVINO packs them once: their bytes
cost differently), plus terms of the cell as a whole (issue 26), in ``CELL`` and ``TERMS``:

* the per-inference overhead;
* the boundary: the bytes entering the first kernel and leaving the last. A runtime converts
  its input and output between the framework's plain layout and its own blocked one once per
  inference, not once per kernel; a one-kernel cell pays that conversion on the kernel's own
  tensors, a network on its image and logits only. Without the term, a one-kernel cell's
  conversion is charged to its kind, and a network of fifty small OpenVINO kernels was
  predicted at twice its latency. OpenVINO's conversions are now read from its runtime graph
  as reorder kernels of their own (``harness.predict.fusion.reorder_kernel``), so for a backend
  whose kernels include them this term is 0: eager PyTorch's conversions stay in it;
* cold weights: all the weight bytes of a cell that moves more bytes in one inference than the
  last-level cache holds (the machine's L3, from the store): its weights, and what its kernels
  read and write. A kernel cell that moves less keeps its weights warm from one inference to the
  next; a network that moves more (ResNet-18's 47 MB of weights; MobileNetV2 at 160x160, 14 MB
  of weights but 81 MB of maps) has evicted each weight before it comes round again, and reads
  it from memory on every inference, at memory bandwidth (and eager PyTorch reorders it too).
  All of them, not the part beyond the cache: each inference reads the weights in the same
  order, and a cache that evicts the least recently used line has evicted each one by then.
  Counted beyond the cache only, the batch-1 MLP of 50 MB (`wide`) was predicted at 0.54 of its
  OpenVINO time and 0.83 of its PyTorch time; counted whole, 0.69 and 1.02 (Zen 4 VM, 32 MiB
  L3, 2026-12-06). Counted only where the weights alone exceed the cache, eager PyTorch's
  MobileNetV2 at 160x160 was predicted at 0.82 of its time (its 1280->1000 classifier took
  0.43-0.50 ms in the network by torch's profiler, 0.09 ms warm in its kernel cell, k6-k9) and
  its OpenVINO time
  at 0.89; counted where the bytes moved exceed it, 0.87 and 0.99, and the RMSPE of five scored
  sets fell 0.2-1.4 points on both backends (Zen 4, 2026-12-07; ``cold_weight_mb``). The bytes
  moved include the layout conversions a runtime makes inside its calls: eager PyTorch's
  oneDNN convolutions convert input, weights and output every call (``harness.predict.eager``;
  its 64x64 bottleneck networks 28-31 MB without them, 45-50 MB with). Only cells
  that move more than the cache (the kernel preset's long chains of wide convolutions, its 67
  MB linear layers) identify it; without them its coefficient is 0 and ``Fit.cold_identified``
  says so;
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
  kernels, 7.3 µs plus 2 µs per MB: the per-MB term is poorly pinned by eight mixed chains).
  Only for a runtime that runs its kernels eagerly (``model.has_layout_conversions``): a
  compiled graph's primitives are created and their weights packed before the first
  inference, so no call has a library state to find cold. OpenVINO's fitted switch was 0
  until its aliased layout conversions were priced apart (``fusion.aliases``); then NNLS gave
  its switched input 19.5 µs/MB, taking up what the mixed chains' conversions left, and its
  networks of many small kernels came out at 1.05-1.23x their time (Zen 4 VM, 2026-12-07);
* activation functions: per costly function (``fusion.FUNCTIONS``: GELU, SiLU, Tanh, ...), the
  megabytes it writes, fused into a convolution or alone (``TERMS``). A kind's features say how
  much a kernel moves and computes, not which function it evaluates: eager PyTorch took 26-29 µs
  for a ReLU and 584 µs for a Tanh on the same 0.88 MB tensor (Zen 4 VM). The ``op=act`` and
  ``post=act`` kernel cells identify each; a function none evaluated is priced as a ReLU and
  noted (``Fit.out_of_range``). Chains of fused ones (``post=act``, ``repeat=4``) matter: fitted
  on one-kernel cells only, OpenVINO's came out at 21-93 µs/MB, and networks with a GELU, SiLU
  or Tanh fused into their depthwise convolutions at 1.17-1.22x their time; with the chains,
  5-48 µs/MB and 1.06-1.10x. And per call, where the function runs as a kernel of its own:
  eager PyTorch's erf GELU took 9.2 µs on 256 floats where a ReLU took 2.6 (Zen 4 VM, 2
  threads; 8.4 µs on 1024, 11 on 4096), a cost per megabyte does not price it, and the MLP with
  four GELUs on 256-feature vectors was predicted at 0.71 of its PyTorch time. The cells'
  functions at 8K-98K floats identify it (fitted 6.9 µs a GELU call and 50 µs/MB, from 87;
  SiLU 2.0 µs, Tanh 1.9, Hardswish 0.8): 0.88-0.89 (Zen 4, 2026-12-07).
"""

from __future__ import annotations

import numpy as np

from harness.layers.kinds import CONVOLUTION_KINDS, KINDS
from harness.predict.fusion import (
    CONCAT_INPLACE,
    FUNCTIONS,
    GLOBAL_POOL,
    LINEAR_ACT,
    PAD,
    REORDER_KINDS,
    Kernel,
)

KERNEL_KINDS = KINDS + (GLOBAL_POOL, LINEAR_ACT, CONCAT_INPLACE, PAD) + REORDER_KINDS
FEATURES = ("count", "MFLOP", "act_MB", "weight_MB")
CELL = ("overhead", "boundary_MB", "cold_weight_MB", "switches", "switch_MB")
# What each cell term costs a prediction, by name (``model.Fit.terms``: milliseconds).
CELL_MS = {"overhead": "overhead_ms", "boundary_MB": "boundary_ms",
           "cold_weight_MB": "cold_weight_ms", "switches": "switch_ms",
           "switch_MB": "switched_input_ms"}
# The terms a cell's kernels add up apart from their kinds: the megabytes each costly activation
# function writes, fused or alone (``fusion.FUNCTIONS``), and its calls where it runs as an
# activation kernel of its own (``function_calls``); then the kinds' features.
TERMS = CELL + tuple(f"{f}_MB" for f in FUNCTIONS) + tuple(f"{f}_calls" for f in FUNCTIONS)
CALLS = len(CELL) + len(FUNCTIONS)  # the first function-call column


def moved_bytes(kernels: list[Kernel]) -> int:
    """The bytes a cell's kernels move in one inference: each kernel's input, output and
    weights (``Kernel.bytes``), and the runtime's layout conversions, as kernels of their own
    (OpenVINO's Reorders) or inside a kernel's call (eager PyTorch's oneDNN convolutions,
    ``Kernel.conversion_bytes``). Traffic, not footprint: a map is counted when written and
    again when read, as it passes through the cache twice."""
    return sum(k.bytes + k.conversion_bytes for k in kernels)


def weight_bytes(kernels: list[Kernel]) -> int:
    """The weight bytes of a cell's kernels (every absorbed unit's, ``Kernel.weight_bytes``)."""
    return sum(k.weight_bytes for k in kernels)


def cold_weight_mb(kernels: list[Kernel], cache_bytes: int) -> float:
    """Weight megabytes a cell streams from memory on every inference: all its weights when
    the bytes its kernels move in one inference (``moved_bytes``) exceed ``cache_bytes``
    (between two uses of a weight, everything else has passed through the cache and evicted
    it), none when they fit; 0 when no cache size is known (the term is then never used)."""
    if cache_bytes <= 0:
        return 0.0
    return weight_bytes(kernels) / 1e6 if moved_bytes(kernels) > cache_bytes else 0.0


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
            if b.kind in CONVOLUTION_KINDS and _signature(a) != _signature(b)]


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
            row[CALLS + FUNCTIONS.index(f)] += function_calls(k)
    for k in kernels if modelled is None else modelled:
        i = len(TERMS) + KERNEL_KINDS.index(k.kind) * len(FEATURES)
        row[i:i + 4] += (1.0, computed_flops(k) / 1e6, activation_bytes(k) / 1e6,
                         k.weight_bytes / 1e6)
    return row


def computed_flops(k: Kernel) -> int:
    """The FLOPs the library computes for this kernel: the model's, or more where its layout
    pads the channels (``Kernel.padded_flops``)."""
    return k.padded_flops or k.flops


def activation_bytes(k: Kernel) -> int:
    """The bytes of maps a kernel reads and writes (all it moves but its weights), with its
    input and output at the padded channel counts where the library pads them."""
    maps = k.bytes - k.weight_bytes
    return maps - k.in_bytes - k.out_bytes + k.padded_map_bytes if k.padded_map_bytes else maps


def function_calls(k: Kernel) -> int:
    """1 where the kernel is an activation function run on its own (eager PyTorch's, or an
    activation cell's), whose call has a cost of its own; 0 where it is fused into another
    kernel (OpenVINO's convolution or FullyConnected evaluates it element by element)."""
    return 1 if k.kind == "activation" else 0


def shape(k: Kernel) -> tuple:
    """What a measured kernel is matched on: kind, window, stride, groups, channels, and the
    bytes in and out (the map sizes). Units fused into it (a batch norm, a ReLU) are not."""
    return (k.kind, k.kernel, k.stride, k.groups, k.cin, k.cout, k.in_bytes, k.out_bytes)
