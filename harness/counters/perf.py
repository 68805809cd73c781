"""Hardware counters through ``perf stat``: cycles, instructions, cache and LLC misses.

Why probe by running perf: whether counters work depends on the kernel, its
``perf_event_paranoid`` setting, the container's capabilities and - on VMs - whether the
hypervisor exposes a virtual PMU at all. Only running ``perf stat -e instructions true`` tells
which of those applies, and its output is turned into a reason a person can act on.

Output is read in CSV mode (``-x,``) from a file (``-o``) so a wrapped command's own stderr
cannot be mistaken for counts. Fields: value, unit, event, run time, % running, metric....
"""

from __future__ import annotations

import errno
import functools
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.counters.base import CountContext, CountersUnavailable, Source, register

EVENTS = ("cycles", "instructions", "cache-references", "cache-misses", "LLC-loads", "LLC-load-misses",
          "L1-dcache-load-misses")
PROBE = ("stat", "-x,", "-e", "instructions", "true")
_NOT_COUNTED = ("<not supported>", "<not counted>")
CONTROL_TIMEOUT_S = 10.0


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
            ["perf", "stat", "-x,", "--no-scale", "-o", out, "-e", ",".join(events), *target],
            capture_output=True, text=True,
        )
        text = Path(out).read_text()
    finally:
        Path(out).unlink(missing_ok=True)
    return summarize(parse_stat(text), events, proc.returncode, proc.stderr)


class PerfWindow:
    """``perf stat -p <worker>`` started with its events disabled and switched on and off
    through ``--control`` FIFOs around each timed block, so only the timed window is counted.

    Why not perf_event_open from Python: perf already knows event names, PMU aliases and
    hybrid CPUs; the control FIFO answers ``ack`` so enabling is synchronous with the block.
    """

    def __init__(self, pid: int, events: Sequence[str] = EVENTS) -> None:
        ok, why = availability()
        if not ok:
            raise CountersUnavailable(why)
        self.events = tuple(events)
        self._dir = tempfile.mkdtemp(prefix="accelbench-perf-")
        self._out = Path(self._dir) / "stat.csv"
        ctl, ack = Path(self._dir) / "ctl", Path(self._dir) / "ack"
        os.mkfifo(ctl)
        os.mkfifo(ack)
        self._proc = subprocess.Popen(
            ["perf", "stat", "-x,", "--no-scale", "-o", str(self._out), "-e", ",".join(self.events),
             "--control", f"fifo:{ctl},{ack}", "-D", "-1", "-p", str(pid)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # perf opens the FIFOs once it is attached; a perf that fails to attach never does, so
        # poll instead of blocking in open(), and say why it exited.
        self._ack = os.open(ack, os.O_RDONLY | os.O_NONBLOCK)
        deadline = time.monotonic() + CONTROL_TIMEOUT_S
        while True:
            try:
                self._ctl = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._abandon()
                err = self._proc.stderr.read() if self._proc.stderr else ""
                last = err.strip().splitlines()[-1] if err.strip() else "no message"
                raise CountersUnavailable(f"perf stat did not attach to the worker: {last}")
            time.sleep(0.01)

    def _abandon(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for fd in (getattr(self, "_ctl", None), self._ack):
            if fd is not None:
                os.close(fd)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _send(self, command: str) -> None:
        try:
            os.write(self._ctl, (command + "\n").encode())
        except BrokenPipeError:
            raise CountersUnavailable(f"perf stat exited (code {self._proc.poll()})") from None
        got = b""
        deadline = time.monotonic() + CONTROL_TIMEOUT_S
        while b"\n" not in got:  # perf answers "ack\n" (6.1 adds a NUL after it)
            ready, _, _ = select.select([self._ack], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise CountersUnavailable(f"perf stat did not acknowledge {command!r}")
            try:
                chunk = os.read(self._ack, 64)
            except BlockingIOError:
                continue
            if not chunk and self._proc.poll() is not None:
                raise CountersUnavailable(f"perf stat exited (code {self._proc.returncode})")
            got += chunk

    def resume(self) -> None:
        self._send("enable")

    def pause(self) -> None:
        self._send("disable")

    def stop(self, inferences: int) -> dict[str, Any]:
        try:
            self._proc.send_signal(signal.SIGINT)
            _, err = self._proc.communicate(timeout=30)
            text = self._out.read_text() if self._out.exists() else ""
        finally:
            self._abandon()
        result = summarize(parse_stat(text), self.events, self._proc.returncode or 0, err or "")
        return {**result, "mode": "timed window (perf stat --control)", "inferences": inferences,
                **per_inference(result, inferences)}


def start(ctx: CountContext) -> PerfWindow:
    return PerfWindow(ctx.pid or os.getpid())


def per_inference(result: dict[str, Any], inferences: int) -> dict[str, Any]:
    """Misses per inference (LLC loads misses, else cache-misses) and IPC, from scaled counts."""
    ev = result["events"]
    llc = ev.get("LLC-load-misses")
    basis = "LLC-load-misses"
    if llc is None:
        llc, basis = ev.get("cache-misses"), "cache-misses"
    return {
        "llc_misses": llc,
        "llc_misses_basis": basis if llc is not None else None,
        "misses_per_inference": llc / inferences if llc is not None and inferences else None,
        "llc_miss_rate": result.get("llc_load_miss_rate") or result.get("cache_miss_rate"),
        "l1d_misses_per_inference": (ev["L1-dcache-load-misses"] / inferences
                                     if ev.get("L1-dcache-load-misses") is not None and inferences
                                     else None),
    }


def summarize(counts: dict[str, dict[str, Any]], events: Sequence[str], returncode: int = 0,
              stderr: str = "") -> dict[str, Any]:
    """The result dict from parsed counts; derived ratios are None when an input is missing.

    Multiplexing: when perf had more events than hardware counters, each ran part of the
    time (``running_pct``); counts are read unscaled (``--no-scale``) and scaled here by
    100 / running_pct, so the estimate and how much of it was extrapolated are both recorded.
    """
    raw = {e: counts.get(e, {}).get("value") for e in events}
    pct = {e: counts.get(e, {}).get("running_pct") for e in events}
    values = {e: _scaled(raw[e], pct[e]) for e in events}
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
        "raw_events": raw,
        "unsupported": [e for e in events if e in counts and values[e] is None],
        "absent": [e for e in events if e not in counts],
        "running_pct": pct,
        "multiplexed": any(p is not None and p < 100 for e, p in pct.items() if raw[e]),
        "returncode": returncode,
        "ipc": ratio("instructions", "cycles"),
        "cache_miss_rate": ratio("cache-misses", "cache-references"),
        "llc_load_miss_rate": ratio("LLC-load-misses", "LLC-loads"),
    }


def _scaled(value: Any, pct: float | None) -> Any:
    if value is None:
        return None
    if pct is None or pct >= 100:
        return value
    if pct <= 0:
        return None  # never on a counter: nothing was counted, which is not zero
    return round(value * 100.0 / pct)


SOURCE = register(Source(
    "perf", availability, start,
    "hardware counters of the worker over its timed blocks only (perf stat -p PID --control)",
))
