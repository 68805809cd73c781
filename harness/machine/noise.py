"""A machine's own run-to-run spread, measured by an A/A run and kept with the machine.

Why: a noise threshold below the noise a machine shows turns its noise into "changes". Two
sessions of the same command on one machine (an A/A run) show that noise directly: the 95th
percentile of |change| over their latencies and speed-ups. ``accelbench compare A B
--record-noise`` keeps it in one file per machine id beside the machine's peaks
(``harness.machine.peaks_home``: ``$ACCELBENCH_PEAKS/../noise`` or the user's cache folder), and
every later ``compare`` warns when its threshold is below what that machine has shown.

The record also keeps the session level's standard deviation per metric
(``harness.measure.session_level``): comparisons add it to every change of a session from this
machine, and reports turn it into ``repeat95``, where a repeat session lands.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.machine.peaks_home import peaks_dir, write_json
from harness.measure.nested import SPEEDUP_QUANTILE
from harness.measure.session_level import terms_of


def noise_file(machine_id: str) -> Path:
    return peaks_dir().parent / "noise" / f"{machine_id}.json"


def save(machine_id: str, spread: dict[str, float], sessions: list[str],
         processes: int | None, session_sd: Mapping[str, Any] | None = None) -> Path | None:
    """Keep an A/A spread (and the session-level terms fitted to it, ``session_sd``: metric ->
    ``session_level.Term``) for the machine; None when the folder is not writable."""
    record: dict[str, Any] = {"machine": machine_id, "spread": dict(spread),
                              "sessions": list(sessions), "processes": processes,
                              "measured_at": time.time(), "speedup_quantile": SPEEDUP_QUANTILE,
                              "session_sd": {k: t.as_json()
                                             for k, t in (session_sd or {}).items()}}
    return write_json(noise_file(machine_id), record)


def load(machine_id: str | None) -> dict[str, Any] | None:
    if not machine_id:
        return None
    try:
        found = json.loads(noise_file(machine_id).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or not isinstance(found.get("spread"), dict):
        return None
    if found.get("speedup_quantile") != SPEEDUP_QUANTILE:
        # recorded when speed-ups were read another way (before 2026-12-06: ratios of medians):
        # its speed-up spread and session level say nothing of today's reading; latencies hold
        found["spread"].pop("speedup", None)
        if isinstance(found.get("session_sd"), dict):
            found["session_sd"].pop("speedup", None)
    return found


def below_noise(machine_id: str | None, threshold: float) -> str | None:
    """A warning when ``threshold`` is below the spread the machine's A/A run showed."""
    record = load(machine_id)
    if record is None:
        return None
    seen = {k: v for k, v in record["spread"].items() if isinstance(v, (int, float))}
    worst = max(seen.values(), default=0.0)
    if worst <= threshold:
        return None
    when = time.strftime("%Y-%m-%d", time.gmtime(record.get("measured_at") or 0))
    shown = ", ".join(f"{k} {v:.1%}" for k, v in seen.items())
    return (f"machine {machine_id}: its A/A run of {when} showed a run-to-run spread of {shown} "
            f"(95th percentile of |change|), above the noise threshold {threshold:.0%}: changes "
            f"called real here may be this machine's noise (raise --noise, or time more "
            f"process pairs)")


def session_terms(machine_id: str | None) -> dict[str, Any]:
    """The session-level terms (metric -> ``session_level.Term``) of the machine's A/A record;
    empty when none was recorded, or recorded before the terms were kept."""
    return terms_of(load(machine_id))


def provenance(machine_id: str | None) -> dict[str, Any] | None:
    """What a report or comparison says of the terms it used: the A/A sessions, when, the file."""
    record = load(machine_id)  # one read: the record holds both the terms and their source
    if record is None or not terms_of(record):
        return None
    return {"machine": machine_id, "sessions": record.get("sessions"),
            "measured_at": record.get("measured_at"), "file": str(noise_file(str(machine_id))),
            "session_sd": record.get("session_sd")}


def with_session_level(machine: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored machine with ``session_level`` (``provenance``) when its A/A record has
    session-level terms: what reports turn into ``repeat95``."""
    if isinstance(machine, dict) and machine.get("id"):
        got = provenance(str(machine["id"]))
        if got is not None:
            machine["session_level"] = got
    return machine
