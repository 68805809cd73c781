"""What a cell runs: a built-in spec or a user's own model, seen the same way by the runner.

Why a separate notion from the spec: ``--model path.py:factory`` models have no spec, yet they
get everything the built-in families get (FLOPs from the same profiler, IR caching keyed by the
file's content, the same workers). The coordinator only ever talks to a ``Workload``.

A user's model is never imported by the coordinator: building and profiling it happen in a
worker process, so a model that crashes, hangs or exhausts memory fails its own cells only.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import MODEL_PREFIX

PROFILE_KEYS = ("flops", "macs", "params", "weight_bytes", "activation_bytes",
                "peak_working_set_bytes", "input_shape")


@dataclass(frozen=True)
class Workload:
    text: str  # canonical spec, or "@path.py:factory"

    @classmethod
    def from_text(cls, text: str) -> Workload:
        return cls(text)

    @property
    def model_ref(self) -> str | None:
        return self.text[len(MODEL_PREFIX):] if self.text.startswith(MODEL_PREFIX) else None

    @property
    def profiled_in_worker(self) -> bool:
        return self.model_ref is not None

    def setup_fields(self) -> dict[str, Any]:
        """The part of a worker's setup request that says what to build."""
        ref = self.model_ref
        return {"spec": None, "model": ref} if ref else {"spec": self.text, "model": None}

    def ir_key(self, seed: int) -> str:
        """Identity of the converted model: a spec and seed, or a model file's content.

        Library versions are part of the key so an upgrade never reuses a stale IR.
        """
        import torch

        from harness import __version__

        ref = self.model_ref
        if ref:
            path, _, factory = ref.rpartition(":")
            try:
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
            except OSError:
                digest = "missing"
            what = f"model={digest}:{factory}"
        else:
            what = f"spec={self.text}"
        return f"{what}|seed={seed}|torch={torch.__version__}|accelbench={__version__}"

    def profile_meta(self, worker_profile: dict[str, Any] | None = None) -> dict[str, Any]:
        """FLOPs, params, working set and modelled cache traffic joined into every cell."""
        if self.profiled_in_worker:
            prof = worker_profile or {"error": "no worker returned a profile"}
        else:
            prof = _spec_profile(self.text)
        meta = meta_from_profile(prof)
        if not self.profiled_in_worker:  # reports group by these (canonical specs omit defaults)
            values = _resolved(self.text)
            meta["resolved"] = dict(values) if values is not None else None
        return meta


@functools.lru_cache(maxsize=256)
def _spec_profile(text: str) -> dict[str, Any]:
    from archs.profiling import profile

    try:
        return profile(text).as_json()
    except Exception as exc:  # the cell's own setup reports build errors with their cause
        return {"error": f"profiling failed: {type(exc).__name__}: {exc}"}


@functools.lru_cache(maxsize=256)
def _resolved(text: str) -> tuple[tuple[str, Any], ...] | None:
    import archs

    try:
        return tuple(archs.resolve(text).items())
    except Exception:  # the cell's own setup reports a bad spec with its cause
        return None


def meta_from_profile(prof: dict[str, Any]) -> dict[str, Any]:
    if "error" in prof:
        return {"profile_error": prof["error"]}
    from harness.counters import model_counters
    from harness.machine import fingerprint

    meta = {k: prof.get(k) for k in PROFILE_KEYS}
    try:
        counters = model_counters(prof, fingerprint()["caches"])
        counters.pop("layers", None)  # per-layer detail belongs to `accelbench profile`
        meta["counters"] = counters
    except Exception as exc:  # counters are advisory; say why they are absent
        meta["counters"] = {"source": "model", "error": f"{type(exc).__name__}: {exc}"}
    return meta
