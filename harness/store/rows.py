"""A store row in and out: JSON columns and the checks every row passes, read or written.

Why its own module: ``harness.store.schema`` decides whether a *file* may be trusted (format,
version, migrations); this one whether a *row* may (types, finite numbers, known statuses and
scenarios). ``Store.open`` and ``Store.merge_from`` both read rows through it, so a row that
could not be read back is never written.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal, overload

import numpy as np

from harness.measure.results import (
    FINISHED,
    INTERRUPTED,
    RUNNING,
    SCENARIOS,
    STATUSES,
    CellKey,
    CellResult,
    SessionInfo,
)

SESSION_STATES = (RUNNING, FINISHED, INTERRUPTED)


class RowError(ValueError):
    """A row (read from disk, or about to be written) that is not well-formed."""


# ---------------------------------------------------------------------------- JSON columns


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Duplicate keys are rejected: which one would win is up to the reader, so it is ambiguous."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise RowError(f"duplicate key {k!r}")
        out[k] = v
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs)


def dumps(value: Any, what: str) -> str:
    """JSON text; NaN/Infinity become the tokens the decoder reads back (see module docstring)."""
    try:
        return json.dumps(value, allow_nan=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise RowError(f"{what} is not JSON-serializable: {e}") from None


def _loads(text: Any, what: str) -> Any:
    if not isinstance(text, str):
        raise RowError(f"{what} is not JSON text")
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise RowError(f"{what} is nested too deeply") from None
    except ValueError as e:
        raise RowError(f"{what} is not valid JSON ({e})") from None


# ---------------------------------------------------------------------------- row checks


@overload
def _text(v: Any, what: str, *, optional: Literal[False] = ..., empty: bool = ...) -> str: ...
@overload
def _text(v: Any, what: str, *, optional: bool, empty: bool = ...) -> str | None: ...
def _text(v: Any, what: str, *, optional: bool = False, empty: bool = False) -> str | None:
    if v is None and optional:
        return None
    if not isinstance(v, str) or (not empty and not v):
        raise RowError(f"{what} must be {'a' if empty else 'a non-empty'} string")
    return v


@overload
def _number(v: Any, what: str, *, optional: Literal[False] = ..., finite: bool = ...,
            nonneg: bool = ...) -> float: ...
@overload
def _number(v: Any, what: str, *, optional: bool, finite: bool = ...,
            nonneg: bool = ...) -> float | None: ...
def _number(v: Any, what: str, *, optional: bool = False, finite: bool = False,
            nonneg: bool = False) -> float | None:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RowError(f"{what} must be a number")
    x = float(v)
    if finite and not math.isfinite(x):
        raise RowError(f"{what} must be finite")
    if nonneg and x < 0:  # NaN passes: a NaN latency is data (a flagged cell), a negative one is not
        raise RowError(f"{what} must not be negative")
    return x


def _dict(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise RowError(f"{what} must be a JSON object")
    return v


def machine_from_row(row: tuple) -> tuple[str, dict[str, Any]]:
    mid, fp = row
    return _text(mid, "machine id"), _dict(_loads(fp, "fingerprint"), "fingerprint")


def session_from_row(row: tuple) -> SessionInfo:
    sid, started, finished, status, machine_id, config, argv, version = row
    if status not in SESSION_STATES:
        raise RowError(f"session status {status!r} is not one of {', '.join(SESSION_STATES)}")
    argv_v = _loads(argv, "argv")
    if not isinstance(argv_v, list) or not all(isinstance(a, str) for a in argv_v):
        raise RowError("argv must be a list of strings")
    return SessionInfo(
        id=_text(sid, "session id"),
        started=_number(started, "session start", finite=True),
        status=status,
        finished=_number(finished, "session finish", optional=True, finite=True),
        machine_id=_text(machine_id, "machine id", optional=True),
        config=_dict(_loads(config, "config"), "config"),
        argv=argv_v,
        version=_text(version, "version", empty=True),
    )


def _samples(values: list) -> list[float]:
    """Every sample a non-negative number (NaN passes, as in ``_number``), checked in bulk: two
    runs of the kernel preset hold 16 million samples, and reading them for the predictor took
    10.7 s with one ``_number`` call a sample, 7.5 s checked in bulk (Zen 4 VM, 2026-12-06). A
    list with anything but plain ints and floats goes through ``_number``, whose error names
    what is wrong."""
    if not set(map(type, values)) <= {float, int}:
        return [_number(v, "a sample", nonneg=True) for v in values]
    got = np.asarray(values, dtype=float)
    if (got < 0).any():
        raise RowError("a sample must not be negative")
    return got.tolist()


def cell_from_row(row: tuple) -> tuple[str, CellResult]:
    """(session id, cell) from a ``CELL_COLS`` row, every field type-checked."""
    sid, spec, backend, precision, threads, scenario, status, reason, warm, samples, meta, t0, \
        t1 = row
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise RowError(f"threads must be a non-negative integer, not {threads!r}")
    if scenario not in SCENARIOS:
        raise RowError(f"cell scenario {scenario!r} is not one of {', '.join(SCENARIOS)}")
    if status not in STATUSES:
        raise RowError(f"cell status {status!r} is not one of {', '.join(STATUSES)}")
    sample_list = _loads(samples, "samples")
    if not isinstance(sample_list, list):
        raise RowError("samples must be a list of numbers")
    key = CellKey(_text(spec, "spec"), _text(backend, "backend"), _text(precision, "precision"),
                  threads, scenario)
    return _text(sid, "session id"), CellResult(
        key=key,
        status=status,
        reason=_text(reason, "reason", optional=True, empty=True),
        samples_ms=_samples(sample_list),
        warmup_ms=_number(warm, "warmup_ms", optional=True, nonneg=True),
        meta=_dict(_loads(meta, "meta"), "meta"),
        started=_number(t0, "cell start", optional=True),
        finished=_number(t1, "cell finish", optional=True),
    )


def _scalar(x: float | None) -> float | None:
    """SQLite stores a NaN REAL as NULL, so a NaN scalar is written (and read back) as None."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def machine_row(machine_id: str, fingerprint: dict[str, Any]) -> tuple:
    row = (machine_id, dumps(fingerprint, "fingerprint"))
    machine_from_row(row)
    return row


def session_row(info: SessionInfo) -> tuple:
    """The row for ``info``, checked by the same rules as reading, so every write reads back."""
    row = (info.id, info.started, info.finished, info.status, info.machine_id,
           dumps(info.config, "config"), dumps(info.argv, "argv"), info.version)
    session_from_row(row)
    return row


def cell_row(session_id: str, r: CellResult) -> tuple:
    k = r.key
    row = (session_id, k.spec, k.backend, k.precision, k.threads, k.scenario, r.status, r.reason,
           _scalar(r.warmup_ms), dumps(list(r.samples_ms), "samples"), dumps(r.meta, "meta"),
           _scalar(r.started), _scalar(r.finished))
    cell_from_row(row)
    return row


def peak_from_row(row: tuple) -> tuple[str, float, dict[str, Any]]:
    mid, measured, peak = row
    when = _number(measured, "peak time", finite=True)
    return (str(_text(mid, "machine id")), float(when) if when is not None else math.nan,
            _dict(_loads(peak, "peak"), "peak"))


def peak_row(machine_id: str, measured: float, peak: dict[str, Any]) -> tuple:
    row = (machine_id, measured, dumps(peak, "peak"))
    peak_from_row(row)
    return row
