"""``torch.compile``: inductor (the PyTorch rungs), OpenVINO through torch.compile, PT2E int8.

Three ways a PyTorch user compiles without leaving PyTorch, as options of one backend:

- ``torch-compile`` / ``[freezing=false]``: inductor, with freezing on by default because it is
  what PyTorch recommends for CPU inference (the AOTInductor docs' "turn on freezing on CPU",
  pytorch/pytorch#128010; PyTorch's CPU inference dashboards run inductor with freezing):
  weights become constants, so conv-BN folding and oneDNN weight prepacking happen once at
  compile time. The inductor settings that decide the result are recorded
  (``properties.inductor``), and what the freezing passes did is counted.
- ``torch-compile[backend=openvino]``: ``torch.compile(model, backend="openvino", options=...)``
  from ``openvino.torch``, with the cell's precision and threads passed through its ``config``
  (``INFERENCE_PRECISION_HINT``, ``INFERENCE_NUM_THREADS``, the latency hint, one stream), so a
  PyTorch user sees what OpenVINO's kernels give without converting anything. ``aot_autograd``
  is on: without it, torch 2.13's dynamo fails building guards for the fake-traced graph
  ("sources must not be empty for symbol"). OpenVINO's torch.compile backend silently falls
  back to inductor when its conversion fails, so the compiled partitions are read back and a
  cell with none is a failure, not an OpenVINO figure.
- precision ``int8``: post-training static quantization through PT2E
  (``harness.backends.torch_int8``), then inductor with freezing, which lowers the quantized
  pattern to oneDNN's int8 convolutions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.backends import register
from harness.backends.base import CONVERSION, BackendError, PrepareContext, PrepareError, readable
from harness.backends.options import option
from harness.backends.precision import CALIBRATION_SAMPLES
from harness.backends.torch_backend import TorchBackend, TorchConfig, _timed_call

COMPILE_BACKENDS = ("inductor", "openvino")
# Inductor settings that change what a compiled model runs; recorded with every compiled cell.
INDUCTOR_SETTINGS = (
    "freezing", "freezing_discard_parameters", "layout_optimization", "cpp_wrapper",
    "max_autotune", "epilogue_fusion", "fx_graph_cache", "cpp.weight_prepack", "cpp.simdlen",
    "cpp.threads",
)
# inductor's counters of the passes freezing enables (conv/linear-BN folding, oneDNN weight
# prepacking and the fusions that need packed weights, int8 ones included); all absent when
# nothing was frozen.
FREEZING_PASS_PREFIXES = ("binary_folding", "mkldnn_", "qconv", "qlinear")


@dataclass(frozen=True)
class TorchCompileConfig(TorchConfig):
    freezing: bool = option("freezing", bool, True, "inductor freezing: weights become constants "
                            "(conv-BN folding, weight prepacking); PyTorch's advice for CPU inference")
    compile_backend: str = option("backend", str, "inductor", "torch.compile backend: inductor, "
                                  "or openvino (OpenVINO's kernels from inside PyTorch)",
                                  choices=COMPILE_BACKENDS)
    calibration: int = option("calibration", int, CALIBRATION_SAMPLES, "int8 only: samples in "
                              "the seeded synthetic calibration set", lo=1, hi=100_000)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.compile_backend not in COMPILE_BACKENDS:
            raise BackendError(f"backend {self.compile_backend!r}: expected one of "
                               f"{', '.join(COMPILE_BACKENDS)}")
        if self.compile_backend == "openvino" and not self.freezing:
            raise BackendError("freezing is an inductor setting; backend=openvino has none")


@register
class TorchCompileBackend(TorchBackend):
    """``torch.compile``. Opt-in: compiling takes tens of seconds per model."""

    name = "torch-compile"
    Config: ClassVar[type] = TorchCompileConfig
    precisions = ("f32", "bf16", "int8")

    def availability(self) -> tuple[bool, str]:
        """Inductor on the CPU writes C++ and builds it: without a compiler every cell would
        fail at its first call, so the rung is skipped with the reason instead. The OpenVINO
        backend needs ``openvino.torch`` (shipped with the openvino package)."""
        import importlib.util
        import os
        import shutil

        ok, why = super().availability()
        if not ok:
            return ok, why
        if self.config.compile_backend == "openvino":
            if self.config.device != "cpu":
                return False, "torch.compile(backend='openvino') runs here on the CPU only"
            if importlib.util.find_spec("openvino.torch") is None:
                return False, "openvino.torch (the torch.compile backend) is not installed"
            return True, ""
        if self.config.device == "cpu":
            names = [os.environ["CXX"]] if os.environ.get("CXX") else ["c++", "g++", "clang++"]
            if not any(shutil.which(n) for n in names):
                return False, (f"torch.compile (inductor) needs a C++ compiler on the CPU; "
                               f"none of {', '.join(names)} is on PATH")
        return True, ""

    def supports(self, precision: str) -> tuple[bool, str]:
        ok, why = super().supports(precision)
        if not ok or precision != "int8":
            return ok, why
        if self.config.compile_backend != "inductor" or not self.config.freezing:
            return False, ("int8 on PyTorch is PT2E quantization lowered by inductor's freezing "
                           f"passes; {self.spec.text} has no int8 path (use torch-compile)")
        if self.config.device != "cpu":
            return False, "PT2E int8 (X86InductorQuantizer) runs on the CPU only"
        from harness.backends.torch_int8 import availability

        return availability()

    def bf16_method(self, precision: str) -> str | None:
        # OpenVINO converts precision itself (INFERENCE_PRECISION_HINT); the module stays f32.
        return None if self.config.compile_backend == "openvino" else super().bf16_method(precision)

    def compile(self, model: Any, x: Any, context: Callable, sync: Callable | None,
                ctx: PrepareContext) -> tuple[Any, float, dict[str, Any]]:
        import torch

        props: dict[str, Any] = {"compile_backend": self.config.compile_backend}
        if self.config.compile_backend == "openvino":
            from harness.backends.torch_openvino import compile_openvino

            compiled, compile_s, ov_props = compile_openvino(model, x, context, ctx)
            return compiled, compile_s, {**props, **ov_props}
        if ctx.precision == "int8":
            from harness.backends.torch_int8 import quantize

            try:
                model, props["quantization"] = quantize(model, x, self.config.calibration)
            except Exception as exc:
                raise PrepareError(f"PT2E int8 quantization failed: {readable(exc)}") from exc
        import torch._inductor.config as inductor_config
        from torch._dynamo.utils import counters

        # Freezing is set in inductor's config around the compiling call, not passed as
        # ``torch.compile(options={"freezing": ...})``: in torch 2.13 that option is read too
        # late and nothing is frozen (no conv-BN folding, no weight prepacking; measured:
        # plain:depth=4,res=64 0.79 ms with the option, 0.56 ms with the config set).
        # A fresh compile: dynamo keeps compiled frames per forward's code object, so a
        # second model of the same class in this process would reuse the first one's graph
        # (compiled under the other freezing setting) and skip the passes altogether.
        torch._dynamo.reset()
        counters["inductor"].clear()
        compiled = torch.compile(model, backend="inductor", dynamic=False)
        try:
            with inductor_config.patch(freezing=self.config.freezing):
                compile_s = _timed_call(compiled, x, context, sync) / 1e3  # the first call compiles
        except Exception as exc:
            raise PrepareError(f"torch.compile failed: {readable(exc)}", CONVERSION) from exc
        props["inductor_passes"] = {k: int(v) for k, v in counters["inductor"].items()
                                    if v and k.startswith(FREEZING_PASS_PREFIXES)}
        # compile_s is short when inductor's on-disk FX graph cache already had the graph
        props["inductor_cache"] = {k: int(v) for k, v in counters["inductor"].items()
                                   if v and k.startswith("fxgraph_cache")}
        props["inductor"] = inductor_settings(self.config.freezing)
        if ctx.precision == "int8":
            props["precision_method"] = "PT2E int8 (X86InductorQuantizer), inductor + freezing"
        return compiled, compile_s, props


def inductor_settings(freezing: bool) -> dict[str, Any]:
    """The inductor configuration the compile ran under (``options`` override the globals)."""
    import torch._inductor.config as cfg

    out: dict[str, Any] = {}
    for key in INDUCTOR_SETTINGS:
        value: Any = cfg
        try:
            for part in key.split("."):
                value = getattr(value, part)
        except AttributeError:
            continue
        out[key] = value if isinstance(value, (bool, int, float, str)) or value is None else str(value)
    out["freezing"] = freezing
    return out
