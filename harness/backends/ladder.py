"""The baseline ladder: how much of OpenVINO's speed-up PyTorch can have by itself.

"OpenVINO is 4.8x faster than PyTorch" depends on which PyTorch. Each rung adds one thing a
PyTorch user can do on a CPU, in the order a user would try them, and the last rung is OpenVINO;
the report splits the eager->OpenVINO gain into the rungs' shares (``reports.ladder``).

Why no frozen-TorchScript rung: torch.jit is deprecated in torch 2.13, and what
``torch.jit.optimize_for_inference`` did (freezing, conv-BN folding, MKLDNN weight prepacking)
is what inductor does with freezing on (``torch-compile``, the rung before OpenVINO).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rung:
    """One rung: the backend text (canonical) and what it adds over the rungs below it."""

    backend: str
    label: str
    adds: str


LADDER: tuple[Rung, ...] = (
    Rung("torch", "eager (NCHW)", "baseline"),
    Rung("torch[layout=channels_last]", "eager, channels_last", "layout"),
    Rung("torch-compile[freezing=false]", "torch.compile (inductor)", "compilation"),
    Rung("torch-compile", "torch.compile + freezing", "graph optimization (freezing)"),
    Rung("openvino:CPU", "OpenVINO CPU", "OpenVINO's own kernels"),
)


def ladder_backends() -> tuple[str, ...]:
    """The backend texts of every rung, eager first, OpenVINO last (``run --ladder``)."""
    return tuple(r.backend for r in LADDER)
