"""What a cell runs: a built-in spec or a user's own model, seen the same way by the runner.

Why a separate notion from the spec: ``--model path.py:factory`` models have no spec, yet they
get everything the built-in families get (FLOPs from the same profiler, IR caching keyed by the
file's content, the same workers). The coordinator only ever talks to a ``Workload``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import MODEL_PREFIX


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

        from . import __version__

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

    def profile_meta(self) -> dict[str, Any]:
        """FLOPs, params and working set joined into every cell of this workload."""
        return dict(_profile_meta(self.text))


@functools.lru_cache(maxsize=256)
def _profile_meta(text: str) -> tuple[tuple[str, Any], ...]:
    from archs.profiling import profile, profile_module

    from .counters import model_counters
    from .machine import fingerprint

    try:
        if text.startswith(MODEL_PREFIX):
            from archs.custom import load_model

            module, example = load_model(text[len(MODEL_PREFIX):])
            prof = profile_module(module, example, text)
        else:
            prof = profile(text)
    except Exception as exc:  # the cell's own setup reports build errors with their cause
        return (("profile_error", f"{type(exc).__name__}: {exc}"),)
    meta: dict[str, Any] = {
        "flops": prof.flops,
        "macs": prof.macs,
        "params": prof.params,
        "weight_bytes": prof.weight_bytes,
        "activation_bytes": prof.activation_bytes,
        "peak_working_set_bytes": prof.peak_working_set_bytes,
        "input_shape": list(prof.input_shape),
    }
    try:
        meta["counters"] = model_counters(prof, fingerprint()["caches"])
    except Exception as exc:  # noqa: BLE001 - counters are advisory; say why they are absent
        meta["counters"] = {"source": "model", "error": f"{type(exc).__name__}: {exc}"}
    return tuple(meta.items())
