"""The worker process: one backend, answering JSON-line requests from the coordinator.

Why a process per backend: a crash (segfault in a plugin, the OOM killer) loses one cell, not
the session; and PyTorch's OpenMP pool and OpenVINO's TBB pool never compete inside one process.
The thread environment (``OMP_NUM_THREADS``...) is set by ``WorkerClient`` before this process
starts, i.e. before any library reads it.

Why the protocol has its own file descriptor: C libraries print to fd 1 (OpenVINO plugins,
oneDNN verbose, compilers invoked by inductor). The protocol writes to a private duplicate of
the original stdout and fd 1 is pointed at stderr, so nothing but answers reaches the pipe.

Requests and answers are documented in ``harness.run.protocol``. Libraries are imported only
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
import time
from typing import Any, TextIO

import numpy as np

from harness.measure.results import LATENCY, SCENARIOS
from harness.run import allocator
from harness.run.protocol import (
    AVAILABILITY,
    CONVERSION,
    PROTOCOL,
    RUNTIME,
    THREAD_ENV,
    Failure,
)
from harness.run.worker_model import build_model, profile_model

# How many sub-blocks a capped block is cut into: the cap is checked between them, so a block
# overruns it by at most one sub-block (plus one inference when a single one is slower).
CAP_CHUNKS = 8


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
            raise Failure(str(exc), PROTOCOL) from exc
        self.threads = threads
        self.prepared: Any = None
        self.built: tuple[Any, Any] | None = None

    def handle(self, msg: Any) -> dict[str, Any]:
        from harness.backends.base import readable

        try:
            if not isinstance(msg, dict):
                raise Failure("a request must be a JSON object", PROTOCOL)
            handler = getattr(self, f"op_{msg.get('op')}", None)
            if handler is None:
                raise Failure(f"unknown op {msg.get('op')!r}", PROTOCOL)
            return {"ok": True, **handler(msg)}
        except Failure as exc:
            return {"ok": False, "error": str(exc), "kind": exc.kind}
        except Exception as exc:
            return {"ok": False, "error": readable(exc), "kind": RUNTIME}

    def op_setup(self, msg: dict[str, Any]) -> dict[str, Any]:
        from harness.backends import (
            BackendError,
            PrepareContext,
            PrepareError,
            check_precision,
            check_threads,
        )
        from harness.backends.base import readable

        precision = msg.get("precision", "f32")
        threads = msg.get("threads", self.threads)
        scenario = msg.get("scenario", LATENCY)
        try:
            check_precision(precision)
            check_threads(threads)
            if scenario not in SCENARIOS:
                raise BackendError(f"scenario {scenario!r}: valid values are {', '.join(SCENARIOS)}")
        except BackendError as exc:
            raise Failure(str(exc), PROTOCOL) from exc
        t_setup = time.perf_counter()
        if self.prepared is not None or self.built is not None:
            # the protocol allows a second setup: the previous model's memory goes before the
            # next one is built. The harness sets each worker up once, so this never runs there
            # (run unconditionally, the collection cost every fresh worker 0.11 s for nothing:
            # stage timers, Zen 4 VM, 2026-12-07)
            self.prepared, self.built = None, None
            gc.collect()
        ok, why = self.backend.availability()
        if ok:
            ok, why = self.backend.supports(precision)
        if not ok:
            raise Failure(why, AVAILABILITY)
        model, example = build_model(msg.get("spec"), msg.get("model"), msg.get("seed", 0))
        built_s = time.perf_counter() - t_setup
        # Every model is profiled here, never in the coordinator: its code only ever runs in
        # a worker, so a model that crashes or hangs costs one cell, never the session.
        profile = (profile_model(model, example, msg.get("model") or msg.get("spec"))
                   if msg.get("profile") else None)
        if msg.get("spec") and profile and "error" not in profile:
            import archs  # a spec's full parameter values: reports group by them (canonical
            # specs leave defaults out, so `plain:res=128` says nothing of its depth)

            profile["resolved"] = dict(archs.resolve(msg["spec"]))
        try:
            ctx = PrepareContext(precision, threads, cache_key=msg.get("ir_key") or "",
                                 cache_dir=msg.get("cache_dir"), scenario=scenario,
                                 first_pass=bool(msg.get("first_pass", True)),
                                 known_artefact_key=_text_or_none(msg.get("known_artefact_key")))
            t_prepare = time.perf_counter()
            prepared = self.backend.prepare(model, example, ctx)
            prepare_s = time.perf_counter() - t_prepare
        except PrepareError as exc:
            raise Failure(str(exc), exc.kind) from exc
        except Exception as exc:
            raise Failure(readable(exc), CONVERSION) from exc
        self.prepared = prepared
        self.built = (model, example)
        # the counters' layer sizes: this setup's profile, else the one the pair's first side
        # made (profiling again costs a second per model)
        known = msg.get("known_profile")
        self._open_counters(msg, profile if profile is not None or not isinstance(known, dict)
                            else known)
        self.faults, self.faulted_inferences = 0, 0
        batch = int(example.shape[0]) if getattr(example, "ndim", 0) else 1
        info = {
            # what one sample finished: one inference of the example input unless the backend
            # says otherwise (OpenVINO's throughput queue: a group of requests)
            "images_per_sample": batch, "batch": batch, "scenario": scenario,
            **prepared.info,
            "allocator": allocator.describe(),
            "first_ms": prepared.first_ms,
            "backend": self.backend.spec.text,
            "env_threads": {k: os.environ.get(k) for k in THREAD_ENV},
            # where this setup's time went: build (the backend's availability check, building
            # the model; freeing a previous one on a second setup), the backend's prepare (trace or cached
            # IR, compile, first inference), and in all (a first pass's profile and counters too)
            "setup_s": {"build": round(built_s, 4), "prepare": round(prepare_s, 4),
                        "total": round(time.perf_counter() - t_setup, 4)},
        }
        return {"info": info, "available": True, "profile": profile}

    def _need_prepared(self) -> Any:
        if self.prepared is None:
            raise Failure("no model is set up; send setup first", PROTOCOL)
        return self.prepared

    def op_time(self, msg: dict[str, Any]) -> dict[str, Any]:
        n = msg.get("n")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise Failure(f"n={n!r}: expected a positive integer", PROTOCOL)
        cap = msg.get("max_s")
        if cap is not None and (not isinstance(cap, (int, float)) or isinstance(cap, bool)
                                or not cap > 0):
            raise Failure(f"max_s={cap!r}: expected a positive number of seconds", PROTOCOL)
        prepared = self._need_prepared()
        counted = msg.get("count", True)
        counting = self.counting if counted else None
        samples: list[float] = []
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        if counting is not None:
            counting.resume()
        try:
            samples = prepared.time_block(n) if cap is None else self._capped_block(n, float(cap))
        finally:
            if counting is not None:
                counting.pause(len(samples))
            if counted:  # the timed blocks' page faults: see harness.run.allocator
                self.faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
                self.faulted_inferences += len(samples)
        return {"samples_ms": samples}

    def _capped_block(self, n: int, cap_s: float) -> list[float]:
        """Up to ``n`` inferences, stopping once ``cap_s`` has passed.

        Why a cap: blocks are sized from the warm-up; when the machine slows down mid-session,
        uncapped blocks stretch to seconds, a cell gets one or two of them and the two backends
        never alternate. Capped blocks keep the A B, B A rhythm whatever the load.
        """
        prepared = self._need_prepared()
        chunk = max(1, -(-n // CAP_CHUNKS))
        samples: list[float] = []
        end = time.perf_counter() + cap_s
        while len(samples) < n:
            samples.extend(prepared.time_block(min(chunk, n - len(samples))))
            if time.perf_counter() >= end:
                break
        return samples

    # -- counters (harness.counters): a window around the counted timed blocks -------------

    counting: Any = None
    # minor page faults and inferences of the counted timed blocks since the last setup (ints:
    # immutable class defaults, so a Worker made without __init__, as tests do, still counts)
    faults: int = 0
    faulted_inferences: int = 0

    def _open_counters(self, msg: dict[str, Any], profile: Any) -> None:
        """Start the session's counter source after setup, so only timed work is counted."""
        from harness.counters import CellCounters, CountContext
        from harness.machine.fingerprint import local_caches

        self.counting = None
        choice = msg.get("counters") or "off"
        if choice == "off":
            return
        built, name = self.built, msg.get("spec") or msg.get("model")

        def cell_profile() -> Any:
            if profile and "error" not in profile:
                return profile
            assert built is not None
            got = profile_model(built[0], built[1], name)
            if "error" in got:
                raise RuntimeError(got["error"])
            return got

        caches, geometry = local_caches()
        setup = {k: v for k, v in msg.items() if k not in ("profile", "counters", "known_profile")}
        ctx = CountContext(
            backend=self.backend.spec.text, precision=msg.get("precision", "f32"),
            threads=msg.get("threads", self.threads), spec=msg.get("spec"),
            model_ref=msg.get("model"), seed=msg.get("seed", 0), caches=caches,
            geometry=geometry, profile=cell_profile, cache_dir=msg.get("cache_dir"),
            pid=os.getpid(), setup=setup, first_ms=getattr(self.prepared, "first_ms", None))
        self.counting = CellCounters(choice, ctx)

    def op_counters(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Stop the window and return its figures (``None`` when counters are off)."""
        counting, self.counting = self.counting, None
        return {"counters": counting.finish() if counting is not None else None}

    def op_output(self, msg: dict[str, Any]) -> dict[str, Any]:
        path = msg.get("path")
        if not isinstance(path, str) or not path.endswith(".npy"):
            raise Failure(f"path={path!r}: expected a .npy file path", PROTOCOL)
        from harness.measure import parity

        out = np.asarray(self._need_prepared().output(), dtype=np.float32)
        np.save(path, out, allow_pickle=False)
        return {"finite": parity.finite(out), "shape": list(out.shape)}

    def op_reference(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The model's float64 output, from the backend (``Backend.reference``), for parity."""
        path = msg.get("path")
        if not isinstance(path, str) or not path.endswith(".npy"):
            raise Failure(f"path={path!r}: expected a .npy file path", PROTOCOL)
        if self.built is None:
            raise Failure("no model is set up; send setup first", PROTOCOL)
        try:
            out = np.asarray(self.backend.reference(*self.built), dtype=np.float64)
        except NotImplementedError as exc:
            raise Failure(str(exc), AVAILABILITY) from exc
        np.save(path, out, allow_pickle=False)
        return {"shape": list(out.shape)}

    def op_quantized(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The parity verdict of a quantized cell (``harness.measure.parity.judge_quantized``): its
        outputs against the f32 model's on a seeded input set. The f32 model is the PyTorch
        module itself, run here in eager float32: every workload is one, whatever the backend."""
        import torch

        from harness.measure import parity

        prepared = self._need_prepared()
        if self.built is None:
            raise Failure("no model is set up; send setup first", PROTOCOL)
        model, example = self.built
        n = msg.get("n", parity.QUANT_INPUTS)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise Failure(f"n={n!r}: expected a positive integer", PROTOCOL)
        rng = np.random.default_rng(parity.QUANT_SEED)
        shape = tuple(example.shape)
        inputs = [rng.standard_normal(shape, dtype=np.float32) for _ in range(n)]
        try:
            outputs = [np.asarray(o, dtype=np.float32) for o in prepared.outputs_for(inputs)]
        except NotImplementedError as exc:
            raise Failure(str(exc), AVAILABILITY) from exc
        from harness.backends.torch_backend import first_tensor

        reference = []
        with torch.inference_mode():
            for x in inputs:
                out = first_tensor(model(torch.from_numpy(x)))
                reference.append(out.detach().float().cpu().numpy().copy())
        return {"verdict": parity.judge_quantized(reference, outputs)}

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
        n = self.faulted_inferences
        facts = self.prepared.throughput_facts() if self.prepared is not None else {}
        return {"max_rss_bytes": rss * scale, "pid": os.getpid(),
                "minor_faults_per_inference": self.faults / n if n else None,
                **({"throughput": facts} if facts else {})}


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


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
            _answer(proto, {"ok": False, "error": f"not JSON: {exc}", "kind": PROTOCOL})
            continue
        if isinstance(msg, dict) and msg.get("op") == "quit":
            _answer(proto, {"ok": True})
            return 0
        _answer(proto, worker.handle(msg))


if __name__ == "__main__":
    sys.exit(main())
