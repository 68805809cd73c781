"""Native PyTorch: the baseline every speed-up is measured against (``torch``, ``torch-compile``).

Why these settings: eager PyTorch under ``inference_mode`` with intra-op threads set to the cell's
thread count and one inter-op thread is what a careful user deploys; that is the honest
baseline (not autograd-tracking eager, not a default of all cores). bf16 goes through
``torch.autocast``, PyTorch's own mixed-precision path, and the method is recorded.

Options (the rungs of the baseline ladder, ``harness.backends.ladder``):
``layout=contiguous|channels_last`` moves weights and input to NHWC, which oneDNN's convolutions
prefer; ``torch-compile[freezing=true|false]`` compiles with inductor, with or without freezing.
Freezing is on by default because it is what PyTorch recommends for CPU inference (the
AOTInductor docs' "turn on freezing on CPU", pytorch/pytorch#128010; PyTorch's CPU inference
dashboards run inductor with freezing): weights become constants, so conv-BN folding and oneDNN
weight prepacking happen once at compile time. The inductor settings that decide the result
are recorded with each cell (``properties.inductor``).

No frozen-TorchScript rung (``torch.jit.optimize_for_inference``): torch.jit is deprecated in
torch 2.13, and what that rung did (freeze, fold conv-BN, prepack MKLDNN weights) is what
inductor's freezing does inside ``torch.compile``, which the ladder measures.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    import torch

from harness.backends import register
from harness.backends.base import (
    CONVERSION,
    RUNTIME,
    Backend,
    BackendError,
    PrepareContext,
    Prepared,
    PrepareError,
    readable,
    time_calls,
)
from harness.backends.options import option

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


LAYOUTS = ("contiguous", "channels_last")
# Inductor settings that change what a compiled model runs; recorded with every compiled cell.
INDUCTOR_SETTINGS = (
    "freezing", "freezing_discard_parameters", "layout_optimization", "cpp_wrapper",
    "max_autotune", "epilogue_fusion", "fx_graph_cache", "cpp.weight_prepack", "cpp.simdlen",
    "cpp.threads",
)


@dataclass(frozen=True)
class TorchConfig:
    device: str = "cpu"
    layout: str = option("layout", str, "contiguous", "memory format of weights and input; "
                         "channels_last is NHWC, which oneDNN convolutions prefer", choices=LAYOUTS)
    interop_threads: int = 1

    def __post_init__(self) -> None:
        if not _DEVICE.match(self.device):
            raise BackendError(f"torch device {self.device!r}: expected cpu, cuda or cuda:N")
        if self.interop_threads < 1:
            raise BackendError("interop_threads must be >= 1")
        if self.layout not in LAYOUTS:
            raise BackendError(f"layout {self.layout!r}: expected one of {', '.join(LAYOUTS)}")


@dataclass(frozen=True)
class TorchCompileConfig(TorchConfig):
    freezing: bool = option("freezing", bool, True, "inductor freezing: weights become constants "
                            "(conv-BN folding, weight prepacking); PyTorch's advice for CPU inference")
    compile_backend: str = "inductor"


def first_tensor(out: Any) -> torch.Tensor:
    import torch

    """The first tensor of a model's output (models may return tuples or dicts)."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(f"the model returned {type(out).__name__}, not a tensor")


@register
class TorchBackend(Backend):
    name = "torch"
    default_device = "cpu"
    Config: ClassVar[type] = TorchConfig

    @classmethod
    def normalize_device(cls, device: str) -> str:
        device = device.lower()
        if not _DEVICE.match(device):
            raise BackendError(f"{cls.name} device {device!r}: expected cpu, cuda or cuda:N")
        return device

    @classmethod
    def machine_info(cls) -> dict[str, Any]:
        from importlib import metadata

        import torch

        try:
            version = metadata.version("torch")
        except metadata.PackageNotFoundError:
            version = torch.__version__
        return {
            "versions": {"torch": version},
            "torch": {"cuda_available": torch.cuda.is_available(),
                      "num_threads": torch.get_num_threads(),
                      "mkldnn": torch.backends.mkldnn.is_available()},
        }

    def availability(self) -> tuple[bool, str]:
        import torch

        device = torch.device(self.config.device)
        if device.type != "cuda":
            return True, ""
        if not torch.cuda.is_available():
            why = "built without CUDA" if torch.version.cuda is None else "no CUDA device visible"
            return False, f"CUDA is not available (torch {torch.__version__} {why})"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return False, f"{device} is not available: {torch.cuda.device_count()} CUDA device(s)"
        return True, ""

    def prepare(self, model: Any, example_input: Any, ctx: PrepareContext) -> Prepared:
        import torch

        precision, threads = ctx.precision, ctx.threads
        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # only settable before the first parallel op
            torch.set_num_interop_threads(self.config.interop_threads)
        device = torch.device(self.config.device)
        t0 = time.perf_counter()
        try:
            model = model.eval().to(device)
            x = example_input.to(device).contiguous()
            if self.config.layout == "channels_last" and x.dim() == 4:
                model = model.to(memory_format=torch.channels_last)
                x = x.contiguous(memory_format=torch.channels_last)
        except Exception as exc:
            raise PrepareError(f"moving the model to {device} failed: {readable(exc)}") from exc
        convert_s = time.perf_counter() - t0
        context = functools.partial(_run_context, precision, device.type)
        sync = torch.cuda.synchronize if device.type == "cuda" else None
        compile_s = 0.0
        passes: dict[str, int] | None = None
        cache: dict[str, int] = {}
        if isinstance(self.config, TorchCompileConfig):
            import torch._inductor.config as inductor_config
            from torch._dynamo.utils import counters

            # Freezing is set in inductor's config around the compiling call, not passed as
            # ``torch.compile(options={"freezing": ...})``: in torch 2.13 that option is read too
            # late and nothing is frozen (no conv-BN folding, no weight prepacking; measured:
            # plain:depth=4,res=64 0.79 ms with the option, 0.56 ms with the config set). What
            # the freezing passes did is counted and recorded (``inductor_passes``).
            # A fresh compile: dynamo keeps compiled frames per forward's code object, so a
            # second model of the same class in this process would reuse the first one's graph
            # (compiled under the other freezing setting) and skip the passes altogether.
            torch._dynamo.reset()
            counters["inductor"].clear()
            model = torch.compile(model, backend=self.config.compile_backend, dynamic=False)
            try:
                with inductor_config.patch(freezing=self.config.freezing):
                    compile_s = _timed_call(model, x, context, sync) / 1e3  # the first call compiles
            except Exception as exc:
                raise PrepareError(f"torch.compile failed: {readable(exc)}", CONVERSION) from exc
            passes = {k: int(v) for k, v in counters["inductor"].items()
                      if v and k.startswith(FREEZING_PASS_PREFIXES)}
            # compile_s is short when inductor's on-disk FX graph cache already had the graph
            cache = {k: int(v) for k, v in counters["inductor"].items()
                     if v and k.startswith("fxgraph_cache")}
        try:
            first_ms = _timed_call(model, x, context, sync)
        except Exception as exc:
            raise PrepareError(f"the first inference failed: {readable(exc)}", RUNTIME) from exc
        properties = self._properties(precision, device)
        if passes is not None:
            properties["inductor_passes"] = passes
            properties["inductor_cache"] = cache
        info = {
            "convert_s": convert_s,
            "compile_s": compile_s,
            "ir_cache_hit": None,
            "precision_requested": precision,
            "precision_effective": precision,
            "properties": properties,
        }
        return TorchPrepared(model, x, context, sync, info, first_ms)

    def reference(self, model: Any, example_input: Any) -> np.ndarray:
        """float64 on the CPU: deep stacks amplify f32 rounding, so PyTorch's own f32 output can
        sit 1e-3 away from the exact answer; this tells a badly conditioned model from a
        backend that computes something else."""
        import copy

        import torch

        with torch.inference_mode():
            out = first_tensor(copy.deepcopy(model).cpu().double()(example_input.cpu().double()))
        return out.detach().numpy().astype(np.float64)

    def _properties(self, precision: str, device: torch.device) -> dict[str, Any]:
        import torch

        props: dict[str, Any] = {
            "torch_version": torch.__version__,
            "device": str(device),
            "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
            "mkldnn_available": torch.backends.mkldnn.is_available(),
            "mkldnn_enabled": bool(torch.backends.mkldnn.enabled),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "inference_mode": True,
            "layout": self.config.layout,
            "precision_method": (
                f"torch.autocast({device.type}, bfloat16)" if precision == "bf16" else "float32"
            ),
        }
        if precision == "bf16" and device.type == "cpu":
            # Whether oneDNN has native bf16 here; without it autocast still runs, emulated.
            probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
            with contextlib.suppress(Exception):
                props["bf16_native"] = bool(probe()) if probe is not None else None
        if isinstance(self.config, TorchCompileConfig):
            props["compile_backend"] = self.config.compile_backend
            props["inductor"] = _inductor_settings(self.config.freezing)
        if device.type == "cuda":
            props["cuda_device_name"] = torch.cuda.get_device_name(device)
            props["cuda_version"] = torch.version.cuda
        return props


@register
class TorchCompileBackend(TorchBackend):
    """``torch.compile`` (inductor). Opt-in: compiling takes tens of seconds per model."""

    name = "torch-compile"
    Config: ClassVar[type] = TorchCompileConfig

    def availability(self) -> tuple[bool, str]:
        """Inductor on the CPU writes C++ and builds it: without a compiler every cell would
        fail at its first call, so the rung is skipped with the reason instead."""
        import os
        import shutil

        ok, why = super().availability()
        if ok and self.config.device == "cpu":
            names = [os.environ["CXX"]] if os.environ.get("CXX") else ["c++", "g++", "clang++"]
            if not any(shutil.which(n) for n in names):
                return False, (f"torch.compile (inductor) needs a C++ compiler on the CPU; "
                               f"none of {', '.join(names)} is on PATH")
        return ok, why


# inductor's counters of the passes freezing enables (conv/linear-BN folding, oneDNN weight
# prepacking and the fusions that need packed weights); all absent when nothing was frozen.
FREEZING_PASS_PREFIXES = ("binary_folding", "mkldnn_")


def _inductor_settings(freezing: bool) -> dict[str, Any]:
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


def _run_context(precision: str, device_type: str) -> contextlib.ExitStack:
    import torch

    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if precision == "bf16":
        stack.enter_context(torch.autocast(device_type, dtype=torch.bfloat16))
    return stack


def _timed_call(model: Callable, x: torch.Tensor, context: Callable, sync: Callable | None) -> float:
    """One call's latency in ms (the first call, or the one that compiles), by the same clock
    and rules as the timed blocks (``base.time_calls``); CUDA work is waited for."""
    def step() -> None:
        model(x)
        if sync is not None:
            sync()

    with context():
        if sync is not None:
            sync()
        return time_calls(step, 1)[0]


class TorchPrepared(Prepared):
    def __init__(self, model: Callable, x: torch.Tensor, context: Callable,
                 sync: Callable | None, info: dict[str, Any], first_ms: float) -> None:
        self.model, self.x, self.context, self.info, self.first_ms = model, x, context, info, first_ms
        self._step: Callable[[], Any]
        if sync is None:
            self._step = functools.partial(model, x)
        else:
            def step() -> None:  # a CUDA launch returns at once; latency ends when the work does
                model(x)
                sync()
            self._step = step
        self._sync = sync

    def time_block(self, n: int) -> list[float]:
        with self.context():
            if self._sync is not None:
                self._sync()
            return time_calls(self._step, n)

    def output(self) -> np.ndarray:
        with self.context():
            out = first_tensor(self.model(self.x))
        return out.detach().float().cpu().numpy().copy()

    def kernel_rows(self) -> list[dict[str, Any]] | None:
        """Eager PyTorch runs each unit as its own kernel; a compiled graph fuses in ways no
        module boundary shows, so it has no reading here."""
        if self._sync is not None or hasattr(self.model, "_orig_mod"):
            raise NotImplementedError("kernel reading needs eager PyTorch on the CPU (a compiled "
                                      "graph fuses across module boundaries)")
        return None

    def layer_times(self, n: int) -> list[dict[str, Any]]:
        """Leaf modules and functional ops, timed by hooks (see ``harness.layers.units``)."""
        from harness.layers.units import torch_layer_rows, trace_units

        if self._sync is not None or hasattr(self.model, "_orig_mod"):
            raise NotImplementedError("per-layer times need eager PyTorch on the CPU (a "
                                      "compiled graph or CUDA launches have no module boundaries)")
        trace_units(self.model, self.x, 2, self.context)  # warm: hooks change nothing cached
        return torch_layer_rows(trace_units(self.model, self.x, n, self.context))
