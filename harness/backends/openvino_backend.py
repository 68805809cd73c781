"""OpenVINO: convert once (cached IR), compile with explicit settings, read back what was resolved.

Why every setting is explicit: OpenVINO's defaults change what is measured. The CPU plugin runs
bf16 on CPUs that support it unless ``INFERENCE_PRECISION_HINT=f32``; the default hint is
throughput-oriented with several streams; a model converted from ``example_input`` alone has a
dynamic shape. So the shape is static, the precision, ``LATENCY`` hint, one stream and the
thread count are set, and the compiled model's resolved properties are stored with the cell,
including what OpenVINO chose when it could not honour a request (bf16 without hardware bf16).

Options: ``openvino:CPU[hint=THROUGHPUT,streams=4]`` sets the performance hint and the stream
count (``streams=auto`` leaves the count to the hint); ``[calibration=N]`` the size of the int8
calibration set (``harness.backends.openvino_int8``: NNCF, cached beside the f32 IR). The timing loop is one synchronous
request either way, so these options show what a latency measurement costs under each setting.
``openvino:CPU[sparse_rate=0.5]`` sets ``CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE``: OpenVINO may
then pack the weights of MatMul/FullyConnected layers with at least that share of zeros
(documented for int8 weights on CPUs with AMX). The rate is read back, and so are the kernels
the FullyConnected layers run (``fully_connected_kernels``; ``sparse_weights_packed`` is true
only when one of them is a sparse kernel), so a cell says whether the packing happened. A
device without the property skips the cell with that reason.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from harness.backends import ircache, register
from harness.backends.base import (
    AVAILABILITY,
    RUNTIME,
    Backend,
    BackendError,
    PrepareContext,
    Prepared,
    PrepareError,
    readable,
    time_calls,
)
from harness.backends.openvino_devices import present, split_device
from harness.backends.openvino_ir import load_ir
from harness.backends.openvino_props import (
    READ_BACK,
    effective_precision,
    fully_connected_kernels,
    openvino_devices,
    plain,
    read_properties,
    runtime_precisions,
)
from harness.backends.options import option
from harness.backends.precision import CALIBRATION_SAMPLES
from harness.measure.results import LATENCY, THROUGHPUT

SPARSE_RATE = "CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE"
HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
@dataclass(frozen=True)
class OpenVINOConfig:
    device: str = "CPU"
    performance_hint: str = option("hint", str, "LATENCY", "PERFORMANCE_HINT", choices=HINTS)
    num_streams: int | str = option("streams", int, 1, "NUM_STREAMS (auto: the hint decides)",
                                    lo=1, hi=1024, words=("auto",))
    calibration: int = option("calibration", int, CALIBRATION_SAMPLES, "int8 only: samples in "
                              "the seeded synthetic calibration set (NNCF subset_size)",
                              lo=1, hi=100_000)
    sparse_rate: float = option("sparse_rate", float, 1.0, "CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE "
                                "(pack weights with at least this share of zeros; 1: off)",
                                lo=0.0, hi=1.0)
    requests: int | str = option("requests", int, "auto", "throughput scenario only: requests "
                                 "kept in flight (auto: OPTIMAL_NUMBER_OF_INFER_REQUESTS + 1)",
                                 lo=1, hi=1024, words=("auto",))

    def __post_init__(self) -> None:
        split_device(self.device)
        if self.performance_hint not in HINTS:
            raise BackendError(f"performance_hint must be one of {', '.join(HINTS)}")
        if self.num_streams != "auto" and (not isinstance(self.num_streams, int)
                                           or self.num_streams < 1):
            raise BackendError("num_streams must be >= 1 or 'auto'")


@register
class OpenVINOBackend(Backend):
    name = "openvino"
    default_device = "CPU"
    spell_default_device = True
    Config: ClassVar[type] = OpenVINOConfig

    @classmethod
    def normalize_device(cls, device: str) -> str:
        device = device.upper().replace(" ", "")
        split_device(device)
        return device

    @classmethod
    def machine_info(cls) -> dict[str, Any]:
        """``openvino_devices`` (every device OpenVINO sees, with its full name and
        capabilities) and the OpenVINO version; a broken plugin gives ``openvino_error``."""
        from importlib import metadata

        out: dict[str, Any] = {}
        try:
            out["versions"] = {"openvino": metadata.version("openvino")}
        except metadata.PackageNotFoundError:
            out["versions"] = {"openvino": None}
        try:  # int8 on OpenVINO is NNCF's
            out["versions"]["nncf"] = metadata.version("nncf")
        except metadata.PackageNotFoundError:
            out["versions"]["nncf"] = None
        out["openvino_devices"], error = openvino_devices()
        if error:
            out["openvino_error"] = error
        return out

    @functools.cached_property
    def core(self) -> Any:
        import openvino as ov

        return ov.Core()

    precisions = ("f32", "bf16", "int8")

    def on_cpu(self) -> bool:
        return "CPU" in split_device(self.config.device)[1]

    def supports(self, precision: str) -> tuple[bool, str]:
        ok, why = super().supports(precision)
        if ok and precision == "int8":
            from harness.backends.openvino_int8 import availability

            return availability()
        return ok, why

    def availability(self) -> tuple[bool, str]:
        available = list(self.core.available_devices)
        _, targets = split_device(self.config.device)
        missing = [t for t in targets if not present(t, available)]
        if not available or missing:
            what = ", ".join(missing) or self.config.device
            return False, (
                f"OpenVINO device {what} is not available here; available devices: "
                f"{', '.join(available) or 'none'}"
            )
        return True, ""

    def prepare(self, model: Any, example_input: Any, ctx: PrepareContext) -> Prepared:
        import openvino as ov

        precision, threads = ctx.precision, ctx.threads
        x = example_input.detach().cpu().clone().contiguous()  # tracing may write into it
        # Owned, contiguous float32 memory that the input tensor will share for the whole run.
        data = np.ascontiguousarray(x.numpy(), dtype=np.float32).copy()

        try:  # from the cache, or traced and converted (harness.backends.openvino_ir)
            om, info = load_ir(model, x, ctx)
        except Exception as exc:
            raise PrepareError(f"OpenVINO conversion failed: {readable(exc)}") from exc
        key = info["artefact_key"] or ""
        if precision == "int8":
            om, info["quantization"] = self._quantize(om, data.shape, key, ctx)
        config = self._compile_config(precision, threads, ctx.scenario)
        t0 = time.perf_counter()
        try:
            cm = self.core.compile_model(om, self.config.device, config)
        except Exception as exc:
            raise PrepareError(
                f"OpenVINO compilation for {self.config.device} failed: {readable(exc)}"
            ) from exc
        compile_s = time.perf_counter() - t0
        props = self._properties(cm)
        effective = effective_precision(props)
        if precision == "int8":  # the hint is the float part's precision; int8 is what ran
            from harness.backends.openvino_int8 import is_quantized

            effective = "int8" if is_quantized(props["runtime_precisions"]) else effective
        if ctx.scenario == THROUGHPUT:
            info.update(precision_requested=precision, precision_effective=effective,
                        compile_s=compile_s)
            prepared = self._throughput(cm, data, props, config, info)
            prepared.source = (self.core, om, self.config.device, config)  # for layer_times
            return prepared
        req = cm.create_infer_request()
        req.set_input_tensor(ov.Tensor(data, shared_memory=True))
        infer = _lean_infer(req)
        try:
            try:
                first_ms = time_calls(infer, 1)[0]
            except TypeError:  # the binding's signature changed: the public call still works
                infer = req.infer
                first_ms = time_calls(infer, 1)[0]
        except Exception as exc:
            raise PrepareError(f"the first inference failed: {readable(exc)}", RUNTIME) from exc
        info.update(
            compile_s=compile_s,
            precision_requested=precision,
            precision_effective=effective,
            compile_config=plain(config),
            properties=props,
        )
        prepared = OpenVINOPrepared(cm, req, data, infer, info, first_ms)
        prepared.source = (self.core, om, self.config.device, config)  # for layer_times
        return prepared

    def _throughput(self, cm: Any, data: np.ndarray, props: dict[str, Any],
                    config: dict[str, Any], info: dict[str, Any]) -> Prepared:
        """The throughput scenario: an ``AsyncInferQueue`` of the optimal number of requests
        plus one (``harness.backends.openvino_throughput``). Why one more: a request is
        resubmitted from Python after its completion callback, and in that gap its stream would
        idle; a spare request keeps about the optimal number in flight on average (a queue of
        exactly the optimal number kept 0.92 of it on MobileNetV2 w0.5)."""
        from harness.backends.openvino_throughput import OpenVINOThroughput, ThroughputQueue

        optimal = props.get("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        optimal = optimal if isinstance(optimal, int) and optimal > 0 else 1
        jobs = optimal + 1 if self.config.requests == "auto" else int(self.config.requests)
        try:
            queue = ThroughputQueue(cm, data, jobs)
            first_ms = queue.first_round_ms()
        except Exception as exc:
            raise PrepareError(f"the first asynchronous round failed: {readable(exc)}",
                               RUNTIME) from exc
        info.update(
            compile_config=plain(config), properties=props,
            images_per_sample=jobs * int(data.shape[0]),
            throughput={"mode": "async-queue", "requests": jobs, "optimal_requests": optimal,
                        "streams": props.get("NUM_STREAMS"), "batch": int(data.shape[0])},
        )
        return OpenVINOThroughput(queue, info, first_ms)

    def _quantize(self, om: Any, shape: tuple[int, ...], ir_key: str,
                  ctx: PrepareContext) -> tuple[Any, dict]:
        """The NNCF-quantized model, from the cache beside the f32 IR or made now; its key is
        the f32 IR's (what the model is) and the quantizer's settings."""
        from harness.backends import openvino_int8

        record = openvino_int8.settings(self.config.calibration)
        key = openvino_int8.cache_key(ir_key, record)
        try:
            qm, qinfo = ircache.load_or_convert(
                ctx.cache_dir, key, lambda: openvino_int8.quantize(om, shape, self.config.calibration),
                label=f"{ctx.cache_key} int8")
        except Exception as exc:
            raise PrepareError(f"NNCF int8 quantization failed: {readable(exc)}") from exc
        return qm, {**record, "cache_hit": qinfo["ir_cache_hit"], "quantize_s": qinfo["convert_s"],
                    "ir_path": qinfo["ir_path"]}

    def _compile_config(self, precision: str, threads: int,
                        scenario: str = LATENCY) -> dict[str, Any]:
        """What to pass to ``compile_model``: each physical device gets the settings it
        supports; a virtual device (AUTO, HETERO...) gets them per target device, because
        that is where streams, threads and precision take effect.

        The throughput scenario runs OpenVINO's THROUGHPUT hint (unless the backend text asks
        for CUMULATIVE_THROUGHPUT) and lets the hint choose the streams unless ``streams=N``
        is given; both are read back into the cell's properties."""
        hint, streams = self.config.performance_hint, self.config.num_streams
        if scenario == THROUGHPUT:
            hint = "THROUGHPUT" if hint == "LATENCY" else hint
            streams = "auto" if streams == 1 else streams
        wanted: dict[str, Any] = {
            # int8 layers run int8 whatever the hint; the rest is forced to f32, not left to
            # run bf16 silently on CPUs that have it
            "INFERENCE_PRECISION_HINT": "f32" if precision == "int8" else precision,
            "PERFORMANCE_HINT": hint,
            "NUM_STREAMS": streams,
            "INFERENCE_NUM_THREADS": threads,
        }
        if streams == "auto":  # the hint decides; read back into properties
            del wanted["NUM_STREAMS"]
        virtual, targets = split_device(self.config.device)
        if self.config.sparse_rate != 1.0:
            self._require(SPARSE_RATE, targets or [self.config.device])
            wanted[SPARSE_RATE] = float(self.config.sparse_rate)
        if virtual is None:
            return self._supported(self.config.device, wanted)
        config = self._supported(virtual, {"PERFORMANCE_HINT": hint})
        targets = targets or list(self.core.available_devices)
        config["DEVICE_PROPERTIES"] = {t: self._supported(t, wanted) for t in targets}
        return config

    def _require(self, key: str, devices: list[str]) -> None:
        """A property the user asked for that a device lacks skips the cell, saying so."""
        for dev in devices:
            try:
                supported = self.core.get_property(dev, "SUPPORTED_PROPERTIES")
            except Exception:  # unknown to this Core: compile_model will say why
                continue
            if key not in supported:
                raise PrepareError(f"OpenVINO device {dev} has no property {key}", AVAILABILITY)

    def _supported(self, device: str, wanted: dict[str, Any]) -> dict[str, Any]:
        try:
            supported = self.core.get_property(device, "SUPPORTED_PROPERTIES")
        except Exception:  # unknown to this Core: pass everything, compile_model will say why
            return dict(wanted)
        return {k: v for k, v in wanted.items() if k in supported}

    def _properties(self, cm: Any) -> dict[str, Any]:
        import openvino as ov

        props = read_properties(cm, READ_BACK)
        per_device = read_properties(cm, ("DEVICE_PROPERTIES",)).get("DEVICE_PROPERTIES")
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
                    devices[dev][key] = plain(self.core.get_property(dev, key))
                except Exception:
                    continue
        props["devices"] = devices
        props["runtime_precisions"] = runtime_precisions(cm)
        kernels = fully_connected_kernels(cm)
        if kernels:
            props["fully_connected_kernels"] = kernels
            props["sparse_weights_packed"] = any("sparse" in k for k in kernels)
        props["openvino_version"] = ov.get_version()
        return props


class OpenVINOPrepared(Prepared):
    def __init__(self, cm: Any, req: Any, data: np.ndarray, infer: Callable[[], Any],
                 info: dict[str, Any], first_ms: float) -> None:
        # ``data`` is kept: the input tensor shares its memory.
        self.cm, self.req, self.data, self._infer = cm, req, data, infer
        self.info, self.first_ms = info, first_ms
        # (core, source model, device, compile config): the layer pass compiles its own copy
        self.source: tuple[Any, Any, str, dict[str, Any]] | None = None

    def time_block(self, n: int) -> list[float]:
        return time_calls(self._infer, n)

    def output(self) -> np.ndarray:
        self._infer()
        return np.array(self.req.get_output_tensor(0).data, dtype=np.float32, copy=True)

    def outputs_for(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        saved = self.data.copy()
        outs = []
        try:
            for x in inputs:  # the input tensor shares ``data``'s memory
                self.data[...] = x
                outs.append(self.output())
        finally:
            self.data[...] = saved
        return outs

    def kernel_rows(self) -> list[dict[str, Any]] | None:
        """The compiled model's runtime graph: one row per primitive, with what it absorbed."""
        from harness.backends.ov_layers import runtime_rows

        return runtime_rows(self.cm)

    def layer_times(self, n: int) -> list[dict[str, Any]]:
        from harness.backends.ov_layers import layer_times

        if self.source is None:
            raise NotImplementedError("this prepared model keeps no source model to profile")
        return layer_times(*self.source, self.data, n)


def _lean_infer(req: Any) -> Callable[[], Any]:
    """The cheapest synchronous inference call on ``req``.

    Why not ``req.infer()``: the public wrapper runs the Python input dispatcher and wraps copied
    outputs in a fresh ``OVDict`` on every call (measured at a few microseconds). The binding
    underneath it, called with no inputs and shared outputs, runs the inference on the tensors
    already set. If it is not there, the public call is used.
    """
    base = getattr(super(type(req), req), "infer", None)
    return functools.partial(base, {}, True, True) if base is not None else req.infer
