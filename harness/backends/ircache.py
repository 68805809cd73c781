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


Key = str | Callable[[], str]  # a key, or how to compute it (it may trace the model)


def _reuse(info: dict[str, Any], known: str) -> dict[str, Any]:
    info.update(artefact_key=known, artefact_key_reused=True, trace_s=0.0)
    return info


def _keyed(key: Key, info: dict[str, Any]) -> str:
    """``key`` as a string, its cost (the trace an artefact key reads) in ``info["trace_s"]``."""
    t0 = time.perf_counter()
    got = key() if callable(key) else key
    info.update(artefact_key=got or None, artefact_key_reused=False,
                trace_s=time.perf_counter() - t0)
    return got


def _cached_file(cache_dir: str | os.PathLike, key: str, suffix: str) -> Path | None:
    path = keyed_stem(cache_dir, key).with_suffix(suffix)
    return path if path.exists() and path.stat().st_size > 0 else None


def load_or_write_file(cache_dir: str | os.PathLike | None, key: Key, suffix: str,
                       write: Callable[[Path], None], known: str | None = None
                       ) -> tuple[Path, dict[str, Any]]:
    """A single-file artefact (an ONNX model) from the cache, or written by ``write(path)``.

    ``key`` must name everything the file depends on (the model's key and the exporter's
    versions); a callable is called only when the cache is used and ``known`` (a key computed
    earlier for the same model: a cell's first process's) names no entry it holds. Without a
    directory or key the file goes to a temporary directory and is rewritten every time. Atomic
    as the IR is: written under a temporary name, then renamed. ``info`` says which key was used
    (``artefact_key``, ``artefact_key_reused``) and what computing it cost (``trace_s``).
    """
    import tempfile

    info: dict[str, Any] = {"cache_hit": False, "convert_s": 0.0}
    if cache_dir and known and (found := _cached_file(cache_dir, known, suffix)) is not None:
        info.update(cache_hit=True, path=str(found))
        return found, _reuse(info, known)
    key = _keyed(key if cache_dir else "", info)
    if cache_dir and key:
        path = keyed_stem(cache_dir, key).with_suffix(suffix)
        if key != known and path.exists() and path.stat().st_size > 0:  # known: looked at above
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


def _read_ir(stem: Path, info: dict[str, Any]) -> Any:
    """The entry at ``stem`` (``info`` updated), or None when it is missing or damaged."""
    import openvino as ov

    xml = stem.with_suffix(".xml")
    if not (xml.exists() and stem.with_suffix(".bin").exists()):
        return None
    t0 = time.perf_counter()
    try:
        model = ov.Core().read_model(str(xml))
    except Exception:  # a damaged entry is a miss, rewritten by the caller
        return None
    info.update(ir_cache_hit=True, ir_read_s=time.perf_counter() - t0, ir_path=str(xml))
    return model


def load_or_convert(
    cache_dir: str | os.PathLike | None, ir_key: Key, convert: Callable[[], Any],
    label: str = "", known: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Return ``(ov.Model, info)`` from the cache, or from ``convert()`` (then stored).

    ``ir_key`` may be a callable (it traces the model): it is called only when the cache is used
    and ``known`` (a key computed earlier for the same model: a cell's first process's) names no
    entry that reads back. ``info``: ``ir_cache_hit``, ``convert_s`` (0 on a hit),
    ``ir_read_s``/``ir_save_s``, ``ir_path``, and which key was used (``artefact_key``,
    ``artefact_key_reused``) and what computing it cost (``trace_s``). Without a directory or
    key there is no caching: every call converts. ``label`` (e.g. the spec) is written beside
    the entry for a person browsing the cache; it takes no part in the key.
    """
    info: dict[str, Any] = {"ir_cache_hit": False, "convert_s": 0.0, "ir_path": None}
    if cache_dir and known and (model := _read_ir(entry_stem(cache_dir, known), info)) is not None:
        return model, _reuse(info, known)
    key = _keyed(ir_key if cache_dir else "", info)
    stem = entry_stem(cache_dir, key) if cache_dir and key else None
    if stem is not None and key != known and (model := _read_ir(stem, info)) is not None:
        return model, info  # (the known key's entry was read above: damaged, it is rewritten)
    t0 = time.perf_counter()
    model = convert()
    info["convert_s"] = time.perf_counter() - t0
    if stem is not None:
        t0 = time.perf_counter()
        _store(model, stem, key, label)
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
