"""pytest-benchmark's JSON format, both ways: a session out, a file in.

Why this format: people already keep pytest-benchmark files and run ``pytest-benchmark compare``
on them in CI. An exported session reads there as one benchmark per cell (statistics derived from
the raw samples by pytest-benchmark's own ``Stats``, in seconds, so its tables agree with its own
runs); the raw samples travel as ``stats.data``. Everything accelbench needs to read the file
back exactly (identity, meta, the machine fingerprint, the session) rides in ``extra_info`` and
an ``accelbench`` key, which pytest-benchmark ignores. A foreign file (written by pytest-benchmark
itself) imports too, one cell per benchmark with raw data, its machine_info kept as the
fingerprint; a benchmark saved without ``--benchmark-save-data`` has no samples and is refused,
because accelbench stores samples, not statistics.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from harness.measure.results import (
    DONE,
    LATENCY,
    SCENARIOS,
    STATUSES,
    CellKey,
    CellResult,
    SessionInfo,
)

FORMAT_TAG = "accelbench-pytest-benchmark/1"


class ExchangeError(ValueError):
    """A file that is not a pytest-benchmark JSON accelbench can import (exit 2)."""


def _pb_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("pytest-benchmark")
    except metadata.PackageNotFoundError:
        return "5.0.0"


def machine_info(fingerprint: Mapping[str, Any] | None, machine_id: str | None) -> dict[str, Any]:
    """pytest-benchmark's machine_info keys, filled from accelbench's fingerprint (kept whole)."""
    fp = dict(fingerprint or {})
    os_ = fp.get("os") or {}
    cpu = dict(fp.get("cpu") or {})
    return {
        "node": fp.get("hostname", ""), "processor": os_.get("machine", ""),
        "machine": os_.get("machine", ""), "python_compiler": "",
        "python_implementation": "CPython", "python_implementation_version": os_.get("python", ""),
        "python_version": os_.get("python", ""), "python_build": [],
        "release": os_.get("release", ""), "system": os_.get("system", ""),
        "cpu": {**cpu, "brand_raw": cpu.get("brand_raw", ""), "count": cpu.get("count")},
        "accelbench": {"id": machine_id, "fingerprint": fp},
    }


def export_session(session: SessionInfo, cells: Sequence[CellResult],
                   machine: Mapping[str, Any] | None) -> dict[str, Any]:
    """The pytest-benchmark document for one session: timed cells only (a failed or skipped
    cell has no latency to compare); the others are listed under ``accelbench.not_exported``."""
    from pytest_benchmark.stats import Stats

    benchmarks, left = [], []
    for c in cells:
        if not c.samples_ms or c.status not in (DONE, "flagged"):
            left.append({**c.key.as_dict(), "status": c.status, "reason": c.reason})
            continue
        st = Stats()
        for ms in c.samples_ms:
            st.update(ms / 1000.0)
        k = c.key
        name = f"{k.spec}[{k.backend}-{k.precision}-t{k.threads}]"
        stats = {f: getattr(st, f) for f in Stats.fields}
        stats["data"] = list(st.data)
        stats["iterations"] = 1
        benchmarks.append({
            "group": f"{k.spec} {k.precision} t={k.threads}", "name": name,
            "fullname": f"accelbench::{name}",
            "params": {"backend": k.backend, "precision": k.precision, "threads": k.threads},
            "param": f"{k.backend}-{k.precision}-t{k.threads}",
            "extra_info": {"accelbench": {"key": k.as_dict(), "status": c.status,
                                          "reason": c.reason, "warmup_ms": c.warmup_ms,
                                          "started": c.started, "finished": c.finished,
                                          "meta": c.meta}},
            "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 1,
                        "max_time": None, "min_time": None, "warmup": True},
            "stats": stats,
        })
    return {
        "machine_info": machine_info(machine, session.machine_id),
        "commit_info": {},
        "benchmarks": benchmarks,
        "datetime": datetime.fromtimestamp(session.started, timezone.utc).isoformat(),
        "version": _pb_version(),
        "accelbench": {"format": FORMAT_TAG, "session": {
            "id": session.id, "started": session.started, "finished": session.finished,
            "status": session.status, "machine_id": session.machine_id,
            "config": session.config, "argv": session.argv, "version": session.version},
            "not_exported": left},
    }


def import_document(doc: Any, *, source: str = "file") -> tuple[SessionInfo, dict[str, Any], list[CellResult]]:
    """(session, machine fingerprint with its ``id``, cells) from a pytest-benchmark document."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("benchmarks"), list):
        raise ExchangeError(f"{source} is not a pytest-benchmark JSON file (no 'benchmarks' list)")
    mi = _mapping(doc.get("machine_info"))
    ours = _mapping(mi.get("accelbench"))
    fp = dict(ours.get("fingerprint") or {}) or {"pytest_benchmark_machine_info": dict(mi),
                                                 "cpu": dict(mi.get("cpu") or {})}
    mid = ours.get("id") or hashlib.sha256(
        json.dumps(mi, sort_keys=True, default=str).encode()).hexdigest()[:12]
    fp["id"] = str(mid)
    cells = [_cell(b, i, source) for i, b in enumerate(doc["benchmarks"])]
    keys = [c.key for c in cells]
    if len(set(keys)) != len(keys):
        raise ExchangeError(f"{source} holds two benchmarks with the same identity")
    sess = (doc.get("accelbench") or {}).get("session") if isinstance(doc.get("accelbench"), Mapping) else None
    if isinstance(sess, Mapping) and isinstance(sess.get("id"), str):
        info = SessionInfo(id=sess["id"], started=float(sess.get("started") or 0.0),
                           status=str(sess.get("status") or "finished"),
                           finished=sess.get("finished"), machine_id=str(mid),
                           config=dict(sess.get("config") or {}), argv=list(sess.get("argv") or []),
                           version=str(sess.get("version") or ""))
    else:
        started = _started(doc.get("datetime"))
        digest = hashlib.sha256(json.dumps(doc["benchmarks"], default=str).encode()).hexdigest()[:6]
        info = SessionInfo(id=time.strftime("%Y%m%d-%H%M%S-", time.gmtime(started)) + digest,
                           started=started, status="finished", finished=started,
                           machine_id=str(mid), config={"imported_from": "pytest-benchmark"},
                           argv=[], version=str(doc.get("version") or ""))
    return info, fp, cells


def _cell(b: Any, i: int, source: str) -> CellResult:
    where = f"{source}: benchmark {i}"
    if not isinstance(b, Mapping) or not isinstance(b.get("stats"), Mapping):
        raise ExchangeError(f"{where} has no stats")
    data = b["stats"].get("data")
    if not isinstance(data, list) or not data or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in data):
        raise ExchangeError(f"{where} ({b.get('name')!r}) has no raw samples (stats.data); save "
                            f"it with --benchmark-save-data, accelbench stores samples, not statistics")
    samples = [float(x) * 1000.0 for x in data]  # seconds per call (already / iterations) -> ms
    ext = (b.get("extra_info") or {}).get("accelbench") if isinstance(b.get("extra_info"), Mapping) else None
    if isinstance(ext, Mapping) and isinstance(ext.get("key"), Mapping):
        k = ext["key"]
        try:
            key = CellKey(str(k["spec"]), str(k["backend"]), str(k["precision"]), int(k["threads"]),
                          str(k.get("scenario", LATENCY)))
            if key.scenario not in SCENARIOS:
                raise ValueError(key.scenario)
        except (KeyError, TypeError, ValueError):
            raise ExchangeError(f"{where} has a malformed accelbench identity") from None
        status = str(ext["status"]) if ext.get("status") in STATUSES else DONE
        return CellResult(key, status, ext.get("reason"), samples, ext.get("warmup_ms"),
                          dict(ext.get("meta") or {}), ext.get("started"), ext.get("finished"))
    params = _mapping(b.get("params"))
    threads = params.get("threads")
    key = CellKey(str(b.get("fullname") or b.get("name") or f"benchmark{i}"),
                  str(params.get("backend") or "python"), str(params.get("precision") or "f32"),
                  threads if isinstance(threads, int) and threads > 0 else 1)
    return CellResult(key, DONE, None, samples, None,
                      {"imported": "pytest-benchmark", "group": b.get("group")})


def _started(text: Any) -> float:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return time.time()


def _mapping(value: Any) -> Mapping[str, Any]:
    """A JSON object, or an empty one for anything else (files from other tools vary)."""
    return value if isinstance(value, Mapping) else {}
