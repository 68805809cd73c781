"""Architecture generators: pure PyTorch, no timing.

``build(spec) -> (module, example_input)``, ``parse(spec)``, ``list_archs()``, ``profile(spec)``.
"""

from .build import build
from .registry import FAMILIES, Family, family, list_archs, parse, register, resolve
from .spec import Param, Spec, SpecError, format_spec


def profile(spec, **kwargs):
    """FLOPs, params and working set of ``spec`` (see ``archs.profiling``)."""
    from .profiling import profile as _profile

    return _profile(spec, **kwargs)


__all__ = [
    "FAMILIES", "Family", "Param", "Spec", "SpecError", "build", "family", "format_spec",
    "list_archs", "parse", "profile", "register", "resolve",
]
