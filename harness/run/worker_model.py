"""What a worker builds: the model of a cell, from a spec or a user's file, and its profile.

Why only in a worker: a model that crashes, hangs or exhausts memory while it is built or
profiled costs its own cells, never the session (``harness.run.worker``).
"""

from __future__ import annotations

from typing import Any

from harness.run.protocol import BUILD, PROTOCOL, Failure


def build_model(spec: Any, model_ref: Any, seed: Any) -> tuple[Any, Any]:
    """``(model, example input)`` of a built-in spec or a user's ``path.py:factory``; a bad
    seed, spec or model answers as a ``Failure`` of kind ``protocol`` or ``build``."""
    import archs
    from archs.custom import load_model
    from harness.backends.base import readable

    if not isinstance(seed, int) or isinstance(seed, bool):
        raise Failure(f"seed={seed!r}: expected an integer", PROTOCOL)
    try:
        if model_ref:
            return load_model(model_ref, seed=seed)
        if not spec:
            raise Failure("setup needs a spec or a model", PROTOCOL)
        return archs.build(spec, seed=seed)
    except Failure:
        raise
    except archs.SpecError as exc:
        raise Failure(str(exc), BUILD) from exc
    except Exception as exc:
        raise Failure(f"building {model_ref or spec} failed: {readable(exc)}", BUILD) from exc


def profile_model(model: Any, example: Any, name: Any) -> dict[str, Any]:
    """FLOPs, parameters, working set and layers (``archs.profiling``), or ``{"error"}``."""
    from archs.profiling import profile_module
    from harness.backends.base import readable

    if hasattr(example, "clone"):  # a pass on real tensors (no meta kernel) may write into it
        example = example.clone()
    try:
        return profile_module(model, example, str(name)).as_json()
    except Exception as exc:  # a profile is advisory; the timing can still go ahead
        return {"error": f"profiling failed: {readable(exc)}"}
