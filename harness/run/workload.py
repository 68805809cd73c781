"""What a cell runs: a built-in spec or a user's own model, seen the same way by the runner.

Why a separate notion from the spec: ``--model path.py:factory`` models have no spec, yet they
get everything the built-in families get (FLOPs from the same profiler, IR caching keyed by the
file's content, the same workers). The coordinator only ever talks to a ``Workload``.

No model is ever built by the coordinator: building and profiling happen in a worker process
(for specs and user files alike), so a model that crashes, hangs or exhausts memory fails its
own cells only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.run.config import MODEL_PREFIX

PROFILE_KEYS = ("flops", "macs", "params", "weight_bytes", "activation_bytes",
                "peak_working_set_bytes", "input_shape", "resolved", "nonzero_params")


@dataclass(frozen=True)
class Workload:
    text: str  # canonical spec, or "@path.py:factory"

    @classmethod
    def from_text(cls, text: str) -> Workload:
        return cls(text)

    @property
    def model_ref(self) -> str | None:
        return self.text[len(MODEL_PREFIX):] if self.text.startswith(MODEL_PREFIX) else None

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
        return meta_from_profile(worker_profile or {"error": "no worker returned a profile"})



def meta_from_profile(prof: dict[str, Any]) -> dict[str, Any]:
    """Profile figures for the cell's meta; counters come from the worker (harness.counters)."""
    if "error" in prof:
        return {"profile_error": prof["error"]}
    return {k: prof.get(k) for k in PROFILE_KEYS}
