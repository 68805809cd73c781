"""Architecture generators: pure PyTorch, no timing.

``build(spec) -> (module, example_input)``, ``parse(spec)``, ``list_archs()``, ``profile(spec)``.

The spec grammar (``Spec``, ``SpecError``, ``format_spec``) is imported eagerly and needs no
torch; everything that builds or registers modules is imported on first use, so commands that
only read a store (``accelbench report``, ``sessions``, ``merge``) do not pay torch's import.
"""

from __future__ import annotations

import importlib
from typing import Any

from .spec import Param, Spec, SpecError, format_spec

_LAZY = {
    "build": ".builder",
    "Family": ".registry", "register": ".registry",
    # Look-ups go through the catalogue, which imports every built-in family first.
    "FAMILIES": ".families", "family": ".families", "list_archs": ".families",
    "parse": ".families", "resolve": ".families",
}


def profile(spec, **kwargs):
    """FLOPs, params and working set of ``spec`` (see ``archs.profiling``)."""
    from .profiling import profile as _profile

    return _profile(spec, **kwargs)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'archs' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "FAMILIES", "Family", "Param", "Spec", "SpecError", "build", "family", "format_spec",
    "list_archs", "parse", "profile", "register", "resolve",
]
