"""What the coordinator and a worker say to each other: op names, failure kinds, fields.

One JSON object per line each way; every request gets exactly one answer,
``{"ok": true, ...}`` or ``{"ok": false, "error": message, "kind": kind}``. Why one module: the
worker answers, the client asks and the backends raise with these names; kept in three places
they drifted. New ops are additive: a worker answers an unknown op with kind ``protocol``.

- ``setup`` ``{"spec", "model" (path.py:factory or null), "seed", "precision", "threads",
  "ir_key", "cache_dir", "profile": bool}`` -> ``{"info": {...}, "available": true,
  "profile": {...} or null}``; a backend that cannot run here answers kind ``availability``.
- ``time`` ``{"n": N, "max_s": seconds or absent}`` -> ``{"samples_ms": [...]}``: up to N
  back-to-back inferences, fewer when ``max_s`` ran out (the block's time cap).
- ``output`` ``{"path": "x.npy"}`` -> ``{"finite": bool, "shape": [...]}`` (float32, no pickle)
- ``reference`` ``{"path": "x.npy"}`` -> ``{"shape": [...]}``: the float64 output, from a
  backend that offers one (``Backend.reference``); others answer kind ``availability``.
- ``quantized`` ``{"n": inputs}`` -> ``{"verdict": {...}}``: a quantized cell's outputs on a
  seeded input set against the f32 PyTorch model's (``harness.measure.parity.judge_quantized``).
- ``stats`` -> ``{"max_rss_bytes", "pid"}``;  ``quit`` -> ``{}``
- ``counters`` -> ``{"counters": {...} or null}``: stops the counter window that ``setup``'s
  ``"counters"`` choice opened around the timed blocks (``time``'s ``"count": false`` leaves a
  block, e.g. the warm-up, out of it).
- ``layers`` ``{"n": N}`` -> ``{"layers": per-layer rows, "units": the model's units and data
  flow, "whole_ms", "n"}`` (``accelbench explain``, ``run --layers``): its own pass after the
  timed blocks, so it never changes a reported latency.
"""

from __future__ import annotations

SETUP, TIME, OUTPUT, REFERENCE, STATS, QUIT = "setup", "time", "output", "reference", "stats", "quit"
COUNTERS, LAYERS, QUANTIZED = "counters", "layers", "quantized"

# Failure kinds: at which stage a request failed. The coordinator maps them to a cell's status
# (``availability`` -> skipped, the rest -> failed) and its reason.
AVAILABILITY, BUILD, CONVERSION, RUNTIME, PROTOCOL = (
    "availability", "build", "conversion", "runtime", "protocol")
KINDS = (AVAILABILITY, BUILD, CONVERSION, RUNTIME, PROTOCOL)

# Set by the client before the worker starts, i.e. before any library reads them.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class Failure(Exception):
    """An expected failure, answered as ``{"ok": false, "error", "kind"}``."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind
