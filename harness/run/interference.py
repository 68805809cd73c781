"""Did anything else use the CPUs while a block was timed? Per-block "foreign CPU" evidence.

Why per block: a 1-minute load average is far too slow to say *which* blocks were disturbed,
and on a shared machine PyTorch's OpenMP threads suffer far more from oversubscription than
OpenVINO's, so alternating blocks cannot cancel a disturbance: the ratio itself is distorted.
Each block therefore carries its own figure, and a disturbed block pair is set aside.

What "foreign" means: the machine's busy time (``/proc/stat``: user, nice, system, irq,
softirq and steal, all CPUs) over the block, minus the CPU time of the group's own processes:
*every* worker of the group (``/proc/<pid>/stat``, utime+stime and reaped children) and the
coordinator itself. Why every worker and not only the one timing: on a 2-core VM the idle side
of a pair is not idle at once — its OpenMP threads spin for a while after its block, and that
spin is the harness's own cost, present in every pair alike, not another tenant's. Steal time
counts as foreign: the hypervisor gave the CPU to someone else.

The figure is in *cores* (foreign CPU seconds over wall seconds): 0.0 is a quiet machine,
1.0 one other process busy all the time. ``/proc/stat`` counts in clock ticks (10 ms at
USER_HZ=100), so one block of 0.1 s is accurate to about ±0.1–0.3 core; the coordinator judges a
*pair* of blocks (twice the window) against ``SessionConfig.max_foreign_cpu``, whose default
(0.5 core) sits above that quantisation yet well below one competing busy process. Where
``/proc`` cannot be read (not Linux) the figure is None: no evidence, and nothing is set aside.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal (guest is inside user)


@dataclass(frozen=True)
class Reading:
    busy_ticks: int | None  # None: /proc/stat unreadable
    own_ticks: int
    self_s: float
    wall: float


class CpuMeter:
    """Reads the machine's and the group's CPU time; ``between`` gives a block's figures."""

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        try:
            self.tick = float(os.sysconf("SC_CLK_TCK"))
        except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
            self.tick = 100.0

    def read(self, pids: Iterable[int]) -> Reading:
        t = os.times()
        return Reading(self._busy(), sum(self._own(p) for p in pids), t.user + t.system,
                       time.perf_counter())

    def between(self, before: Reading, after: Reading) -> tuple[float | None, float]:
        """(foreign CPU seconds or None, wall seconds) from two readings around a block."""
        wall = after.wall - before.wall
        if before.busy_ticks is None or after.busy_ticks is None:
            return None, wall
        busy = (after.busy_ticks - before.busy_ticks) / self.tick
        own = (after.own_ticks - before.own_ticks) / self.tick + (after.self_s - before.self_s)
        return busy - own, wall

    def _busy(self) -> int | None:
        try:
            with open(f"{self.proc}/stat", encoding="ascii") as f:
                fields = f.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != "cpu":
            return None
        values = [int(v) for v in fields[1:]]
        return sum(values[i] for i in _BUSY_FIELDS if i < len(values))

    def _own(self, pid: int) -> int:
        """utime+stime+cutime+cstime of ``pid`` in ticks; 0 once it is gone."""
        try:
            with open(f"{self.proc}/{pid}/stat", encoding="ascii", errors="replace") as f:
                text = f.read()
        except OSError:
            return 0
        rest = text.rpartition(")")[2].split()  # the name may hold spaces and parentheses
        try:
            return sum(int(rest[i]) for i in (11, 12, 13, 14))  # fields 14-17, 1-based
        except (IndexError, ValueError):
            return 0


def cores(foreign_s: float | None, wall_s: float) -> float | None:
    """Foreign CPU as a number of cores kept busy; None without evidence."""
    if foreign_s is None or wall_s <= 0:
        return None
    return max(0.0, foreign_s / wall_s)


def invalid_reason(pairs: int, foreign: Sequence[float | None], disturbed: Sequence[bool],
                   min_pairs: int, limit: float, waited_s: float, allowance_s: float) -> str:
    """Why a cell is invalid, with the foreign load that was seen (for the report's reader)."""
    seen = [f for f, bad in zip(foreign, disturbed, strict=False) if bad and f is not None]
    load = (f"; foreign CPU in set-aside blocks: median {sorted(seen)[len(seen) // 2]:.2f}, "
            f"max {max(seen):.2f} cores" if seen else "")
    return (f"only {pairs} clean block pairs of the {min_pairs} needed "
            f"({list(disturbed).count(True)} blocks set aside as disturbed, limit {limit:g} "
            f"foreign cores; waited {waited_s:.0f} s of {allowance_s:g} s){load}")


def worth_checking(rounds: int, min_pairs: int) -> bool:
    """Whether to run the (bootstrap) convergence test after this round: every round at first,
    then every ``rounds // 8``-th, so a long cell spends a bounded share of its time on it."""
    return (rounds - min_pairs) % max(1, rounds // 8) == 0


def loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not available on this platform
        return None
