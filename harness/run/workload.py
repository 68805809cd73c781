"""What a cell runs: a built-in spec or a user's own model, seen the same way by the runner.

Why a separate notion from the spec: ``--model path.py:factory`` models have no spec, yet they
get everything the built-in families get (FLOPs from the same profiler, IR caching keyed by
the built model, the same workers). The coordinator only ever talks to a ``Workload``.

No model is ever built by the coordinator: building and profiling happen in a worker process
(for specs and user files alike), so a model that crashes, hangs or exhausts memory fails its
own cells only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.run.workload_text import MODEL_PREFIX

PROFILE_KEYS = ("flops", "macs", "params", "weight_bytes", "activation_bytes",
                "peak_working_set_bytes", "input_shape", "resolved", "nonzero_params")


@dataclass(frozen=True)
class Workload:
    text: str  # canonical spec, or "@/absolute/path.py:factory" (where to find the file)
    name: str = ""  # what its cells are called; the spec, or see ``model_name``

    @classmethod
    def from_text(cls, text: str) -> Workload:
        ref = text[len(MODEL_PREFIX):] if text.startswith(MODEL_PREFIX) else None
        return cls(text, model_name(ref) if ref else text)

    @property
    def model_ref(self) -> str | None:
        return self.text[len(MODEL_PREFIX):] if self.text.startswith(MODEL_PREFIX) else None

    def setup_fields(self) -> dict[str, Any]:
        """The part of a worker's setup request that says what to build."""
        ref = self.model_ref
        return {"spec": None, "model": ref} if ref else {"spec": self.text, "model": None}

    def ir_key(self, seed: int) -> str:
        """A label for cache entries made for this workload (the spec or model reference and
        seed), for a person browsing the cache. Not the key: a name says nothing of what a
        model file's imports build today, so the worker keys every artefact by the built
        model itself (``harness.backends.artefacts.artefact_key``)."""
        return f"{self.text}|seed={seed}"

    def profile_meta(self, worker_profile: dict[str, Any] | None = None) -> dict[str, Any]:
        """FLOPs, params, working set and modelled cache traffic joined into every cell."""
        return meta_from_profile(worker_profile or {"error": "no worker returned a profile"})



def model_name(ref: str) -> str:
    """A user model's cell name: ``@net.py#1a2b3c4d:make``, the file's name and the first
    hex digits of its content's SHA-256, never its absolute path.

    Why: the same model file on another machine (another checkout, another home folder) must
    give the same cell, or ``compare`` cannot join them; and an edited file is another model,
    so it gets another name (a resumed session re-times it instead of mixing the two). What
    the file imports is not part of the name; the IR cache is keyed by the built model itself
    (``harness.backends.artefacts``). Stores written before keep their path names: a name is
    only text to the store and the reports.
    """
    path, _, factory = ref.rpartition(":")
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:8]
    except OSError:
        return MODEL_PREFIX + ref  # no file to read (yet): the worker will say so
    return f"{MODEL_PREFIX}{Path(path).name}#{digest}:{factory}"


def meta_from_profile(prof: dict[str, Any]) -> dict[str, Any]:
    """Profile figures for the cell's meta; counters come from the worker (harness.counters)."""
    if "error" in prof:
        return {"profile_error": prof["error"]}
    return {k: prof.get(k) for k in PROFILE_KEYS}
