"""Backends registered by name: ``torch``, ``torch-compile``, ``openvino``, ``onnxruntime``.

A backend string is ``name[:device][[key=value,...]]`` (``torch:cuda``,
``openvino:HETERO:GPU,CPU``, ``openvino:CPU[hint=THROUGHPUT,streams=4]``,
``torch[layout=channels_last]``). Code outside this package only ever holds the string or a
``BackendSpec`` and asks the registry; it never branches on a name, so a new runtime is one
module with a ``@register`` class (and, for a built-in, one line in ``_BUILTIN``).

Why the registry is lazy (as ``archs`` is): a backend's module is imported when its name is
first parsed, and the runtime itself (torch, OpenVINO) only when a backend is prepared or asked
for machine info, so commands that read a store pay for neither.
"""

from __future__ import annotations

import importlib
from typing import Any

from harness.backends.base import (
    PRECISIONS,
    Backend,
    BackendError,
    BackendSpec,
    PrepareContext,
    Prepared,
    PrepareError,
    check_precision,
    check_threads,
)

# The backend every speed-up is measured against unless a session names another.
DEFAULT_BASELINE = "torch"
# What a session measures when it names no backends: the baseline against OpenVINO on the CPU.
DEFAULT_BACKENDS = (DEFAULT_BASELINE, "openvino:CPU")
# Built-in backends by name -> the module (in this package) that registers them.
_BUILTIN = {"torch": "torch_backend", "torch-compile": "torch_compile", "openvino": "openvino_backend",
            "onnxruntime": "onnxruntime_backend"}
_REGISTRY: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise TypeError(f"backend {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def registered_backends() -> list[str]:
    return sorted(set(_REGISTRY) | set(_BUILTIN))


def backend_class(name: str) -> type[Backend]:
    """The class registered as ``name`` (importing its module on first use)."""
    key = name.strip().lower()
    if key not in _REGISTRY and key in _BUILTIN:
        importlib.import_module(f"{__name__}.{_BUILTIN[key]}")
    cls = _REGISTRY.get(key)
    if cls is None:
        raise BackendError(f"unknown backend {name.strip()!r}; registered: {', '.join(registered_backends())}")
    return cls


def _split_options(text: str) -> tuple[str, str | None]:
    """``"openvino:CPU[hint=X]"`` -> ``("openvino:CPU", "hint=X")``; no brackets -> ``(text, None)``."""
    if "[" not in text and "]" not in text:
        return text, None
    head, _, rest = text.partition("[")
    if not rest.endswith("]") or "[" in rest or "]" in rest[:-1]:
        raise BackendError(f"backend {text!r}: options go in one [key=value,...] at the end")
    return head, rest[:-1]


def parse_backend(text: str | BackendSpec) -> BackendSpec:
    """Parse ``name[:device][[options]]`` strictly and canonically.

    The device is checked by the backend that owns it, the options against the fields its
    config declares; ``parse_backend(spec.text) == spec``.
    """
    if isinstance(text, BackendSpec):
        return text
    if not isinstance(text, str) or not text.strip():
        raise BackendError(f"empty backend; expected one of {', '.join(registered_backends())}")
    body, options_text = _split_options(text.strip())
    name, sep, device = body.strip().partition(":")
    cls = backend_class(name)
    if sep and not device.strip():
        raise BackendError(f"backend {text!r}: empty device after ':'")
    device = cls.normalize_device(device.strip()) if sep else cls.default_device
    options: tuple[tuple[str, Any], ...] = ()
    if options_text is not None:
        from harness.backends.options import parse_options

        options = parse_options(cls.Config, options_text, f"backend {text.strip()!r}")
    spec = BackendSpec(cls.name, device, cls.canonical(device, options), options)
    cls(spec)  # the config's own checks (combinations of options) raise here, not in a worker
    return spec


def split_backend_list(text: str) -> list[str]:
    """Split ``"torch,openvino:HETERO:GPU,CPU[hint=THROUGHPUT,streams=2]"`` into backend strings.

    Commas separate backends but also appear inside device lists and option brackets: a comma
    inside ``[...]`` never splits, and a piece that does not start with a registered name
    continues the previous backend if that one has a device part.
    """
    pieces: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth <= 0:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    out: list[str] = []
    names = set(registered_backends())
    for piece in (p.strip() for p in pieces):
        if not piece:
            continue
        head = piece.partition(":")[0].partition("[")[0].strip().lower()
        if head not in names and out and ":" in out[-1] and not out[-1].endswith("]"):
            out[-1] += "," + piece
        else:
            out.append(piece)
    if not out:
        raise BackendError(f"no backend in {text!r}; registered: {', '.join(registered_backends())}")
    return out


def get_backend(spec: BackendSpec | str) -> Backend:
    spec = parse_backend(spec)
    return _REGISTRY[spec.name](spec)


def backend_options(name: str) -> list[dict[str, Any]]:
    """The options a backend declares, as data (for ``--help``-like listings and docs)."""
    from harness.backends.options import format_value, options_of

    return [
        {"name": o.name, "type": o.kind.__name__, "default": format_value(o.default),
         "choices": list(o.choices), "min": o.lo, "max": o.hi, "also": list(o.words), "doc": o.doc}
        for _, o in options_of(backend_class(name).Config).values()
    ]


def machine_info() -> dict[str, Any]:
    """Every backend's contribution to the machine fingerprint, merged.

    Backends that share a runtime (``torch`` and ``torch-compile``) share the method, which is
    asked once. ``versions`` dicts are merged; a backend whose probe raises leaves
    ``<name>_error`` instead of breaking the fingerprint.
    """
    out: dict[str, Any] = {}
    seen: set[Any] = set()
    for name in registered_backends():
        cls = backend_class(name)
        func = getattr(cls.machine_info, "__func__", cls.machine_info)
        if func in seen:
            continue
        seen.add(func)
        try:
            info = cls.machine_info()
        except Exception as exc:  # noqa: BLE001 - a broken runtime is a note, not a crash
            out[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
            continue
        for key, value in info.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out[key] = value
    return out


# Backend variants that run a different runtime than their name's default, listed by
# ``capabilities`` beside the registered names.
VARIANTS = ("torch-compile[backend=openvino]",)


def capabilities() -> dict[str, dict[str, Any]]:
    """What this install can run: per backend ``{"ok", "why", "precisions": {p: {"ok", "why"}}}``
    (``accelbench machine``). Asks every backend's ``availability`` and ``supports``, so a
    missing package (the ``runtimes`` extra) or a CPU without bf16 says so here first."""
    out: dict[str, dict[str, Any]] = {}
    for text in [*registered_backends(), *VARIANTS]:
        try:
            backend = get_backend(text)
            ok, why = backend.availability()
        except Exception as exc:  # noqa: BLE001 - a broken runtime is a line, not a crash
            out[text] = {"ok": False, "why": f"{type(exc).__name__}: {exc}", "precisions": {}}
            continue
        precisions = {}
        for p in PRECISIONS:
            p_ok, p_why = backend.supports(p) if ok else (False, why)
            precisions[p] = {"ok": p_ok, "why": p_why}
        out[backend.spec.text] = {"ok": ok, "why": why, "precisions": precisions}
    return out


__all__ = [
    "DEFAULT_BACKENDS", "DEFAULT_BASELINE", "PRECISIONS", "Backend", "BackendError", "BackendSpec", "PrepareContext",
    "PrepareError", "Prepared", "backend_class", "backend_options", "check_precision",
    "capabilities", "check_threads", "get_backend", "machine_info", "parse_backend", "register",
    "registered_backends", "split_backend_list",
]
