"""Native PyTorch: the baseline every speed-up is measured against (``torch``, ``torch-compile``).

Why these settings: eager PyTorch under ``inference_mode`` with intra-op threads set to the cell's
thread count and one inter-op thread is what a careful user deploys; that is the honest
baseline (not autograd-tracking eager, not a default of all cores). bf16 goes through
``torch.autocast``, PyTorch's own mixed-precision path, and the method is recorded.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

from harness.backends import register
from harness.backends.base import (
    CONVERSION,
    RUNTIME,
    Backend,
    BackendError,
    Prepared,
    PrepareError,
    check_precision,
    check_threads,
    readable,
    time_calls,
)

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class TorchConfig:
    device: str = "cpu"
    use_compile: bool = False
    compile_backend: str = "inductor"
    interop_threads: int = 1

    def __post_init__(self) -> None:
        if not _DEVICE.match(self.device):
            raise BackendError(f"torch device {self.device!r}: expected cpu, cuda or cuda:N")
        if self.interop_threads < 1:
            raise BackendError("interop_threads must be >= 1")


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
    use_compile = False

    @classmethod
    def normalize_device(cls, device: str) -> str:
        device = device.lower()
        if not _DEVICE.match(device):
            raise BackendError(f"{cls.name} device {device!r}: expected cpu, cuda or cuda:N")
        return device

    def make_config(self, device: str) -> TorchConfig:
        return TorchConfig(device=device, use_compile=self.use_compile)

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

    def prepare(
        self, model: Any, example_input: Any, *, precision: str, threads: int,
        ir_key: str = "", cache_dir: str | None = None,
    ) -> Prepared:
        import torch

        check_precision(precision)
        check_threads(threads)
        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # only settable before the first parallel op
            torch.set_num_interop_threads(self.config.interop_threads)
        device = torch.device(self.config.device)
        t0 = time.perf_counter()
        try:
            model = model.eval().to(device)
            x = example_input.to(device).contiguous()
        except Exception as exc:
            raise PrepareError(f"moving the model to {device} failed: {readable(exc)}") from exc
        convert_s = time.perf_counter() - t0
        context = functools.partial(_run_context, precision, device.type)
        sync = torch.cuda.synchronize if device.type == "cuda" else None
        compile_s = 0.0
        if self.config.use_compile:
            model = torch.compile(model, backend=self.config.compile_backend)
            try:
                compile_s = _timed_call(model, x, context, sync) / 1e3  # the first call compiles
            except Exception as exc:
                raise PrepareError(f"torch.compile failed: {readable(exc)}", CONVERSION) from exc
        try:
            first_ms = _timed_call(model, x, context, sync)
        except Exception as exc:
            raise PrepareError(f"the first inference failed: {readable(exc)}", RUNTIME) from exc
        info = {
            "convert_s": convert_s,
            "compile_s": compile_s,
            "ir_cache_hit": None,
            "precision_requested": precision,
            "precision_effective": precision,
            "properties": self._properties(precision, device),
        }
        return TorchPrepared(model, x, context, sync, info, first_ms)

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
            "precision_method": (
                f"torch.autocast({device.type}, bfloat16)" if precision == "bf16" else "float32"
            ),
        }
        if precision == "bf16" and device.type == "cpu":
            # Whether oneDNN has native bf16 here; without it autocast still runs, emulated.
            probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
            with contextlib.suppress(Exception):
                props["bf16_native"] = bool(probe()) if probe is not None else None
        if self.config.use_compile:
            props["compile_backend"] = self.config.compile_backend
        if device.type == "cuda":
            props["cuda_device_name"] = torch.cuda.get_device_name(device)
            props["cuda_version"] = torch.version.cuda
        return props


@register
class TorchCompileBackend(TorchBackend):
    """``torch.compile`` (inductor). Opt-in: compiling takes tens of seconds per model."""

    name = "torch-compile"
    use_compile = True


def _run_context(precision: str, device_type: str) -> contextlib.ExitStack:
    import torch

    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if precision == "bf16":
        stack.enter_context(torch.autocast(device_type, dtype=torch.bfloat16))
    return stack


def _timed_call(model: Callable, x: torch.Tensor, context: Callable, sync: Callable | None) -> float:
    with context():
        if sync is not None:
            sync()
        t0 = time.perf_counter_ns()
        model(x)
        if sync is not None:
            sync()
        return (time.perf_counter_ns() - t0) / 1e6


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
