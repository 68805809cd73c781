"""The kernels a backend runs a network as: its units, grouped as the runtime fuses them.

Why read the runtime instead of writing rules: OpenVINO's CPU plugin folds batch norms into
convolutions, fuses activations and residual adds into them, and keeps a different set apart
from one release to the next. The compiled model's runtime graph says what it did; each of its
primitives lists the model nodes it absorbed (``originalLayersNames``), which
``harness.layers.matching`` joins to our units (the same join ``accelbench explain`` uses). A
backend whose ``kernel_rows`` is None (eager PyTorch) runs every unit as its own kernel.

A kernel is charged to its heaviest unit's kind (``kinds.anchor_kind``: a convolution that
absorbed its batch norm and ReLU is a ``conv`` kernel). Units no kernel claims (an Identity the
runtime removed, a Flatten view) cost nothing of their own; primitives that claim no unit
(inserted Reorders) are folded into the kernels they feed, so their cost lands in those kinds'
coefficients and the per-inference overhead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.layers.kinds import VANISHING, anchor_kind
from harness.layers.matching import match

# Unit kinds that compute nothing a kernel model could learn (views, reshapes).
UNMODELLED = ("other",)


@dataclass(frozen=True)
class Kernel:
    kind: str
    units: tuple[str, ...]
    flops: int
    bytes: int  # the anchor's input and output plus every absorbed unit's weights
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

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["units"] = list(self.units)
        return out


def kernels(units: list[dict[str, Any]], rows: list[dict[str, Any]] | None) -> list[Kernel]:
    """The network's kernels on one backend, in execution order. ``rows``: the backend's
    ``Prepared.kernel_rows()`` (None: one kernel per unit)."""
    by_name = {u["name"]: u for u in units}
    if rows is None:
        groups = [[u["name"]] for u in units
                  if u["type"] not in VANISHING and u["kind"] not in UNMODELLED]
    else:
        claims = match(units, rows).claims
        groups = [claimed for row in rows if (claimed := claims.get(row["name"]))]
    out = []
    for group in groups:
        members = [by_name[n] for n in group if n in by_name]
        if not members:
            continue
        kind = anchor_kind([m["kind"] for m in members])
        if kind in UNMODELLED:
            continue
        anchor = next(m for m in members if m["kind"] == kind)
        weights = sum(m["weight_bytes"] for m in members)
        out.append(Kernel(
            kind=kind, units=tuple(m["name"] for m in members),
            flops=sum(m["flops"] for m in members),
            bytes=anchor["in_bytes"] + anchor["out_bytes"] + weights,
            kernel=anchor["kernel"], stride=anchor["stride"], groups=anchor["groups"],
            cin=anchor["cin"], cout=anchor["cout"],
            in_bytes=anchor["in_bytes"], out_bytes=anchor["out_bytes"], weight_bytes=weights,
        ))
    return out


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
            out[name] = kernels(units, prepared.kernel_rows())
        except NotImplementedError as exc:
            out[name] = str(exc)
    return out
