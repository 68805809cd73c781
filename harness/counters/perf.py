"""Hardware counters through ``perf stat``: cycles, instructions, cache and LLC misses.

Why probe by running perf: whether counters work depends on the kernel, its
``perf_event_paranoid`` setting, the container's capabilities and - on VMs - whether the
hypervisor exposes a virtual PMU at all. Only running ``perf stat -e instructions true`` tells
which of those applies, and its output is turned into a reason a person can act on.

Output is read in CSV mode (``-x,``) from a file (``-o``) so a wrapped command's own stderr
cannot be mistaken for counts. Fields: value, unit, event, run time, % running, metric....
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.counters.base import CountersUnavailable, Source, register

EVENTS = ("cycles", "instructions", "cache-references", "cache-misses", "LLC-loads", "LLC-load-misses")
PROBE = ("stat", "-x,", "-e", "instructions", "true")
_NOT_COUNTED = ("<not supported>", "<not counted>")


def parse_probe(returncode: int, output: str) -> tuple[bool, str]:
    """Turn the output of ``perf stat [-x,] -e instructions true`` into ``(ok, why)``."""
    text = output.strip()
    low = text.lower()
    if "perf not found for kernel" in low:
        return False, "the perf wrapper has no binary for this kernel (install linux-tools for `uname -r`)"
    if "perf_event_paranoid" in low or "no permission" in low or "permission denied" in low \
            or "access to performance monitoring" in low:
        level = re.search(r"perf_event_paranoid setting is (-?\d+)", text)
        now = f" (kernel.perf_event_paranoid={level.group(1)})" if level else ""
        return False, (f"perf may not read counters here{now}; run as root, grant CAP_PERFMON, or "
                       "lower it: sudo sysctl kernel.perf_event_paranoid=1")
    if "<not supported>" in low:
        return False, ("perf runs but the CPU exposes no hardware counters (instructions: <not supported>);"
                       " usual on VMs without a virtual PMU")
    if "<not counted>" in low:
        return False, "perf runs but the instructions counter was not counted (PMU busy or disabled)"
    if returncode != 0:
        last = text.splitlines()[-1] if text else "no output"
        return False, f"perf stat failed (exit {returncode}): {last}"
    counts = parse_stat(text)
    value = counts.get("instructions", {}).get("value")
    if value:
        return True, f"hardware counters readable (instructions={value} for `true`)"
    return False, f"unrecognised perf stat output: {text[:200]!r}"


def parse_stat(output: str) -> dict[str, dict[str, Any]]:
    """``perf stat -x,`` lines as ``{event: {"value", "unit", "running_pct", "status"}}``.

    ``value`` is None (never 0) for an event perf could not count; event modifiers
    (``instructions:u``, ``cpu_core/cycles/``) are stripped so callers see the names they asked for.
    """
    events: dict[str, dict[str, Any]] = {}
    for line in output.splitlines():
        fields = line.strip().split(",")
        if len(fields) < 3 or line.startswith("#"):
            continue
        raw, unit, name = fields[0].strip(), fields[1].strip(), _base_event(fields[2])
        if not name:
            continue
        if raw in _NOT_COUNTED:
            value, status = None, raw.strip("<>")
        else:
            try:
                number = float(raw)
            except ValueError:
                continue
            value, status = (int(number) if number.is_integer() else number), "counted"
        pct = _float(fields[4]) if len(fields) > 4 else None
        events[name] = {"value": value, "unit": unit, "running_pct": pct, "status": status}
    return events


def _base_event(field: str) -> str:
    name = field.strip()
    if "/" in name:  # hybrid PMU: cpu_core/cycles/
        parts = [p for p in name.split("/") if p]
        name = parts[1] if len(parts) > 1 else parts[0]
    return name.split(":")[0]


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@functools.cache
def availability() -> tuple[bool, str]:
    binary = shutil.which("perf")
    if binary is None:
        return False, "perf not found on PATH (install linux-tools / linux-perf)"
    try:
        proc = subprocess.run([binary, *PROBE], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"perf could not be run: {exc}"
    return parse_probe(proc.returncode, proc.stdout + proc.stderr)


def perf_attach(pid: int, seconds: float, events: Sequence[str] = EVENTS) -> dict[str, Any]:
    """Count ``events`` in process ``pid`` (all its threads) for ``seconds`` of wall time."""
    result = _stat(["-p", str(pid), "--", "sleep", f"{seconds:g}"], events)
    return {**result, "mode": "attach", "pid": pid, "seconds": seconds}


def perf_run(argv: Sequence[str], events: Sequence[str] = EVENTS) -> dict[str, Any]:
    """Count ``events`` over a whole command (``perf stat -- argv``)."""
    result = _stat(["--", *argv], events)
    return {**result, "mode": "run", "argv": list(argv)}


def _stat(target: list[str], events: Sequence[str]) -> dict[str, Any]:
    ok, why = availability()
    if not ok:
        raise CountersUnavailable(why)
    fd, out = tempfile.mkstemp(prefix="accelbench-perf-", suffix=".csv")
    os.close(fd)
    try:
        proc = subprocess.run(
            ["perf", "stat", "-x,", "-o", out, "-e", ",".join(events), *target],
            capture_output=True, text=True,
        )
        text = Path(out).read_text()
    finally:
        Path(out).unlink(missing_ok=True)
    return summarize(parse_stat(text), events, proc.returncode, proc.stderr)


def summarize(counts: dict[str, dict[str, Any]], events: Sequence[str], returncode: int = 0,
              stderr: str = "") -> dict[str, Any]:
    """The result dict from parsed counts; derived ratios are None when an input is missing."""
    values = {e: counts.get(e, {}).get("value") for e in events}
    if all(v is None for v in values.values()):
        seen = ", ".join(f"{e}: {counts[e]['status']}" for e in events if e in counts)
        tail = stderr.strip().splitlines()[-1:] if stderr.strip() else []
        why = seen or (f"exit {returncode}: {tail[0]}" if tail else f"exit {returncode}, no output")
        raise CountersUnavailable(f"perf counted none of the events ({why})")

    def ratio(a: str, b: str) -> float | None:
        x, y = values.get(a), values.get(b)
        return x / y if x is not None and y else None

    return {
        "source": "perf",
        "events": values,
        "unsupported": [e for e, v in values.items() if v is None],
        "running_pct": {e: counts.get(e, {}).get("running_pct") for e in events},
        "returncode": returncode,
        "ipc": ratio("instructions", "cycles"),
        "cache_miss_rate": ratio("cache-misses", "cache-references"),
        "llc_load_miss_rate": ratio("LLC-load-misses", "LLC-loads"),
    }


SOURCE = register(Source(
    "perf", availability, perf_attach,
    "hardware counters of a running worker process (perf stat -p PID)",
))
