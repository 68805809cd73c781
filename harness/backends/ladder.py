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
    """One rung: the backend text (canonical) and what it adds over the rungs below it.
    ``precision`` None is the row's own precision; ``"int8"`` takes the cell of that precision
    (a session that runs ``--precision f32,int8``)."""

    backend: str
    label: str
    adds: str
    precision: str | None = None


LADDER: tuple[Rung, ...] = (
    Rung("torch", "eager (NCHW)", "baseline"),
    Rung("torch[layout=channels_last]", "eager, channels_last", "layout"),
    Rung("torch-compile[freezing=false]", "torch.compile (inductor)", "compilation"),
    Rung("torch-compile", "torch.compile + freezing", "graph optimization (freezing)"),
    Rung("openvino:CPU", "OpenVINO CPU", "OpenVINO's own kernels"),
)


# The other side's range (issue 23): what a user might pick instead of eager f32 PyTorch
# besides OpenVINO f32. Not part of the telescoping chain above (each is an alternative, not a
# step on it); each is reported with its speed-up over eager and over the best PyTorch rung,
# so precision's part of a gain (int8 over f32 on the same runtime) is told apart from the
# runtime's (OpenVINO int8 over PyTorch int8).
OTHERS: tuple[Rung, ...] = (
    Rung("torch-compile", "PyTorch int8 (PT2E + inductor)", "int8 on PyTorch", "int8"),
    Rung("openvino:CPU", "OpenVINO int8 (NNCF)", "int8 on OpenVINO", "int8"),
    Rung("torch-compile[backend=openvino]", "torch.compile, OpenVINO backend",
         "OpenVINO inside torch.compile"),
    Rung("onnxruntime", "ONNX Runtime (CPU EP)", "ONNX Runtime"),
)


def ladder_backends() -> tuple[str, ...]:
    """The backend texts of every rung, eager first, then OpenVINO, then the other runtimes
    (``run --ladder``; the int8 rungs need ``--precision f32,int8``)."""
    out: list[str] = []
    for r in (*LADDER, *OTHERS):
        if r.backend not in out:
            out.append(r.backend)
    return tuple(out)
