"""The catalogue of built-in families: each one imported (so its ``@register`` ran), looked up by name.

Why a module of its own: the registry (``archs.registry``) must not import the families that
import it. Importing this module imports every built-in family module once; the look-ups below
can then trust ``FAMILIES`` to be complete. A new family module is added to the import line.
"""

from __future__ import annotations

from typing import Any

from . import darts, kernel, mlp, mobilenetv2, overlap, patterns, resnet  # noqa: F401  (registers each family)
from .registry import FAMILIES, Family
from .spec import Spec, SpecError, check_values, fill_defaults, make_spec, split_spec


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise SpecError(f"unknown family {name!r}; valid: {', '.join(sorted(FAMILIES))}") from None


def parse(text: str | Spec) -> Spec:
    """Parse spec text strictly; a Spec passes through unchanged."""
    if isinstance(text, Spec):
        return text
    name, pairs = split_spec(text)
    fam = family(name)
    return make_spec(fam.name, fam.params, pairs)


def resolve(spec: str | Spec) -> dict[str, Any]:
    """All parameter values of a spec: given ones, defaults, and derived ones."""
    spec = parse(spec)
    fam = family(spec.family)
    values = fill_defaults(fam.params, spec)
    if fam.resolve is not None:
        values = fam.resolve(dict(values))
    check_values(fam.params, values)
    return values


def list_archs() -> list[Family]:
    return [FAMILIES[k] for k in sorted(FAMILIES)]
