"""Backends registered by name: ``torch``, ``torch-compile``, ``openvino``.

A backend string is ``name[:device]`` (``torch:cuda``, ``openvino:HETERO:GPU,CPU``). Code outside
this package only ever holds the string or a ``BackendSpec`` and asks the registry; it never
branches on a name, so a new runtime is one module with a ``@register`` class.
"""

from __future__ import annotations

from harness.backends.base import (
    PRECISIONS,
    Backend,
    BackendError,
    BackendSpec,
    Prepared,
    PrepareError,
    check_precision,
    check_threads,
)

_REGISTRY: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise TypeError(f"backend {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def registered_backends() -> list[str]:
    return sorted(_REGISTRY)


def parse_backend(text: str | BackendSpec) -> BackendSpec:
    """Parse ``name[:device]`` strictly; the device is checked by the backend that owns it."""
    if isinstance(text, BackendSpec):
        return text
    if not isinstance(text, str) or not text.strip():
        raise BackendError(f"empty backend; expected one of {', '.join(registered_backends())}")
    name, sep, device = text.strip().partition(":")
    cls = _REGISTRY.get(name.strip().lower())
    if cls is None:
        raise BackendError(
            f"unknown backend {name.strip()!r}; registered: {', '.join(registered_backends())}"
        )
    if sep and not device.strip():
        raise BackendError(f"backend {text!r}: empty device after ':'")
    device = cls.normalize_device(device.strip()) if sep else cls.default_device
    return BackendSpec(cls.name, device, cls.canonical(device))


def split_backend_list(text: str) -> list[str]:
    """Split ``"torch,openvino:HETERO:GPU,CPU"`` into backend strings.

    Commas separate backends but also appear inside device lists, so a piece that does not
    start with a registered name continues the previous backend, if that one has a device part.
    """
    out: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        head = piece.partition(":")[0].strip().lower()
        if head not in _REGISTRY and out and ":" in out[-1]:
            out[-1] += "," + piece
        else:
            out.append(piece)
    if not out:
        raise BackendError(f"no backend in {text!r}; registered: {', '.join(registered_backends())}")
    return out


def get_backend(spec: BackendSpec | str) -> Backend:
    spec = parse_backend(spec)
    return _REGISTRY[spec.name](spec)


# Importing the modules registers their backends (openvino itself is imported on first use).
from harness.backends import openvino_backend, torch_backend  # noqa: E402, F401

__all__ = [
    "PRECISIONS", "Backend", "BackendError", "BackendSpec", "PrepareError", "Prepared",
    "check_precision", "check_threads", "get_backend", "parse_backend", "register",
    "registered_backends", "split_backend_list",
]
