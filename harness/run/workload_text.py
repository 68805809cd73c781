"""The workloads a session names, as text: checked, made canonical, given a batch.

A workload is a spec (``mobilenetv2:width=0.5``) or a user's model (``@path/to/file.py:factory``).
Everything here reads text and the architecture grammar only: nothing is built or run (that is a
worker's job), and an unknown backend name gets a suggestion from the backend registry.
Split from ``config`` (which holds the session's dataclass, presets and TOML) so each module has
one job.
"""

from __future__ import annotations

from pathlib import Path

import archs
from harness.run.errors import ConfigError

MODEL_PREFIX = "@"  # a workload named "@path/to/file.py:factory" is a user's own model


def backend_parses(backend: str) -> bool:
    """Whether ``backend`` names a registered backend in a valid form."""
    from harness.backends import BackendError, parse_backend

    try:
        parse_backend(backend)
    except BackendError:
        return False
    return True


def suggest_backend(text: str) -> str:
    """``"; did you mean 'openvino'?"`` plus the ``name:DEVICE`` forms, for an unknown name.

    Matches close spellings, names inside the text (``pytorch``) and abbreviations whose
    letters appear in order (``ov``); the registry is asked, so a new backend is suggested too.
    """
    import difflib

    from harness.backends import get_backend, registered_backends

    names = registered_backends()
    word = str(text).partition(":")[0].strip().lower()
    if not word:
        return ""

    def in_order(short: str, long: str) -> bool:
        it = iter(long)
        return all(ch in it for ch in short)

    close = [n for n in names if n in word or (len(word) >= 2 and in_order(word, n))]
    close += [n for n in difflib.get_close_matches(word, names, n=2, cutoff=0.6) if n not in close]
    forms = ", ".join(get_backend(n).spec.text if ":" in get_backend(n).spec.text
                      else n for n in names)
    devices = [f"{n}:DEVICE" for n in names if ":" in get_backend(n).spec.text]
    hint = f"; did you mean {' or '.join(repr(n) for n in close[:2])}?" if close else ""
    return hint + (f" (forms: {forms}; a device is given as {', '.join(devices)})" if devices else "")


def canonical_workload(text: str, base: Path | None = None) -> str:
    """A spec in canonical form, or ``@/absolute/file.py:factory`` for a user model.

    Why absolute: the session is stored and may be resumed (or its TOML read) from another
    folder; a model path relative to ``base`` (the TOML's folder; else the current one) is
    fixed once, here.
    """
    if not isinstance(text, str):
        raise ConfigError(f"a spec must be text, got {type(text).__name__}")
    check_workload(text)
    if text.startswith(MODEL_PREFIX):
        from archs.custom import parse_ref

        path, factory = parse_ref(text[len(MODEL_PREFIX):])
        return f"{MODEL_PREFIX}{((base or Path.cwd()) / path).resolve()}:{factory}"
    return archs.format_spec(archs.parse(text))


def with_batch(spec: str, batch: int) -> str:
    """``spec`` at batch ``batch``, canonical (the batch key of every family's grammar)."""
    parsed = archs.parse(spec)
    given = {**dict(parsed.given), "batch": batch}
    text = parsed.family + ":" + ",".join(f"{k}={v}" for k, v in given.items())
    return archs.format_spec(archs.parse(text))  # canonical: a default batch is left out


def check_workload(text: str) -> None:
    if text.startswith(MODEL_PREFIX):
        from archs.custom import parse_ref

        try:
            parse_ref(text[len(MODEL_PREFIX):])
        except archs.SpecError as exc:
            raise ConfigError(f"--model: {exc}") from None
        return
    try:
        archs.resolve(text)
    except archs.SpecError as exc:
        raise ConfigError(f"bad spec {text!r}: {exc}") from None
