"""What eager PyTorch moves inside one convolution call that its units do not show.

ATen runs a CPU convolution either through oneDNN or through its own im2col and GEMM, and
chooses by shape (``runs_onednn``). On the oneDNN path an eager call converts layouts every
time: the plain (NCHW) input into oneDNN's blocked one, the weights into their blocked one, and
the blocked output back to plain. oneDNN's verbose log of one 16-channel 3x3 convolution at
64x64 (torch 2.13, 2 threads) reads ``reorder`` (the input, abcd -> aBcd16b), ``reorder`` (the
weights, -> ABcd16b16a), ``convolution``, ``reorder`` (the output, aBcd16b -> abcd); the same
convolution at 32x32 with 16 channels (16384 elements) runs no oneDNN primitive at all.

Those conversions are traffic: each reads a tensor and writes another of its size. They are not
kernels of the model, so the kernel cells' prices include their time, but the bytes an inference
moves (``design.moved_bytes``, which decides whether its weights come from memory) did not count
them. Counted (``conversion_bytes``: twice the input, output and weights of a convolution on the
oneDNN path), eager PyTorch's bottleneck networks at 64x64 move 45-50 MB instead of 28-31 MB,
more than the 33.6 MB (32 MiB) L3 of the Zen 4 VM they ran on, and their weights are priced as
read from memory: predicted at 0.74-0.90 of their measured time before, 0.86-1.01 after (the
axes preset's two sessions, fitted on one kernel run; README, "Predicting"). OpenVINO's
conversions are kernels of its runtime graph and counted there (``fusion.reorder_kernel``).

oneDNN's blocked layout also pads: a map of 24 channels is stored and computed as 32 (the log
reads ``src:f32:ap:blocked:aBcd16b``, ``p`` for padded), so a 24-channel 3x3 convolution at 64x64
costs what a 32-channel one does (0.33 against 0.33-0.36 ms in the log; 533 against 430 µs a call
with its conversions, Zen 4 VM, 2 threads). ``padded`` gives the FLOPs and map bytes of a call
at the channel counts oneDNN computes on, which the predictor's rows use for eager
convolutions (``design.kernel_row``): priced by the model's FLOPs, eager PyTorch's networks of
24-channel stages were predicted at 0.80-0.87 of their time.
"""

from __future__ import annotations

import functools
from typing import Any

from harness.layers.kinds import CONVOLUTION_KINDS

# ATen's threshold: at batch 1 a float32 convolution with a kernel of at most 3 in either
# dimension and no groups runs oneDNN only when its input has more elements than this, its own
# im2col + GEMM otherwise.
# Checked against oneDNN's verbose log (tests/test_predict_eager.py): 20 channels at 32x32
# (20480) native, 8 channels at 64x64 (32768) oneDNN.
ONEDNN_MIN_ELEMENTS = 20480
# Input channels below which oneDNN reads the plain input directly, with no input reorder: its
# verbose log shows none for 3 and 8 channels (a stem at 64x64 to 224x224), one for 16.
PLAIN_INPUT_BELOW = 16
NARROW_FLOATS = ("bf16", "f16")


@functools.cache
def onednn_block() -> int:
    """The channel block of oneDNN's f32 layouts on this CPU, as ATen dispatches: 16 floats
    (one AVX-512 register) where torch runs its AVX-512 kernels, 8 (AVX2) otherwise. OpenVINO's
    CPU plugin, built on oneDNN, blocks its output channels the same way
    (``fusion.compiled_blocks``)."""
    import torch

    return 16 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else 8


def padded_channels(channels: int, block: int) -> int:
    """``channels`` rounded up to a whole number of ``block``s."""
    return -(-channels // block) * block


def runs_onednn(unit: dict[str, Any], *, threads: int, precision: str) -> bool:
    """Whether eager PyTorch runs this convolution unit through oneDNN.

    ATen's rule for a CPU tensor: float32 takes oneDNN when (1) the convolution is strided,
    batched 16 or more, not 1x1, or more than one thread runs it, and (2) it is grouped, its
    kernel is larger than 3 in both dimensions, its batch is above 1, or its input has more than
    ``ONEDNN_MIN_ELEMENTS`` elements. A narrower float (bf16, f16) takes oneDNN wherever the CPU
    supports it, which is where the harness runs it."""
    if unit.get("kind") not in CONVOLUTION_KINDS:
        return False
    if precision in NARROW_FLOATS:
        return True
    # the weight's last two dimensions, as ATen reads them (a Conv1d runs as a 2-D one, H = 1)
    size = ([1] + [int(k) for k in unit.get("kernel_size") or [unit.get("kernel", 0)] * 2])[-2:]
    batch = int((unit.get("out_shape") or [1])[0])
    elements = int(unit.get("in_bytes", 0)) // 4
    first = (int(unit.get("stride", 1)) > 1 or batch >= 16 or any(k != 1 for k in size)
             or threads > 1)
    second = (int(unit.get("groups", 1)) > 1 or all(k > 3 for k in size) or batch > 1
              or elements > ONEDNN_MIN_ELEMENTS)
    return first and second


def conversion_bytes(unit: dict[str, Any], *, threads: int, precision: str,
                     layout: str = "contiguous") -> int:
    """Bytes eager PyTorch's layout conversions move in one call of this unit: each of the
    input, the weights and the output read once and written once; 0 off the oneDNN path.
    The input is read as it is below ``PLAIN_INPUT_BELOW`` channels; with the ``channels_last``
    layout only the weights are converted (oneDNN's log: ``reorder``, ``convolution``). The
    unit's bytes are its float32 model's: a narrower float moves half of them."""
    if not runs_onednn(unit, threads=threads, precision=precision):
        return 0
    maps = 0 if layout == "channels_last" else (
        (int(unit.get("in_bytes", 0)) if int(unit.get("cin", 0)) >= PLAIN_INPUT_BELOW else 0)
        + int(unit.get("out_bytes", 0)))
    moved = 2 * (maps + int(unit.get("weight_bytes", 0)))
    return moved // 2 if precision in NARROW_FLOATS else moved


def padded(unit: dict[str, Any], *, threads: int, precision: str, block: int,
           layout: str = "contiguous") -> tuple[int, int]:
    """(FLOPs, map bytes) of one eager call of this unit at the channel counts oneDNN computes
    on: each of the output channels and (from ``PLAIN_INPUT_BELOW`` channels on, where the input
    is converted to the blocked layout) the input channels rounded up to ``block``; a depthwise
    convolution's channels once. The unit's own figures where oneDNN does not run it, where the
    layout is channels_last (oneDNN's ``acdb``, unpadded), in a narrower float (its blocks were
    not checked) and for other groupings."""
    flops = int(unit.get("flops", 0))
    in_bytes, out_bytes = int(unit.get("in_bytes", 0)), int(unit.get("out_bytes", 0))
    cin, cout, groups = int(unit.get("cin", 0)), int(unit.get("cout", 0)), int(unit.get("groups", 1))
    depthwise = groups > 1 and groups == cin == cout
    if (layout == "channels_last" or precision != "f32" or cin <= 0 or cout <= 0
            or (groups > 1 and not depthwise)
            or not runs_onednn(unit, threads=threads, precision=precision)):
        return flops, in_bytes + out_bytes
    fout = padded_channels(cout, block) / cout
    # a depthwise convolution's input channels are its output channels, padded once
    fin = fout if depthwise else (
        padded_channels(cin, block) / cin if cin >= PLAIN_INPUT_BELOW else 1.0)
    return (round(flops * (1.0 if depthwise else fin) * fout),
            round(in_bytes * fin + out_bytes * fout))
