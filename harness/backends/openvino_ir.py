"""The OpenVINO IR of a model: from the cache when it holds it, else traced and converted.

Why a module of its own: the IR is what the model is for OpenVINO, keyed by what the model is
(``harness.backends.artefacts``), and getting it is one job apart from compiling and reading
back settings (``harness.backends.openvino_backend``). The trace is both what OpenVINO converts
on a cache miss and what the key reads; a later process of the same cell reuses its first
process's key when the entry is there (``PrepareContext.known_artefact_key``) and traces only
on a miss.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from harness.backends import artefacts, ircache
from harness.backends.base import PrepareContext


def load_ir(model: Any, x: Any, ctx: PrepareContext) -> tuple[Any, dict[str, Any]]:
    """``(ov.Model, info)`` for ``model`` on the static input ``x``; ``info`` is
    ``ircache.load_or_convert``'s plus ``trace_s``, ``artefact_key`` and
    ``artefact_key_reused``. Raises whatever tracing, converting or reading raised."""
    import openvino as ov

    traced: Any = None

    def trace() -> Any:
        nonlocal traced
        traced = artefacts.trace(model, x) if traced is None else traced
        return traced

    def keyed() -> str:
        trace()
        return artefacts.artefact_key("openvino-ir", model, x, traced=traced) \
            if ctx.cache_dir else ""

    def convert() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return ov.convert_model(trace(), example_input=x, input=[tuple(x.shape)])

    t0 = time.perf_counter()
    key, reused = artefacts.known_or_keyed(
        ctx.known_artefact_key, lambda k: ircache.has_ir(ctx.cache_dir, k), keyed)
    trace_s = time.perf_counter() - t0
    om, info = ircache.load_or_convert(ctx.cache_dir, key, convert, label=ctx.cache_key)
    info.update(trace_s=trace_s, artefact_key=key or None, artefact_key_reused=reused)
    return om, info
