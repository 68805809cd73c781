"""The OpenVINO IR of a model: from the cache when it holds it, else traced and converted.

Why a module of its own: the IR is what the model is for OpenVINO, keyed by what the model is
(``harness.backends.artefacts``), and getting it is one job apart from compiling and reading
back settings (``harness.backends.openvino_backend``). The trace is both what OpenVINO converts
on a cache miss and what the key reads; a later process of the same cell reuses its first
process's key when the entry is there (``PrepareContext.known_artefact_key``) and traces only
on a miss.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

from harness.backends import artefacts, ircache
from harness.backends.base import PrepareContext


def load_ir(model: Any, x: Any, ctx: PrepareContext) -> tuple[Any, dict[str, Any]]:
    """``(ov.Model, info)`` for ``model`` on the static input ``x``; ``info`` is
    ``ircache.load_or_convert``'s (with ``trace_s``, ``artefact_key`` and
    ``artefact_key_reused``). Raises whatever tracing, converting or reading raised."""
    import openvino as ov

    @functools.cache
    def trace() -> Any:  # what the key reads and what a miss converts: traced once
        return artefacts.trace(model, x)

    def convert() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return ov.convert_model(trace(), example_input=x, input=[tuple(x.shape)])

    return ircache.load_or_convert(
        ctx.cache_dir, lambda: artefacts.artefact_key("openvino-ir", model, x, traced=trace()),
        convert, label=ctx.cache_key, known=ctx.known_artefact_key)
