"""What a cached artefact is keyed by: the model itself, never the file or spec that named it.

Why: a cache keyed by a name times the wrong network when what the name builds changes. A
user's ``net.py`` that imports a sibling ``blocks.py`` builds a different network after an
edit to ``blocks.py``, although ``net.py`` is byte for byte the same; an edit that keeps the
outputs equal (an extra op, a reordered sum) is a different program for OpenVINO all the same.
So the key is computed in the worker, from the built module:

- its **graph**: the TorchScript trace (the same trace OpenVINO's frontend converts), printed
  without source locations and with TorchScript's per-process class mangling removed, so the
  same model gives the same text in every process; tensor constants inside the graph are hashed
  by value;
- its **weights**: every parameter and buffer, by name, dtype, shape and bytes;
- the **input**: shape and dtype (IR is converted for a static shape);
- the **versions** of torch, OpenVINO and accelbench, and ``FORMAT`` below;
- the caller's **settings** (e.g. a quantized model's precision and calibration), by name.

This is the one key function every cache calls: the IR cache (``harness.backends.ircache``)
today; quantized models and ONNX files should call ``artefact_key`` with their own ``kind``
and the settings that change what they store (``precision="int8"``, ``opset=17``...). The
price is a trace per prepare, also on a cache hit (its cost: ``PrepareContext.known_artefact_key``);
on a miss the same trace is what gets converted. Paid once per cell and session: a built-in
spec's later process pairs are handed the key its first pair computed, and the caches
(``ircache.load_or_convert``, ``load_or_write_file``) load that entry without a trace when it
reads back.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from typing import Any

FORMAT = 1  # bump when what goes into the key changes

_MANGLE = re.compile(r"___torch_mangle_\d+\.")
_USER_MODULE = re.compile(r"accelbench_user_[0-9a-f]+")  # archs.custom names by absolute path


def trace(model: Any, example: Any) -> Any:
    """``torch.jit.trace`` as OpenVINO's frontend wants it (and the key reads it).

    ``check_trace=False``: the check re-runs the traced graph against eager and cost 4x the
    trace itself (16 s of 17 s for an 8-cell DARTS net); parity against PyTorch is checked on
    every cell anyway. torch's deprecation warning for ``jit`` is not the user's to act on.
    """
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with torch.no_grad():
            return torch.jit.trace(model, example, check_trace=False, strict=False)


def graph_text(traced: Any) -> str:
    """The traced graph as text that depends on the model only (not on the process or path)."""
    text = traced.inlined_graph.str(False)  # False: no source locations (line numbers, paths)
    return _USER_MODULE.sub("accelbench_user", _MANGLE.sub("", text))


def _tensor_bytes(h: Any, name: str, t: Any) -> None:
    import torch

    t = t.detach().cpu().contiguous()
    h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def model_digest(model: Any, example: Any, traced: Any | None = None) -> str:
    """SHA-256 of the graph, weights, graph constants and input of ``model`` (hex)."""
    traced = trace(model, example) if traced is None else traced
    h = hashlib.sha256()
    h.update(graph_text(traced).encode())
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        _tensor_bytes(h, name, t)
    for i, node in enumerate(traced.inlined_graph.nodes()):
        if node.kind() == "prim::Constant" and node.hasAttribute("value") \
                and node.kindOf("value") == "t":
            _tensor_bytes(h, f"const{i}", node.t("value"))
    h.update(f"input|{example.dtype}|{tuple(example.shape)}".encode())
    return h.hexdigest()


def versions() -> dict[str, str | None]:
    """The libraries whose behaviour decides what is stored under a key."""
    from importlib import metadata

    import torch

    from harness import __version__

    try:
        ov = metadata.version("openvino")
    except metadata.PackageNotFoundError:
        ov = None
    return {"torch": torch.__version__, "openvino": ov, "accelbench": __version__}


def artefact_key(kind: str, model: Any, example: Any, *, traced: Any | None = None,
                 **settings: Any) -> str:
    """The cache key of the artefact ``kind`` (``"openvino-ir"``, ``"int8-ir"``, ``"onnx"``...)
    derived from ``model`` on ``example``: ``kind:<digest>``, the digest covering what the
    model is (see the module docstring), the versions and ``settings`` (sorted by name).

    Pass ``traced`` when the caller has traced the model already (the IR cache converts that
    same trace), so the key costs no second trace.
    """
    h = hashlib.sha256()
    h.update(f"{kind}\nformat={FORMAT}\n".encode())
    h.update(model_digest(model, example, traced).encode())
    for k, v in sorted(versions().items()) + sorted(settings.items()):
        h.update(f"\n{k}={v!r}".encode())
    return f"{kind}:{h.hexdigest()[:32]}"
