"""The kernels a backend runs a network as: its units, grouped as the runtime fuses them.

Why read the runtime instead of writing rules: OpenVINO's CPU plugin folds batch norms into
convolutions, fuses activations and residual adds into them, and keeps a different set apart
from one release to the next. The compiled model's runtime graph says what it did; each of its
primitives lists the model nodes it absorbed (``originalLayersNames``), which
``harness.layers.matching`` joins to our units (the same join ``accelbench explain`` uses). A
backend whose ``kernel_rows`` is None (eager PyTorch) runs every unit as its own kernel.

A kernel is charged to its heaviest unit's kind (``kinds.anchor_kind``: a convolution that
absorbed its batch norm and ReLU is a ``conv`` kernel). Units no kernel claims (an Identity the
runtime removed, a Flatten view) cost nothing of their own. The layout conversions the runtime
inserted (Reorders, claiming no unit) are kernels of their own kinds (``reorder_kernel``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from harness.layers.kinds import CONVOLUTION_KINDS, VANISHING, anchor_kind
from harness.layers.matching import match
from harness.predict.eager import conversion_bytes, onednn_block, padded, padded_channels

# Unit kinds that compute nothing a kernel model could learn (views, reshapes).
UNMODELLED = ("other",)
# A padding of a map (``F.pad``, any mode; a padding module is no unit of its own, its kind
# being "other", so the tracer records the ``F.pad`` inside it) is a kernel of its own where it
# runs as one: eager PyTorch copies the map into a larger one on every call; the overlapping
# ConvNets pad the odd pixel of a stride-2 convolution's "same" padding so, three times in
# ``overlap:depth=3``, and were priced as if the copies cost nothing (eager PyTorch at
# 0.82-0.96 of its measured time). OpenVINO folds the padding into the convolution that follows
# (no runtime row claims the pad), so there it costs nothing of its own.
PAD = "pad"
_PAD_TYPES = {"fn:pad", "fn:constant_pad_nd"}
# Kernels that are no unit of the model: layout conversions the runtime inserted
# (``reorder_kernel``): optimized (JIT, brgemm), generic, generic on planes that alias in the L1
# (``REORDER_ALIASED``), and of a vector (``REORDER_VECTOR``: a 1x1 map).
REORDER_ALIASED = "reorder_aliased"
REORDER_VECTOR = "reorder_vector"
REORDER_KINDS = ("reorder", "reorder_ref", REORDER_ALIASED, REORDER_VECTOR)
# The L1 data cache's way size (its size over its associativity): 4 KiB on Zen 4 (32 KiB, 8-way)
# and on Intel's Golden Cove cores (48 KiB, 12-way). Addresses a multiple of it apart share a set.
L1_WAY_BYTES = 4096
# The channels a generic conversion moves together (the blocked layout's 16 floats): a full
# block's 16 lines in one set overflow its 8 (Zen 4) or 12 (Golden Cove) ways.
CHANNEL_BLOCK = 16
# A pooling kernel whose output is one value per channel (global average pooling) is a kind of
# its own: it reads its input once and has no window to slide. Measured on a Zen 4 VM (eager
# PyTorch, 2 threads), a 3x3 max pool of 16 channels at 56x56 took 69 us, a 3x3 average pool of
# 32 channels at 16x16 39 us, a global pool 7-9 us: one "pooling" kind fitted the windowed ones
# at 0.22-0.23 and the global ones at 0.94-1.28 of their measured times.
GLOBAL_POOL = "global_pool"
# A linear layer that absorbed its activation is a kind of its own: at batch 1 OpenVINO's
# FullyConnected with a fused ReLU runs another, slower path than the bare one. Timed on a Zen 4
# VM (2 threads, f32, 2026-12-06, 10th percentiles): 3072->4096 1.06 ms bare, 1.91 ms with the
# ReLU; 2048->2048 133 against 174 us; 3072->256 35 against 46 us; 256->256 13.9 against 15.9
# us, where a convolution (1x1, depthwise, 3x3) with its batch norm and ReLU fused took what
# the bare one took (within 5%). Fitted on bare linear cells alone, the batch-1 MLPs were
# predicted at 0.5-0.8 of their OpenVINO time. Eager PyTorch never fuses, so never has it.
LINEAR_ACT = "linear_act"
# A concatenation the runtime runs in place is a kind of its own (``CONCAT_INPLACE``): OpenVINO
# lets the producers of a plain-layout concatenation write into its output (where one cannot, a
# Reorder copies its tensor there, a kernel of its own), and the Concatenation primitive itself
# moves nothing (its implementation reads ``unknown``); after a convolution, in the plugin's
# blocked layout, it copies every input (``ref``). Read from the runtime graphs on a Zen 4 VM
# (OpenVINO 2026.4, f32): the kernel preset's ``concat(x, x)`` on the network's input runs in
# place; DARTS's and DenseNet's concatenations of computed states copy. Timed with
# ``PERF_COUNT`` in a loaded hour, DARTS at C=36 spent 0.63 ms of ~20 ms in its 22 copying
# concatenations, ~29 us each, where the in-place cells priced one at 0.7 us. Eager PyTorch's
# ``torch.cat`` always copies.
CONCAT = "concat"
CONCAT_INPLACE = "concat_inplace"
# Each kind split out of another (above, ``unit_kernel``, ``_in_place``), and the kind a store
# measured before the split has cells of: it has none of the new kind, whose coefficients would
# then be 0 (a 3072->4096 linear layer with its ReLU priced at nothing); ``model.Fit`` prices it
# as the older kind instead, and says so. A store measured before copying concatenations were
# told apart has in-place ones only (the preset's ``concat(x, x)``). Not the other way: a store
# with copying cells and no in-place one prices an in-place concatenation at 0 (it moves
# nothing), and says that no such kernel was measured.
BROADER = {GLOBAL_POOL: "pooling", LINEAR_ACT: "linear", CONCAT: CONCAT_INPLACE,
           REORDER_ALIASED: "reorder_ref", REORDER_VECTOR: "reorder_ref"}
# Activation functions whose cost per element is not a ReLU's: each is priced by the megabytes
# it writes, fused into a convolution or alone (``model``), a ReLU-like one (relu, relu6,
# leakyrelu, hardtanh) costing nothing beyond its kernel's bytes. Why: a kernel's features
# (FLOPs, bytes) do not say which function it evaluates. Eager PyTorch on a Zen 4 VM (2
# threads, 2026-12-07) took, on the same 0.88 MB tensor: ReLU 26-29 µs, Hardswish 45, SiLU 98,
# GELU 118, Tanh 584 (and Sigmoid 95, ELU 353, Mish 906); OpenVINO ran the axes preset's
# dwbottleneck at 0.18 ms with ReLU, 0.26 ms with GELU, SiLU or Tanh fused into its
# convolutions. Priced as ReLUs, those networks were predicted at 0.73-0.80 of their time.
FUNCTIONS = ("hardswish", "silu", "gelu", "tanh", "sigmoid", "elu", "mish", "selu",
             "hardsigmoid", "softmax")
# Other names of the same functions (``torch.nn.functional`` spellings).
_FUNCTION_ALIASES = {"swish": "silu"}


@dataclass(frozen=True)
class Kernel:
    kind: str
    units: tuple[str, ...]
    flops: int
    # the anchor's input and output, every absorbed unit's weights, and the maps absorbed units
    # read from outside the kernel (``outside_reads``: a fused residual add's other operand)
    bytes: int
    kernel: int
    stride: int
    groups: int
    cin: int
    cout: int
    # The parts of ``bytes`` the cell-level terms need (``model``): what enters the anchor, what
    # leaves it, and the weights of every absorbed unit.
    in_bytes: int = 0
    out_bytes: int = 0
    weight_bytes: int = 0
    # (function, bytes it writes) of each absorbed activation whose function is in FUNCTIONS
    functions: tuple[tuple[str, int], ...] = ()
    # Bytes the runtime's layout conversions move inside this kernel's call, where they are no
    # kernels of their own: eager PyTorch's oneDNN convolution converts its input, weights and
    # output on every call (``harness.predict.eager``). 0 for OpenVINO, whose conversions are
    # reorder kernels.
    conversion_bytes: int = 0
    # The FLOPs and the map bytes (input and output) of the call at the channel counts the
    # library computes on, where they differ from the model's: eager PyTorch's oneDNN pads its
    # blocked maps (``harness.predict.eager.padded``), OpenVINO computes whole blocks of output
    # channels (``compiled_blocks``: FLOPs only). 0: the model's.
    padded_flops: int = 0
    padded_map_bytes: int = 0

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["units"] = list(self.units)
        out["functions"] = [list(f) for f in self.functions]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Kernel:
        """The kernel ``as_json`` wrote; ValueError for a function this version does not
        price (a foreign or hand-edited cache entry, read again instead)."""
        functions = tuple((str(f), int(b)) for f, b in data.get("functions", ()))
        if any(f not in FUNCTIONS for f, _ in functions):
            raise ValueError(f"unknown activation function in {functions}")
        return cls(**{**data, "units": tuple(data["units"]), "functions": functions})


def function_of(unit: dict[str, Any]) -> str | None:
    """The priced activation function a unit evaluates (``FUNCTIONS``), or None: its module's
    class (``GELU``) or its functional op (``units`` types it ``fn:gelu``), lower-cased."""
    if unit.get("kind") != "activation":
        return None
    name = str(unit.get("type") or "").lower().removeprefix("fn:").rstrip("_")
    name = _FUNCTION_ALIASES.get(name, name)
    return name if name in FUNCTIONS else None


def kernels(units: list[dict[str, Any]], rows: list[dict[str, Any]] | None) -> list[Kernel]:
    """The network's kernels on one backend, in execution order. ``rows``: the backend's
    ``Prepared.kernel_rows()`` (None: one kernel per unit)."""
    by_name = {u["name"]: u for u in units}
    if rows is None:
        found = (unit_kernel([u]) for u in units
                 if u["type"] not in VANISHING and (u["kind"] not in UNMODELLED or is_pad(u)))
    else:
        claims = match(units, rows).claims
        found = (_row_kernel(row, [by_name[n] for n in claims.get(row["name"], ()) if n in by_name])
                 for row in rows)
    return [k for k in found if k is not None]


def _row_kernel(row: dict[str, Any], members: list[dict[str, Any]]) -> Kernel | None:
    """The kernel of one runtime row: of the units it claims where it executes something (or is
    a concatenation, in place or not), a layout conversion where it is an unclaimed Reorder."""
    if members and (_executes(row) or _is_concat(row)):
        return _in_place(unit_kernel(members), row)
    return reorder_kernel(row) if row.get("type") == "Reorder" else None


def _executes(row: dict[str, Any]) -> bool:
    """Whether a runtime primitive runs anything: OpenVINO's whose implementation reads
    ``unknown`` do not (a view, the reshape of a convolution's constant bias, a concatenation
    done in place). Why it matters: such a row still names the unit it came from, and a
    ``Conv2d`` with a bias was read as two convolutions (its bias's ``Reshape`` claimed it)."""
    return not str(row.get("exec_type") or "").startswith("unknown")


def _is_concat(row: dict[str, Any]) -> bool:
    return row.get("type") == "Concatenation"


def _in_place(k: Kernel | None, row: dict[str, Any]) -> Kernel | None:
    """``k`` as ``CONCAT_INPLACE`` where it is a concatenation whose runtime primitive runs in
    place (a Concatenation whose implementation reads ``unknown``: nothing executes); kept as a
    kernel of its own kind, since the cells that price it are such concatenations."""
    if k is not None and k.kind == CONCAT and _is_concat(row) and not _executes(row):
        return replace(k, kind=CONCAT_INPLACE)
    return k


def unit_kernel(members: list[dict[str, Any]]) -> Kernel | None:
    """The kernel of units the runtime runs as one (its heaviest unit's kind), or None when
    they compute nothing a kernel model could learn."""
    if not members:
        return None
    kind = anchor_kind([m["kind"] for m in members])
    if kind in UNMODELLED:  # nothing a model could learn, unless it pads
        pads = [m for m in members if is_pad(m)]
        if not pads:
            return None
        kind, anchor = PAD, pads[0]
    else:
        anchor = next(m for m in members if m["kind"] == kind)
    weights = sum(m["weight_bytes"] for m in members)
    outside = outside_reads(members, anchor)
    if kind == "pooling" and _is_global(anchor.get("out_shape")):
        kind = GLOBAL_POOL
    elif kind == "linear" and any(m["kind"] == "activation" for m in members):
        kind = LINEAR_ACT
    return Kernel(
        kind=kind, units=tuple(m["name"] for m in members),
        flops=sum(m["flops"] for m in members),
        bytes=anchor["in_bytes"] + anchor["out_bytes"] + weights + outside,
        kernel=anchor["kernel"], stride=anchor["stride"], groups=anchor["groups"],
        cin=anchor["cin"], cout=anchor["cout"],
        in_bytes=anchor["in_bytes"], out_bytes=anchor["out_bytes"], weight_bytes=weights,
        functions=tuple((f, int(m["out_bytes"])) for m in members
                        if (f := function_of(m)) is not None),
    )


def outside_reads(members: list[dict[str, Any]], anchor: dict[str, Any]) -> int:
    """Bytes the units fused around ``anchor`` read that no unit of the kernel wrote: the other
    operand of each residual add the runtime fused into a convolution (an add reads two maps and
    writes one; the one it reads from inside is the convolution's output). Why: OpenVINO runs
    conv + batch norm + ReLU + the block's add as one kernel, which reads the skip connection's
    map too; counted as the kernel's input and output only, its traffic (and the bytes the
    inference moves) missed one map per residual block. Counted, OpenVINO's RMSPE fell 0.1-0.2
    points on the quick sets (Zen 4 VM, 2026-12-07; README, "Predicting")."""
    return sum(max(0, int(m["in_bytes"]) - int(m["out_bytes"])) for m in members
               if m is not anchor and m["kind"] == "add")


def is_pad(unit: dict[str, Any]) -> bool:
    """A unit that pads a tensor (``PAD``): the functional op a padding module runs."""
    return unit.get("type") in _PAD_TYPES


def _is_global(out_shape: Any) -> bool:
    """An output of one value per channel (``[N, C, 1, 1]``)."""
    return isinstance(out_shape, (list, tuple)) and len(out_shape) >= 3 \
        and math.prod(int(d) for d in out_shape[2:]) == 1


def reorder_kernel(row: dict[str, Any]) -> Kernel:
    """A Reorder primitive of the runtime graph as a kernel of its own: it converts one tensor
    between layouts (the model's plain input to the plugin's blocked one, blocked to plain
    before a flatten or at the output). Why modelled, not folded into its neighbours: its cost
    is not the neighbour's. Timed with ``PERF_COUNT`` on a Zen 4 VM, a one-kernel cell of a
    16-channel 64x64 depthwise convolution spent 13 us in the convolution and 102 us in the
    Reorder of its output back to NCHW (OpenVINO's generic ``reorder_f32``), against 17 us for a
    960-channel 5x5 map (``jit_uni_f32``). Those are the conversions a one-kernel cell pays and a
    network pays only at its ends, so each kernel kind's coefficients learnt them as its own
    cost. The two implementations get kinds of their own: the plugin's JIT and brgemm reorders,
    and the generic one; the generic one on an aliasing plane a third (``aliases``); and a
    conversion of a vector (a 1x1 map, before a network's flatten or after a cell's global
    pool) a fourth, whatever implements it: blocked and plain are the same bytes there, and it
    is a fixed cost. Priced as a generic conversion (4.2 µs a kernel, fitted), the one every
    ConvNet runs before its classifier took ~1 µs by ``PERF_COUNT`` (Zen 4 VM); priced apart,
    fitted at 2.0 µs, OpenVINO's RMSPE fell on seven of nine scored sets with one kernel run."""
    exec_type = str(row.get("exec_type") or "")
    shape, size = row.get("out_shape"), int(row.get("out_bytes") or 0)
    if shape and len(shape) == 4 and int(shape[2]) * int(shape[3]) == 1:
        kind = REORDER_VECTOR
    elif "jit" in exec_type or "brgemm" in exec_type:
        kind = "reorder"
    else:
        kind = REORDER_ALIASED if aliases(shape, size) else "reorder_ref"
    return Kernel(kind=kind, units=(str(row["name"]),), flops=0, bytes=2 * size, kernel=0,
                  stride=0, groups=0, cin=0, cout=0, in_bytes=size, out_bytes=size,
                  weight_bytes=0)


def aliases(shape: Any, size: Any) -> bool:
    """Whether a generic layout conversion of a tensor of ``shape`` (N, C, H, W; ``size`` bytes)
    thrashes the L1: it moves 16 channels at a time between the blocked layout, where they are
    adjacent, and the plain one, where they lie a plane (H x W elements) apart; when a plane is
    a multiple of the L1's way size, every one of them falls in the same set, and more of them
    than the set has ways evict each other on every line. Counted where a tensor has a full
    block of channels or more (``CHANNEL_BLOCK``), which overflows an 8- or a 12-way set.

    Timed with ``PERF_COUNT`` on a Zen 4 VM (OpenVINO 2026.4, f32, 2 threads), the conversion of a
    16-channel depthwise cell's output back to NCHW took 99-102 us at 64x64 (16 KiB planes), 32
    us at 56x56 and 18 us at 60x60; of a 64-channel pointwise cell's, 138 us at 32x32 (4 KiB
    planes) and 34 us at 30x30, where the convolutions took 9-27 us. Most kernel cells are at
    power-of-two maps and pay it; networks convert only their image and their pooled vector
    (none of the 59 networks scored on this VM has an aliased conversion).
    Priced with the generic conversions, it had been spread over every cell's conversion (the
    fit's own OpenVINO cells within 10% of their fitted value: 57%; priced apart: 77%)."""
    if not shape or len(shape) != 4 or not size:
        return False
    elements = math.prod(int(d) for d in shape)
    if elements <= 0:
        return False
    plane = int(shape[2]) * int(shape[3]) * (int(size) // elements)
    return int(shape[1]) >= CHANNEL_BLOCK and plane > 0 and plane % L1_WAY_BYTES == 0


def backend_kernels(model: Any, example: Any, backends: list[str], *, precision: str,
                    threads: int) -> dict[str, list[Kernel] | str]:
    """Per backend, the kernels of ``model``, or why that backend has no reading (a string).

    Each backend prepares (converts and compiles) the model in this process without timing it:
    the runtime graph is what the predictor needs, and it does not depend on the machine's load.
    """
    from harness.backends import PrepareContext, get_backend
    from harness.predict.units import model_units

    units = model_units(model, example)
    out: dict[str, list[Kernel] | str] = {}
    for name in backends:
        backend = get_backend(name)
        prepared = backend.prepare(model, example, PrepareContext(precision=precision, threads=threads))
        try:
            rows = prepared.kernel_rows()
        except NotImplementedError as exc:
            out[name] = str(exc)
            continue
        found = kernels(units, rows)
        # the memory layout the backend resolved, as it is recorded with each of its cells
        layout = str((prepared.info.get("properties") or {}).get("layout", "contiguous"))
        out[name] = compiled_blocks(found, precision=precision) if rows is not None else (
            eager_conversions(found, units, threads=threads, precision=precision, layout=layout))
    return out


def compiled_blocks(found: list[Kernel], *, precision: str) -> list[Kernel]:
    """A compiled runtime's convolutions with their FLOPs at the output channels it computes:
    OpenVINO's CPU plugin (oneDNN's brgemm convolutions, channels-last here) computes a
    convolution's output channels in whole blocks of a register's floats, so 20 or 24 output
    channels cost what 32 do (a 3x3 convolution at 64x64, 2 threads, Zen 4: 16 channels 331 µs,
    20 593, 24 686, 32 731). Its maps are not padded (``acdb``), nor its input channels, which
    its inner loop reduces over. f32 only (the blocks of its bf16 and int8 kernels differ)."""
    if precision != "f32":
        return found
    block = onednn_block()
    return [replace(k, padded_flops=round(k.flops * padded_channels(k.cout, block) / k.cout))
            if k.kind in CONVOLUTION_KINDS and k.cout > 0 and k.cout % block else k
            for k in found]


def eager_conversions(found: list[Kernel], units: list[dict[str, Any]], *, threads: int,
                      precision: str, layout: str = "contiguous") -> list[Kernel]:
    """Eager PyTorch's kernels (one per unit) with what oneDNN does inside each convolution's
    call (``harness.predict.eager``): the bytes of its layout conversions, and the FLOPs and map
    bytes at the channel counts its blocked layout pads to."""
    by_name = {u["name"]: u for u in units}  # an eager kernel is one unit
    block = onednn_block()
    out = []
    for k in found:
        unit = by_name[k.units[0]]
        flops, maps = padded(unit, threads=threads, precision=precision, block=block,
                             layout=layout)
        out.append(replace(
            k, conversion_bytes=conversion_bytes(unit, threads=threads, precision=precision,
                                                 layout=layout),
            padded_flops=flops if flops != k.flops else 0,
            padded_map_bytes=maps if maps != k.in_bytes + k.out_bytes else 0))
    return out
