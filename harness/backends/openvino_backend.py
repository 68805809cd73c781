"""OpenVINO: convert once (cached IR), compile with explicit settings, read back what was resolved.

Why every setting is explicit: OpenVINO's defaults change what is measured. The CPU plugin runs
bf16 on CPUs that support it unless ``INFERENCE_PRECISION_HINT=f32``; the default hint is
throughput-oriented with several streams; a model converted from ``example_input`` alone has a
dynamic shape. So the shape is static, the precision, ``LATENCY`` hint, one stream and the
thread count are set, and the compiled model's resolved properties are stored with the cell,
including what OpenVINO chose when it could not honour a request (bf16 without hardware bf16).
"""

from __future__ import annotations

import functools
import re
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.backends import ircache, register
from harness.backends.base import (
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

_PHYSICAL = re.compile(r"^[A-Z][A-Z0-9_]*(\.\d+)?$")
VIRTUAL = ("AUTO", "HETERO", "MULTI", "BATCH")  # devices that place work on other devices
HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")

# Compiled-model properties worth keeping with a cell (those a device lacks are left out).
READ_BACK = (
    "EXECUTION_DEVICES", "PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS",
    "INFERENCE_PRECISION_HINT", "EXECUTION_MODE_HINT", "ENABLE_CPU_PINNING",
    "ENABLE_HYPER_THREADING", "SCHEDULING_CORE_TYPE", "ENABLE_CPU_RESERVATION",
    "CPU_DENORMALS_OPTIMIZATION", "MODEL_DISTRIBUTION_POLICY", "OPTIMAL_NUMBER_OF_INFER_REQUESTS",
    "PERFORMANCE_HINT_NUM_REQUESTS", "MULTI_DEVICE_PRIORITIES", "LOADED_FROM_CACHE",
)


def split_device(device: str) -> tuple[str | None, list[str]]:
    """``"HETERO:GPU,CPU"`` -> ``("HETERO", ["GPU", "CPU"])``; ``"CPU"`` -> ``(None, ["CPU"])``."""
    head, sep, rest = device.partition(":")
    if head in VIRTUAL:
        targets = rest.split(",") if sep else []
        if head != "AUTO" and not targets:
            raise BackendError(f"OpenVINO device {head} needs a device list, e.g. {head}:GPU,CPU")
    elif sep or "," in device:
        raise BackendError(
            f"OpenVINO device {device!r}: a device list is only valid after {', '.join(VIRTUAL)}"
        )
    else:
        targets = [device]
    for t in targets:
        if not _PHYSICAL.match(t):
            raise BackendError(f"OpenVINO device {t!r} in {device!r}: expected a name like CPU, GPU.1")
    return (head if head in VIRTUAL else None), targets


@dataclass(frozen=True)
class OpenVINOConfig:
    device: str = "CPU"
    performance_hint: str = "LATENCY"
    num_streams: int = 1

    def __post_init__(self) -> None:
        split_device(self.device)
        if self.performance_hint not in HINTS:
            raise BackendError(f"performance_hint must be one of {', '.join(HINTS)}")
        if self.num_streams < 1:
            raise BackendError("num_streams must be >= 1")


@register
class OpenVINOBackend(Backend):
    name = "openvino"
    default_device = "CPU"
    spell_default_device = True

    @classmethod
    def normalize_device(cls, device: str) -> str:
        device = device.upper().replace(" ", "")
        split_device(device)
        return device

    def make_config(self, device: str) -> OpenVINOConfig:
        return OpenVINOConfig(device=device)

    @functools.cached_property
    def core(self) -> Any:
        import openvino as ov

        return ov.Core()

    def availability(self) -> tuple[bool, str]:
        available = list(self.core.available_devices)
        _, targets = split_device(self.config.device)
        missing = [t for t in targets if not _present(t, available)]
        if not available or missing:
            what = ", ".join(missing) or self.config.device
            return False, (
                f"OpenVINO device {what} is not available here; available devices: "
                f"{', '.join(available) or 'none'}"
            )
        return True, ""

    def prepare(
        self, model: Any, example_input: Any, *, precision: str, threads: int,
        ir_key: str = "", cache_dir: str | None = None,
    ) -> Prepared:
        import openvino as ov

        check_precision(precision)
        check_threads(threads)
        x = example_input.detach().cpu().contiguous()
        # Owned, contiguous float32 memory that the input tensor will share for the whole run.
        data = np.ascontiguousarray(x.numpy(), dtype=np.float32).copy()

        def convert() -> Any:
            # OpenVINO's PyTorch frontend traces with torch.jit, which torch deprecates; the
            # warning is not the user's to act on and would bury real messages in the log.
            #
            # We trace ourselves with check_trace=False: the check re-runs the traced graph
            # and compares it with eager, which cost 4x the trace itself (16 s of 17 s for an
            # 8-cell DARTS net here). Parity against PyTorch is checked on every cell anyway.
            import torch

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                with torch.no_grad():
                    traced = torch.jit.trace(model, x, check_trace=False, strict=False)
                return ov.convert_model(traced, example_input=x, input=[tuple(x.shape)])

        try:
            om, info = ircache.load_or_convert(cache_dir, ir_key, convert)
        except Exception as exc:
            raise PrepareError(f"OpenVINO conversion failed: {readable(exc)}") from exc
        config = self._compile_config(precision, threads)
        t0 = time.perf_counter()
        try:
            cm = self.core.compile_model(om, self.config.device, config)
        except Exception as exc:
            raise PrepareError(
                f"OpenVINO compilation for {self.config.device} failed: {readable(exc)}"
            ) from exc
        compile_s = time.perf_counter() - t0
        props = self._properties(cm)
        req = cm.create_infer_request()
        req.set_input_tensor(ov.Tensor(data, shared_memory=True))
        infer = _lean_infer(req)
        try:
            try:
                first_ms = _timed(infer)
            except TypeError:  # the binding's signature changed: the public call still works
                infer = req.infer
                first_ms = _timed(infer)
        except Exception as exc:
            raise PrepareError(f"the first inference failed: {readable(exc)}", RUNTIME) from exc
        info.update(
            compile_s=compile_s,
            precision_requested=precision,
            precision_effective=_effective_precision(props),
            compile_config=_plain(config),
            properties=props,
        )
        prepared = OpenVINOPrepared(cm, req, data, infer, info, first_ms)
        prepared.source = (self.core, om, self.config.device, config)  # for layer_times
        return prepared

    def _compile_config(self, precision: str, threads: int) -> dict[str, Any]:
        """What to pass to ``compile_model``: each physical device gets the settings it
        supports; a virtual device (AUTO, HETERO...) gets them per target device, because
        that is where streams, threads and precision take effect."""
        wanted = {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": self.config.performance_hint,
            "NUM_STREAMS": self.config.num_streams,
            "INFERENCE_NUM_THREADS": threads,
        }
        virtual, targets = split_device(self.config.device)
        if virtual is None:
            return self._supported(self.config.device, wanted)
        config = self._supported(virtual, {"PERFORMANCE_HINT": self.config.performance_hint})
        targets = targets or list(self.core.available_devices)
        config["DEVICE_PROPERTIES"] = {t: self._supported(t, wanted) for t in targets}
        return config

    def _supported(self, device: str, wanted: dict[str, Any]) -> dict[str, Any]:
        try:
            supported = self.core.get_property(device, "SUPPORTED_PROPERTIES")
        except Exception:  # unknown to this Core: pass everything, compile_model will say why
            return dict(wanted)
        return {k: v for k, v in wanted.items() if k in supported}

    def _properties(self, cm: Any) -> dict[str, Any]:
        import openvino as ov

        props = _read(cm, READ_BACK)
        per_device = _read(cm, ("DEVICE_PROPERTIES",)).get("DEVICE_PROPERTIES")
        if isinstance(per_device, dict):
            props["DEVICE_PROPERTIES"] = {
                dev: {k: v for k, v in values.items() if k in READ_BACK}
                for dev, values in per_device.items() if isinstance(values, dict)
            }
        devices: dict[str, Any] = {}
        for dev in props.get("EXECUTION_DEVICES") or []:
            devices[dev] = {}
            for key in ("FULL_DEVICE_NAME", "OPTIMIZATION_CAPABILITIES"):
                try:
                    devices[dev][key] = _plain(self.core.get_property(dev, key))
                except Exception:
                    continue
        props["devices"] = devices
        props["runtime_precisions"] = _runtime_precisions(cm)
        props["openvino_version"] = ov.get_version()
        return props


class OpenVINOPrepared(Prepared):
    def __init__(self, cm: Any, req: Any, data: np.ndarray, infer: Callable[[], Any],
                 info: dict[str, Any], first_ms: float) -> None:
        # ``data`` is kept: the input tensor shares its memory.
        self.cm, self.req, self.data, self._infer = cm, req, data, infer
        self.info, self.first_ms = info, first_ms

    def time_block(self, n: int) -> list[float]:
        return time_calls(self._infer, n)

    def output(self) -> np.ndarray:
        self._infer()
        return np.array(self.req.get_output_tensor(0).data, dtype=np.float32, copy=True)

    def layer_times(self, n: int) -> list[dict[str, Any]]:
        from harness.backends.ov_layers import layer_times

        return layer_times(*self.source, self.data, n)


def _present(device: str, available: list[str]) -> bool:
    """``GPU`` is present when ``GPU`` or any ``GPU.N`` is listed; ``GPU.1`` only as itself."""
    return device in available or ("." not in device and any(
        a.split(".")[0] == device for a in available))


def _lean_infer(req: Any) -> Callable[[], Any]:
    """The cheapest synchronous inference call on ``req``.

    Why not ``req.infer()``: the public wrapper runs the Python input dispatcher and wraps copied
    outputs in a fresh ``OVDict`` on every call (measured at a few microseconds). The binding
    underneath it, called with no inputs and shared outputs, runs the inference on the tensors
    already set. If it is not there, the public call is used.
    """
    base = getattr(super(type(req), req), "infer", None)
    return functools.partial(base, {}, True, True) if base is not None else req.infer


def _timed(call: Callable[[], Any]) -> float:
    t0 = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - t0) / 1e6


def _read(cm: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    supported = cm.get_property("SUPPORTED_PROPERTIES")
    out = {}
    for key in keys:
        if key in supported:
            try:
                out[key] = _plain(cm.get_property(key))
            except Exception:
                continue
    return out


def _plain(value: Any) -> Any:
    """JSON-ready form of an OpenVINO property value (types, enums, sets, nested dicts)."""
    import openvino as ov

    if isinstance(value, ov.Type):
        return value.get_type_name()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else str(value)


def _effective_precision(props: dict[str, Any]) -> str | None:
    """The inference precision the (first) execution device resolved to."""
    if "INFERENCE_PRECISION_HINT" in props:
        return props["INFERENCE_PRECISION_HINT"]
    per_device = props.get("DEVICE_PROPERTIES") or {}
    for dev in props.get("EXECUTION_DEVICES") or list(per_device):
        hint = per_device.get(dev, {}).get("INFERENCE_PRECISION_HINT")
        if hint:
            return hint
    return None


def _runtime_precisions(cm: Any) -> dict[str, int]:
    """Layers of the executed graph by the precision they run in: what really ran."""
    counts: Counter[str] = Counter()
    try:
        for op in cm.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            if info["layerType"].astype(str) in ("Input", "Output", "Const"):
                continue
            counts[info["runtimePrecision"].astype(str)] += 1
    except Exception:  # virtual devices may not expose a runtime model
        return {}
    return dict(counts)
