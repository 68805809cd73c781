"""On-disk cache of converted models (OpenVINO IR, int8 IR, ONNX files): a second run converts nothing.

Why: ``ov.convert_model`` traces the PyTorch model and costs seconds to minutes per model,
while reading IR back costs milliseconds. The caller's key says what the model is: it comes
from ``harness.backends.artefacts.artefact_key`` (graph, weights, input shape, versions), never
from a file or spec name, so an edit anywhere in the model's code or weights is a miss. The
OpenVINO version is added here too because IR written by one release is only guaranteed to be
read as intended by that release. Weights are saved uncompressed
(``compress_to_fp16=False``; ``ov.save_model`` halves them by default), so the cached model is
the converted model, not an approximation of it.

Writes are atomic (temporary names, then ``os.replace``; the ``.xml`` last, as the commit
mark), so two workers converting the same model at once both end up with a valid entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMAT = 1  # bump when what is stored under a key changes


def keyed_stem(cache_dir: str | os.PathLike, key: str) -> Path:
    """Where the artefact named by ``key`` lives: every cached artefact (IR, int8 IR, ONNX file)
    is found by a hash of what it is, never by a file name."""
    digest = hashlib.sha256(f"{key}\nformat={FORMAT}".encode()).hexdigest()[:32]
    return Path(cache_dir) / digest


def entry_stem(cache_dir: str | os.PathLike, ir_key: str) -> Path:
    """Where ``ir_key``'s IR lives (``<stem>.xml``, ``.bin``, and ``.json`` naming the key)."""
    import openvino as ov

    return keyed_stem(cache_dir, f"{ir_key}\nopenvino={ov.get_version()}")


def has_ir(cache_dir: str | os.PathLike | None, ir_key: str | None) -> bool:
    """Whether the cache holds a complete IR entry for ``ir_key``."""
    if not cache_dir or not ir_key:
        return False
    stem = entry_stem(cache_dir, ir_key)
    return stem.with_suffix(".xml").exists() and stem.with_suffix(".bin").exists()


def has_file(cache_dir: str | os.PathLike | None, key: str | None, suffix: str) -> bool:
    """Whether the cache holds the single-file artefact ``key`` (``load_or_write_file``)."""
    if not cache_dir or not key:
        return False
    path = keyed_stem(cache_dir, key).with_suffix(suffix)
    return path.exists() and path.stat().st_size > 0


def load_or_write_file(cache_dir: str | os.PathLike | None, key: str, suffix: str,
                       write: Callable[[Path], None]) -> tuple[Path, dict[str, Any]]:
    """A single-file artefact (an ONNX model) from the cache, or written by ``write(path)``.

    ``key`` must name everything the file depends on (the model's key and the exporter's
    versions); without a directory or key the file goes to a temporary directory and is
    rewritten every time. Atomic as the IR is: written under a temporary name, then renamed.
    """
    import tempfile

    info: dict[str, Any] = {"cache_hit": False, "convert_s": 0.0}
    if cache_dir and key:
        path = keyed_stem(cache_dir, key).with_suffix(suffix)
        if path.exists() and path.stat().st_size > 0:
            info.update(cache_hit=True, path=str(path))
            return path, info
    else:
        path = Path(tempfile.mkdtemp(prefix="accelbench-")) / f"model{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}"
    t0 = time.perf_counter()
    try:
        write(tmp)
        if cache_dir and key:
            path.with_suffix(".json").write_text(json.dumps({"key": key, "format": FORMAT}) + "\n")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    info.update(convert_s=time.perf_counter() - t0, path=str(path))
    return path, info


def load_or_convert(
    cache_dir: str | os.PathLike | None, ir_key: str, convert: Callable[[], Any],
    label: str = "",
) -> tuple[Any, dict[str, Any]]:
    """Return ``(ov.Model, info)`` from the cache, or from ``convert()`` (then stored).

    ``info``: ``ir_cache_hit``, ``convert_s`` (0 on a hit), ``ir_read_s``/``ir_save_s``,
    ``ir_path``. Without a directory or key there is no caching: every call converts.
    ``label`` (e.g. the spec) is written beside the entry for a person browsing the cache;
    it takes no part in the key.
    """
    import openvino as ov

    info: dict[str, Any] = {"ir_cache_hit": False, "convert_s": 0.0, "ir_path": None}
    stem = entry_stem(cache_dir, ir_key) if cache_dir and ir_key else None
    if stem is not None:
        xml = stem.with_suffix(".xml")
        if xml.exists() and stem.with_suffix(".bin").exists():
            t0 = time.perf_counter()
            try:
                model = ov.Core().read_model(str(xml))
            except Exception:  # a damaged entry is a miss, rewritten below
                model = None
            if model is not None:
                info.update(ir_cache_hit=True, ir_read_s=time.perf_counter() - t0, ir_path=str(xml))
                return model, info
    t0 = time.perf_counter()
    model = convert()
    info["convert_s"] = time.perf_counter() - t0
    if stem is not None:
        t0 = time.perf_counter()
        _store(model, stem, ir_key, label)
        info.update(ir_save_s=time.perf_counter() - t0, ir_path=str(stem.with_suffix(".xml")))
    return model, info


def _store(model: Any, stem: Path, ir_key: str, label: str = "") -> None:
    import openvino as ov

    stem.parent.mkdir(parents=True, exist_ok=True)
    tmp = f".{stem.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"  # save_model names the .bin
    tmp_xml, tmp_bin = stem.parent / f"{tmp}.xml", stem.parent / f"{tmp}.bin"
    try:
        ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
        sidecar = {"key": ir_key, "label": label, "openvino": ov.get_version(),
                   "format": FORMAT}
        stem.with_suffix(".json").write_text(json.dumps(sidecar, indent=1) + "\n")
        os.replace(tmp_bin, stem.with_suffix(".bin"))
        os.replace(tmp_xml, stem.with_suffix(".xml"))
    finally:
        for leftover in (tmp_xml, tmp_bin):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
