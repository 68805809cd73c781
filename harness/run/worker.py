"""The worker process: one backend, answering JSON-line requests from the coordinator.

Why a process per backend: a crash (segfault in a plugin, the OOM killer) loses one cell, not
the session; and PyTorch's OpenMP pool and OpenVINO's TBB pool never compete inside one process.
The thread environment (``OMP_NUM_THREADS``...) is set by ``WorkerClient`` before this process
starts, i.e. before any library reads it.

Why the protocol has its own file descriptor: C libraries print to fd 1 (OpenVINO plugins,
oneDNN verbose, compilers invoked by inductor). The protocol writes to a private duplicate of
the original stdout and fd 1 is pointed at stderr, so nothing but answers reaches the pipe.

Requests and answers are documented in ``harness.run.client``. Libraries are imported only
after the protocol descriptor is claimed, so even import-time prints cannot reach the pipe.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import os
import resource
import sys
from typing import Any, TextIO

import numpy as np

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
KINDS = ("availability", "build", "conversion", "runtime", "protocol")


class Failure(Exception):
    """An expected failure, answered as ``{"ok": false, "error", "kind"}``."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _claim_protocol_fd() -> TextIO:
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(2, 1)
    return proto


class Worker:
    def __init__(self, backend: str, threads: int) -> None:
        from harness.backends import BackendError, get_backend

        try:
            self.backend = get_backend(backend)
        except BackendError as exc:
            raise Failure(str(exc), "protocol") from exc
        self.threads = threads
        self.prepared: Any = None
        self.built: tuple[Any, Any] | None = None

    def handle(self, msg: Any) -> dict[str, Any]:
        from harness.backends.base import readable

        try:
            if not isinstance(msg, dict):
                raise Failure("a request must be a JSON object", "protocol")
            handler = getattr(self, f"op_{msg.get('op')}", None)
            if handler is None:
                raise Failure(f"unknown op {msg.get('op')!r}", "protocol")
            return {"ok": True, **handler(msg)}
        except Failure as exc:
            return {"ok": False, "error": str(exc), "kind": exc.kind}
        except Exception as exc:
            return {"ok": False, "error": readable(exc), "kind": "runtime"}

    def op_setup(self, msg: dict[str, Any]) -> dict[str, Any]:
        from harness.backends import BackendError, PrepareError, check_precision, check_threads
        from harness.backends.base import readable

        precision = msg.get("precision", "f32")
        threads = msg.get("threads", self.threads)
        try:
            check_precision(precision)
            check_threads(threads)
        except BackendError as exc:
            raise Failure(str(exc), "protocol") from exc
        self.prepared = None
        gc.collect()  # the previous model's memory goes before the next one is built
        ok, why = self.backend.availability()
        if not ok:
            raise Failure(why, "availability")
        model, example = _build(msg.get("spec"), msg.get("model"), msg.get("seed", 0))
        # A user's model is profiled here, not in the coordinator: its code only ever runs in
        # a worker, so a model that crashes or hangs costs one cell, never the session.
        profile = _profile(model, example, msg.get("model")) if msg.get("profile") else None
        try:
            prepared = self.backend.prepare(
                model, example, precision=precision, threads=threads,
                ir_key=msg.get("ir_key") or "", cache_dir=msg.get("cache_dir"),
            )
        except PrepareError as exc:
            raise Failure(str(exc), exc.kind) from exc
        except Exception as exc:
            raise Failure(readable(exc), "conversion") from exc
        self.prepared = prepared
        self.built = (model, example)
        info = {
            **prepared.info,
            "first_ms": prepared.first_ms,
            "backend": self.backend.spec.text,
            "env_threads": {k: os.environ.get(k) for k in THREAD_ENV},
        }
        return {"info": info, "available": True, "profile": profile}

    def _need_prepared(self) -> Any:
        if self.prepared is None:
            raise Failure("no model is set up; send setup first", "protocol")
        return self.prepared

    def op_time(self, msg: dict[str, Any]) -> dict[str, Any]:
        n = msg.get("n")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise Failure(f"n={n!r}: expected a positive integer", "protocol")
        return {"samples_ms": self._need_prepared().time_block(n)}

    def op_output(self, msg: dict[str, Any]) -> dict[str, Any]:
        path = msg.get("path")
        if not isinstance(path, str) or not path.endswith(".npy"):
            raise Failure(f"path={path!r}: expected a .npy file path", "protocol")
        out = np.asarray(self._need_prepared().output(), dtype=np.float32)
        np.save(path, out, allow_pickle=False)
        return {"finite": bool(np.isfinite(out).all()), "shape": list(out.shape)}

    def op_reference(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The model's output in float64 on the same input, for judging parity.

        Why: deep stacks amplify rounding, so PyTorch's own f32 output can sit 1e-3 or more
        away from the exact answer. Comparing both backends with this reference tells a
        conditioning problem of the model from a real disagreement of a backend.
        """
        import copy

        import torch

        path = msg.get("path")
        if not isinstance(path, str) or not path.endswith(".npy"):
            raise Failure(f"path={path!r}: expected a .npy file path", "protocol")
        if self.built is None:
            raise Failure("no model is set up; send setup first", "protocol")
        model, example = self.built
        with torch.inference_mode():
            out = copy.deepcopy(model).double()(example.double())
        while isinstance(out, (tuple, list, dict)):
            out = next(iter(out.values())) if isinstance(out, dict) else out[0]
        np.save(path, out.detach().cpu().numpy().astype(np.float64), allow_pickle=False)
        return {"shape": list(out.shape)}

    def op_layers(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Per-layer times for ``accelbench explain`` / ``run --layers``: a pass of its own,
        after the timed blocks, so profiling never touches a reported latency.

        Answers ``{"layers": rows (Prepared.layer_times), "units": the model's units and data
        flow (harness.layers.units), "whole_ms": the whole-model median of n plain inferences
        taken just before, for the coverage}``.
        """
        from statistics import median

        from harness.layers.units import trace_units

        n = msg.get("n")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise Failure(f"n={n!r}: expected a positive integer", "protocol")
        prepared = self._need_prepared()
        assert self.built is not None
        whole_ms = median(prepared.time_block(n))
        try:
            layers = prepared.layer_times(n)
        except NotImplementedError as exc:
            raise Failure(f"{self.backend.spec.text}: {exc}", "runtime") from exc
        model, example = self.built
        params = next(iter(model.parameters()), None)
        x = example.to(params.device) if params is not None else example
        units = trace_units(model, x, 1)["units"]
        for unit in units:
            unit.pop("ms", None)
        return {"layers": layers, "units": units, "whole_ms": whole_ms, "n": n}

    def op_stats(self, msg: dict[str, Any]) -> dict[str, Any]:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB, macOS bytes
        return {"max_rss_bytes": rss * scale, "pid": os.getpid()}


def _build(spec: Any, model_ref: Any, seed: Any) -> tuple[Any, Any]:
    import archs
    from archs.custom import load_model
    from harness.backends.base import readable

    if not isinstance(seed, int) or isinstance(seed, bool):
        raise Failure(f"seed={seed!r}: expected an integer", "protocol")
    try:
        if model_ref:
            return load_model(model_ref, seed=seed)
        if not spec:
            raise Failure("setup needs a spec or a model", "protocol")
        return archs.build(spec, seed=seed)
    except Failure:
        raise
    except archs.SpecError as exc:
        raise Failure(str(exc), "build") from exc
    except Exception as exc:
        raise Failure(f"building {model_ref or spec} failed: {readable(exc)}", "build") from exc


def _profile(model: Any, example: Any, name: Any) -> dict[str, Any]:
    from archs.profiling import profile_module
    from harness.backends.base import readable

    try:
        return profile_module(model, example, str(name)).as_json()
    except Exception as exc:  # a profile is advisory; the timing can still go ahead
        return {"error": f"profiling failed: {readable(exc)}"}


def _answer(proto: TextIO, answer: dict[str, Any]) -> None:
    proto.write(json.dumps(answer, default=str) + "\n")
    proto.flush()


def main(argv: list[str] | None = None) -> int:
    proto = _claim_protocol_fd()
    faulthandler.enable()  # a segfault leaves a Python traceback in stderr for the client
    parser = argparse.ArgumentParser(prog="python -m harness.run.worker")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        worker = Worker(args.backend, args.threads)
    except Failure as exc:
        print(f"accelbench worker: {exc}", file=sys.stderr)
        return 2
    while True:
        line = sys.stdin.readline()
        if not line:
            return 0  # the coordinator went away
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except ValueError as exc:
            _answer(proto, {"ok": False, "error": f"not JSON: {exc}", "kind": "protocol"})
            continue
        if isinstance(msg, dict) and msg.get("op") == "quit":
            _answer(proto, {"ok": True})
            return 0
        _answer(proto, worker.handle(msg))


if __name__ == "__main__":
    sys.exit(main())
