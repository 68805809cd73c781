"""ONNX Runtime on the CPU (``onnxruntime``): what a user picks who wants "a runtime, any runtime".

How the model gets there: ``torch.onnx.export(model, (x,), dynamo=True)``, the exporter that
torch 2.13 recommends (``torch.export`` to an FX graph, then onnxscript's translation and its
graph optimizer); the TorchScript exporter (``dynamo=False``) is deprecated and not used. The
ONNX file is cached like the IR, keyed by the model's cache key and the exporter's versions
(``artefacts.artefact_key``, ``ircache.load_or_write_file``), so a second run exports nothing.

Why these session settings: the same rules as OpenVINO's cell. ``intra_op_num_threads`` is the
cell's thread count, one inter-op thread and sequential execution (one request at a time, as
the timing loop runs), graph optimizations at ``ORT_ENABLE_ALL`` (constant folding, conv-BN and
activation fusions, NCHWc layout transforms), only the ``CPUExecutionProvider``. What the
session resolved is read back and stored. The timing loop binds the input and a preallocated
output once (``IOBinding``), so a timed call allocates nothing, as OpenVINO's does not.
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, ClassVar

import numpy as np

from harness.backends import artefacts, ircache, register
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

PACKAGES = ("onnxruntime", "onnxscript", "onnx")
EXPORTER = "torch.onnx.export(dynamo=True): torch.export + onnxscript"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def missing_packages() -> tuple[str, ...]:
    """The packages this backend needs that this install lacks (the ``runtimes`` extra)."""
    return tuple(p for p in PACKAGES if _version(p) is None)


@dataclass(frozen=True)
class OnnxRuntimeConfig:
    device: str = "cpu"  # the CPUExecutionProvider; no options yet


@register
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    default_device = "cpu"
    Config: ClassVar[type] = OnnxRuntimeConfig
    precisions = ("f32",)  # the CPU provider has no bf16 convolutions; int8 is not offered

    @classmethod
    def normalize_device(cls, device: str) -> str:
        if device.lower() != "cpu":
            raise BackendError(f"onnxruntime device {device!r}: only cpu (the CPUExecutionProvider)")
        return "cpu"

    @classmethod
    def machine_info(cls) -> dict[str, Any]:
        return {"versions": {p: _version(p) for p in PACKAGES}}

    def availability(self) -> tuple[bool, str]:
        missing = missing_packages()
        if missing:
            return False, (f"{', '.join(missing)} not installed (pip install -c constraints.txt "
                           "'accelbench[runtimes]')")
        return True, ""

    def prepare(self, model: Any, example_input: Any, ctx: PrepareContext) -> Prepared:
        import onnxruntime as ort
        import torch

        x = example_input.detach().cpu().clone().contiguous()  # tracing may write into it
        data = np.ascontiguousarray(x.numpy(), dtype=np.float32).copy()
        versions = {p: _version(p) for p in PACKAGES}

        def export(path: Any) -> None:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(model.eval(), (x,), str(path), dynamo=True, verbose=False,
                                  input_names=["input"])

        try:
            # keyed by what the model is (harness.backends.artefacts), as the IR is; a later
            # process of the cell reuses the first's key (PrepareContext.known_artefact_key)
            path, info = ircache.load_or_write_file(
                ctx.cache_dir,
                lambda: artefacts.artefact_key("onnx", model, x, exporter=EXPORTER, **versions),
                ".onnx", export, known=ctx.known_artefact_key)
        except Exception as exc:
            raise PrepareError(f"ONNX export failed: {readable(exc)}") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = ctx.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        t0 = time.perf_counter()
        try:
            sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise PrepareError(f"ONNX Runtime session creation failed: {readable(exc)}") from exc
        compile_s = time.perf_counter() - t0
        name = sess.get_inputs()[0].name
        out_meta = sess.get_outputs()[0]
        try:
            first = sess.run([out_meta.name], {name: data})[0]
        except Exception as exc:
            raise PrepareError(f"the first inference failed: {readable(exc)}", RUNTIME) from exc
        out = np.empty_like(first)
        binding = sess.io_binding()
        binding.bind_cpu_input(name, data)
        binding.bind_ortvalue_output(out_meta.name, ort.OrtValue.ortvalue_from_numpy(out))
        infer = functools.partial(sess.run_with_iobinding, binding)
        first_ms = time_calls(infer, 1)[0]
        info.update(
            ir_cache_hit=info.pop("cache_hit"), ir_path=info.pop("path"), compile_s=compile_s,
            precision_requested=ctx.precision, precision_effective="f32",
            properties=_properties(sess, path, versions),
        )
        return OnnxRuntimePrepared(sess, name, data, out, infer, info, first_ms)


def _properties(sess: Any, path: Any, versions: dict[str, Any]) -> dict[str, Any]:
    """The session's resolved settings and what the exported file is, for the cell's record."""
    opts = sess.get_session_options()
    props: dict[str, Any] = {
        "exporter": EXPORTER,
        "providers": list(sess.get_providers()),
        "intra_op_num_threads": opts.intra_op_num_threads,
        "inter_op_num_threads": opts.inter_op_num_threads,
        "execution_mode": str(opts.execution_mode).rpartition(".")[2],
        "graph_optimization_level": str(opts.graph_optimization_level).rpartition(".")[2],
        "versions": versions,
    }
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        props["opset"] = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
        props["onnx_nodes"] = len(proto.graph.node)
    except Exception as exc:  # noqa: BLE001 - describing the file is advisory
        props["opset_error"] = readable(exc)
    return props


class OnnxRuntimePrepared(Prepared):
    def __init__(self, sess: Any, name: str, data: np.ndarray, out: np.ndarray, infer: Any,
                 info: dict[str, Any], first_ms: float) -> None:
        # ``data`` and ``out`` are kept: the binding points at their memory.
        self.sess, self.name, self.data, self.out, self._infer = sess, name, data, out, infer
        self.info, self.first_ms = info, first_ms

    def time_block(self, n: int) -> list[float]:
        return time_calls(self._infer, n)

    def output(self) -> np.ndarray:
        self._infer()
        return np.array(self.out, dtype=np.float32, copy=True)

    def outputs_for(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(self.sess.run(None, {self.name: np.ascontiguousarray(x, np.float32)})[0],
                           dtype=np.float32) for x in inputs]
