"""Families registered by name (timm's ``register_model`` idea, with a strict parser).

A family is a builder function plus the table of parameters it accepts. ``@register`` puts it in
``FAMILIES``; everything else (the CLI, tests parametrized over the registry, the harness) looks
families up by name and never imports a family module directly.

This module is the plug-in side only: family modules import it, and it imports none of them.
Discovery (importing every built-in family) and the look-ups by name (``family``, ``parse``,
``resolve``, ``list_archs``) live in ``archs.families``, so the arrows run one way:
``families`` -> each family module -> ``registry``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .spec import Param

ACTIVATIONS = ("relu", "relu6", "silu", "gelu", "tanh", "hardswish", "leakyrelu")


def common_params(
    *, batch: int = 1, res: int | None = 224, classes: int | None = 1000, act: str = "relu",
    res_min: int = 16,
) -> tuple[Param, ...]:
    """The parameters every family takes; a family may change their defaults (None = derived)."""
    return (
        Param("batch", int, batch, min=1, max=256, doc="images per inference"),
        Param("res", int, res, min=res_min, max=1024, doc="input height and width in pixels"),
        Param("classes", int, classes, min=1, max=100_000, doc="classifier outputs"),
        Param("act", str, act, choices=ACTIVATIONS, doc="activation function"),
    )


Builder = Callable[[Mapping[str, Any]], nn.Module]


@dataclass(frozen=True)
class Family:
    name: str
    params: tuple[Param, ...]
    builder: Builder
    doc: str
    resolve: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # Small values for tests and quick conversion checks; merged over the defaults.
    small: tuple[tuple[str, Any], ...] = ()
    # The example input's shape from the resolved values; None: ``batch x 3 x res x res``.
    input_shape: Callable[[Mapping[str, Any]], tuple[int, ...]] | None = None

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def as_json(self) -> dict[str, Any]:
        return {"family": self.name, "params": [p.as_json() for p in self.params], "doc": self.doc}


FAMILIES: dict[str, Family] = {}


def register(
    name: str,
    params: tuple[Param, ...],
    *,
    resolve: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    small: Mapping[str, Any] | None = None,
    input_shape: Callable[[Mapping[str, Any]], tuple[int, ...]] | None = None,
) -> Callable[[Builder], Builder]:
    """Register ``builder(values) -> nn.Module`` as family ``name``.

    ``params`` must include the common ones (``common_params()``); ``resolve`` derives values
    whose default is None; ``small`` names a cheap configuration the test-suite and the
    conversion check use; ``input_shape`` replaces the image input (a single kernel's family
    feeds the kernel its own input). The builder's docstring's first paragraph becomes the family's doc.
    """
    names = [p.name for p in params]
    missing = {"batch", "res", "classes", "act"} - set(names)
    if missing:
        raise TypeError(f"family {name}: missing common params {sorted(missing)}")
    if len(set(names)) != len(names):
        raise TypeError(f"family {name}: duplicate params")

    # Canonical order: the family's own keys, then the common ones (DESIGN's examples read
    # ``mobilenetv2:width=0.75,res=160``).
    common = ("batch", "res", "classes", "act")
    params = tuple(p for p in params if p.name not in common) + tuple(
        p for c in common for p in params if p.name == c
    )

    def deco(builder: Builder) -> Builder:
        if name in FAMILIES:
            raise TypeError(f"family {name} registered twice")
        doc = (builder.__doc__ or "").strip().split("\n\n")[0]
        FAMILIES[name] = Family(
            name, tuple(params), builder, " ".join(doc.split()), resolve,
            tuple((small or {}).items()), input_shape,
        )
        return builder

    return deco


def input_shape(values: Mapping[str, Any], fam: Family | None = None) -> tuple[int, ...]:
    if fam is not None and fam.input_shape is not None:
        return fam.input_shape(values)
    return (values["batch"], 3, values["res"], values["res"])


def example_input(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + 1)
    return torch.randn(shape, generator=gen)
