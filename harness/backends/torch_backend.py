"""Native PyTorch: the baseline every speed-up is measured against (``torch``; ``torch-compile``
builds on it in ``harness.backends.torch_compile``).

Why these settings: eager PyTorch under ``inference_mode`` with intra-op threads set to the cell's
thread count and one inter-op thread is what a careful user deploys; that is the honest
baseline (not autograd-tracking eager, not a default of all cores). bf16 runs one of two ways,
recorded as ``properties.precision_method``: ``torch.autocast`` (the default, PyTorch's own
mixed-precision path: f32 weights, each op casts its operands, so every convolution converts
its weights on every call) or ``[bf16=cast]`` (weights and input converted to bf16 once).

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
import copy
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
# How PyTorch runs bf16: autocast keeps f32 weights and casts per op (each convolution converts
# its weights on every call); cast converts weights and input to bf16 once, so the kernels read
# bf16 memory directly.
BF16_METHODS = ("autocast", "cast")


@dataclass(frozen=True)
class TorchConfig:
    device: str = "cpu"
    layout: str = option("layout", str, "contiguous", "memory format of weights and input; "
                         "channels_last is NHWC, which oneDNN convolutions prefer", choices=LAYOUTS)
    bf16: str = option("bf16", str, "autocast", "how bf16 runs: torch.autocast (f32 weights, "
                       "cast per op) or cast (weights and input converted to bf16 once)",
                       choices=BF16_METHODS)
    interop_threads: int = 1

    def __post_init__(self) -> None:
        if self.bf16 not in BF16_METHODS:
            raise BackendError(f"bf16 {self.bf16!r}: expected one of {', '.join(BF16_METHODS)}")
        if not _DEVICE.match(self.device):
            raise BackendError(f"torch device {self.device!r}: expected cpu, cuda or cuda:N")
        if self.interop_threads < 1:
            raise BackendError("interop_threads must be >= 1")
        if self.layout not in LAYOUTS:
            raise BackendError(f"layout {self.layout!r}: expected one of {', '.join(LAYOUTS)}")


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
        try:  # PT2E int8 (torch-compile at int8) lives in torchao
            torchao: str | None = metadata.version("torchao")
        except metadata.PackageNotFoundError:
            torchao = None
        return {
            "versions": {"torch": version, "torchao": torchao},
            "torch": {"cuda_available": torch.cuda.is_available(),
                      "num_threads": torch.get_num_threads(),
                      "mkldnn": torch.backends.mkldnn.is_available()},
        }

    def on_cpu(self) -> bool:
        return self.config.device == "cpu"

    def bf16_method(self, precision: str) -> str | None:
        """How this cell runs bf16 in PyTorch (``autocast``/``cast``), None when it does not
        (f32, or a compile backend that converts precision itself)."""
        return self.config.bf16 if precision == "bf16" else None

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
        method = self.bf16_method(precision)
        t0 = time.perf_counter()
        try:
            model = model.eval()
            if method == "cast":  # a copy: the worker's own model stays f32 (parity, reference)
                model = copy.deepcopy(model).to(torch.bfloat16)
            model = model.to(device)
            x = example_input.to(device, copy=True).contiguous()  # the worker's own stays as seeded
            if method == "cast":
                x = x.to(torch.bfloat16)
            if self.config.layout == "channels_last" and x.dim() == 4:
                model = model.to(memory_format=torch.channels_last)
                x = x.contiguous(memory_format=torch.channels_last)
        except Exception as exc:
            raise PrepareError(f"moving the model to {device} failed: {readable(exc)}") from exc
        convert_s = time.perf_counter() - t0
        # the seeded input as it was: the parity output is computed from it, and a model that
        # writes into its input (an in-place first layer) is told apart by comparing with it
        seeded = x.detach().clone()
        context = functools.partial(_run_context, method == "autocast", device.type)
        sync = torch.cuda.synchronize if device.type == "cuda" else None
        model, compile_s, extra = self.compile(model, x, context, sync, ctx)
        try:
            first_ms = _timed_call(model, x, context, sync)
        except Exception as exc:
            raise PrepareError(f"the first inference failed: {readable(exc)}", RUNTIME) from exc
        effective = extra.pop("precision_effective", precision)  # what a compiler resolved
        properties = {**self._properties(precision, device), **extra}
        writes_input = not torch.allclose(x, seeded, rtol=0, atol=0, equal_nan=True)
        properties["writes_input"] = writes_input
        if ctx.first_pass and device.type == "cpu" and torch.backends.mkldnn.is_available():
            # the oneDNN kernels this path reaches (and the layout reorders around them): why
            # a bf16 can be slower than f32 (harness.backends.onednn_trace)
            from harness.backends import onednn_trace

            properties["onednn"] = onednn_trace.trace(lambda: _timed_call(model, x, context, sync))
        info = {
            "convert_s": convert_s,
            "compile_s": compile_s,
            "ir_cache_hit": None,
            "precision_requested": precision,
            "precision_effective": effective,
            "properties": properties,
        }
        if writes_input:
            info["flag"] = WRITES_INPUT
        return TorchPrepared(model, x, context, sync, info, first_ms, seeded)

    def compile(self, model: Any, x: Any, context: Callable, sync: Callable | None,
                ctx: PrepareContext) -> tuple[Any, float, dict[str, Any]]:
        """``(callable, compile_s, properties to record)``: eager runs the module as it is;
        ``torch-compile`` (``harness.backends.torch_compile``) compiles it here."""
        return model, 0.0, {}

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
            "precision_method": {
                "autocast": f"torch.autocast({device.type}, bfloat16): f32 weights, cast per op",
                "cast": "weights and input cast to bfloat16 once (model.to(torch.bfloat16))",
            }.get(self.bf16_method(precision) or "", "float32" if precision == "f32" else precision),
        }
        if precision == "bf16" and device.type == "cpu":
            # Whether oneDNN has native bf16 here; without it autocast still runs, emulated.
            probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
            with contextlib.suppress(Exception):
                props["bf16_native"] = bool(probe()) if probe is not None else None
        if device.type == "cuda":
            props["cuda_device_name"] = torch.cuda.get_device_name(device)
            props["cuda_version"] = torch.version.cuda
        return props


WRITES_INPUT = ("the model writes into its input (an in-place first layer, such as "
                "ReLU(inplace=True) on the network's input): each timed call ran on the last "
                "call's output, not on the seeded input, so its time is not this input's; "
                "make the first layer out of place")


def _run_context(autocast: bool, device_type: str) -> contextlib.ExitStack:
    import torch

    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if autocast:
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


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    import torch

    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


class TorchPrepared(Prepared):
    def __init__(self, model: Callable, x: torch.Tensor, context: Callable,
                 sync: Callable | None, info: dict[str, Any], first_ms: float,
                 seeded: torch.Tensor) -> None:
        self.model, self.x, self.context, self.info, self.first_ms = model, x, context, info, first_ms
        self.seeded = seeded  # the input as seeded, before any call (``x`` may be written to)
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
        """The output for the seeded input (a copy: the timed input may have been written to).
        The copy is made outside ``inference_mode``, as the timed input was: an inference
        tensor would make a compiled model (``torch.compile``) compile a second graph."""
        x = self.seeded.clone()
        with self.context():
            out = first_tensor(self.model(x))
        return out.detach().float().cpu().numpy().copy()

    def outputs_for(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        outs = []
        for data in inputs:  # same device, dtype and memory format as the timed input, made
            # outside inference_mode as it was (see ``output``)
            x = torch.from_numpy(np.ascontiguousarray(data)).to(
                device=self.x.device, dtype=self.x.dtype).contiguous(
                memory_format=_memory_format(self.x))
            with self.context():
                outs.append(first_tensor(self.model(x)).detach().float().cpu().numpy().copy())
        return outs

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
