"""A cell measured in several worker processes, spread over the session.

Why: everything fixed for a worker's lifetime — allocation and page layout, thread placement,
what the VM's host is doing that minute — is one draw per process. A cell timed in one process
in one stretch of seconds knows nothing of that draw, and two identical runs then disagree far
beyond their intervals. So the session runs in *passes* over its plan: pass k times every group
in a fresh process pair, and a cell's pairs are minutes apart (the whole plan runs between them).
Its interval resamples processes, then blocks (``harness.measure.nested``).

How the budget is shared (Kalibera & Jones's allocation, within a fixed budget): each cell has
``budget_s`` of timing per side over all its passes. The first ``processes`` passes share it;
from the second pass on, a process stops timing once its own median is known to half the spread
already seen between processes (more blocks cannot narrow what the process level dominates).
The budget that saves pays for more processes: while the nested interval is wider than the
target, the process level dominates and budget remains, passes continue up to
``max_processes``. A process pair timed in a host slow stretch (``harness.measure.slowed``) is
replaced the same way: while fewer than ``processes`` pairs are unslowed, another pass runs; the
slowed pair's timing is refunded to the budget and charged to the wait allowance, as disturbed
blocks are. An extra pass (beyond ``processes``) also pays its start-up — the pair's wall time
less its timing and waits: fork, build, read and compile the IR, warm up; about 0.7 s a pair on
a 2-core Zen 4, as much as its timing in the quick preset — from the same budget, each side its
share, so a noisy hour that asks for many replacements cannot stretch the session (the quick
preset's noisy session of 2026-12-06 ran 60 extra pairs whose start-up alone was 69 s).

Each pass's result is merged into the cell and stored at once (a crash or Ctrl-C keeps every
finished pass; ``--resume`` continues from the passes stored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.measure import slowed
from harness.measure.results import DONE, FAILED, FLAGGED, INVALID, SKIPPED, CellResult

# How a pass's outcome and the cell's so far combine: the more severe wins, except that an
# invalid pass (disturbed by other work) does not undo the clean passes before it.
_SEVERITY = {DONE: 0, INVALID: 1, FLAGGED: 2, SKIPPED: 3, FAILED: 4}
_PER_PASS_KEYS = ("blocks", "disturbed", "block_foreign")


@dataclass(frozen=True)
class PassPlan:
    """What one pass of a group may spend and when its process may stop."""

    index: int  # 0-based; parity, profile, counters and layers run on pass 0 only
    budget_s: float  # timing budget per side for this process
    target: float  # relative CI half-width at which this process stops early
    min_rounds: int  # clean alternated rounds this process needs
    wait_s: float  # what is left of the group's allowance for waiting on a busy machine


def processes_in(cell: CellResult | None) -> int:
    """Passes already merged into a stored cell (1 for a cell from before passes)."""
    if cell is None:
        return 0
    procs = cell.meta.get("processes") if isinstance(cell.meta, dict) else None
    return len(procs) if isinstance(procs, list) else 1


def timed_s(cell: CellResult | None) -> float:
    """Seconds of timed inference the cell has spent (its share of the budget used)."""
    if cell is None or not cell.samples_ms:
        return 0.0
    return float(np.sum(cell.samples_ms)) / 1000.0


def waited_s(cell: CellResult | None) -> float:
    """Seconds the cell's passes spent waiting for a quiet machine (one allowance per group)."""
    procs = cell.meta.get("processes") if cell is not None and isinstance(cell.meta, dict) else None
    if not isinstance(procs, list):
        return 0.0
    return float(sum((p.get("waited") or {}).get("seconds") or 0.0 for p in procs
                     if isinstance(p, dict)))


def finished(cell: CellResult | None) -> bool:
    """A cell whose outcome no further process can change (failed, skipped, flagged)."""
    return cell is not None and cell.status in (FAILED, SKIPPED, FLAGGED)


def merge(prev: CellResult | None, new: CellResult, index: int) -> CellResult:
    """The cell after pass ``index``: samples and per-block records appended, each block
    labelled with its process (``block_process``), the pass's own facts kept in
    ``meta["processes"]``; the first pass's metadata (parity, profile, properties) stays."""
    blocks = new.meta.get("blocks") if isinstance(new.meta.get("blocks"), list) else []
    proc_info = {
        "index": index, "started": new.started, "finished": new.finished,
        "warmup_ms": new.warmup_ms, "blocks": len(blocks), "samples": len(new.samples_ms),
        "status": new.status, "reason": new.reason,
        **{k: new.meta.get(k) for k in ("compile_s", "convert_s", "ir_cache_hit", "loadavg",
                                        "setup_s", "trace_s", "artefact_key_reused",
                                        "max_rss_bytes", "minor_faults_per_inference",
                                        "warmup_block", "waited", "throughput")
           if k in new.meta},
    }
    if prev is None:
        meta = dict(new.meta)
        meta["block_process"] = [index] * len(blocks)
        meta["processes"] = [proc_info]
        return CellResult(new.key, new.status, new.reason, list(new.samples_ms), new.warmup_ms,
                          meta, new.started, new.finished)
    meta = dict(prev.meta)
    for k in _PER_PASS_KEYS:
        old = meta.get(k) if isinstance(meta.get(k), list) else []
        meta[k] = list(old) + list(new.meta.get(k) or [])
    before = meta.get("block_process")
    if not isinstance(before, list):  # a cell stored before processes were recorded
        before = [0] * len(prev.meta.get("blocks") or [])
    meta["block_process"] = list(before) + [index] * len(blocks)
    meta["processes"] = list(meta.get("processes") or []) + [proc_info]
    status, reason = prev.status, prev.reason
    if _SEVERITY[new.status] > _SEVERITY[status] and not (new.status == INVALID):
        status, reason = new.status, f"process {index + 1}: {new.reason}"
    elif status == INVALID and new.status == DONE:
        status, reason = DONE, None  # a clean process after a disturbed one
    return CellResult(prev.key, status, reason, list(prev.samples_ms) + list(new.samples_ms),
                      prev.warmup_ms, meta, prev.started, new.finished)


def plan_pass(cells: list[CellResult | None], index: int, config: Any) -> PassPlan | None:
    """The next pass of a group whose cells (one per backend, None if never timed) are given,
    or None when the group is done: every cell finished, or enough processes and either the
    nested interval meets the target, the process level no longer dominates, the budget is
    spent, or ``max_processes`` is reached."""
    if any(finished(c) for c in cells):
        return None
    slow_s = slowed_s(cells)
    wait_left = config.wait_s - max((waited_s(c) for c in cells), default=0.0) - slow_s
    if wait_left <= 0 and any(c is not None and c.status == INVALID for c in cells):
        return None  # the machine stayed busy for the whole allowance: no more processes
    least = max(math.ceil(config.min_pairs / config.processes), 3)
    spent = max((timed_s(c) for c in cells), default=0.0)
    left = config.budget_s - spent
    spread = _process_spread(cells)
    target = config.target if spread is None else max(config.target, spread / 2)
    if index < config.processes:
        share = left / (config.processes - index)
        return PassPlan(index, max(share, 0.0), target, least, max(wait_left, 0.0))
    if index >= max_processes(config):
        return None
    done = [c for c in cells if c is not None]
    per_process = spent / max(processes_in(done[0]) if done else 1, 1)
    # An extra process costs its start-up (fork, build, read and compile the IR, warm up) as
    # well as its timing: both come out of the budget, each side paying its share of the pair's
    # start-up, so a noisy hour that asks for many replacements cannot stretch the session.
    sides = max(len(done), 1)
    left -= extra_startup_s(done, config.processes) / sides
    start_share = startup_s(done) / sides
    # a replacement for a slowed pair is paid by the refund of that pair's timing; any other
    # extra process by what is left of the budget
    refunded = left + slow_s - start_share
    if wait_left > 0 and refunded >= 0.5 * per_process \
            and _short_of_unslowed(done, config.processes):
        return PassPlan(index, min(refunded, per_process), target, least, wait_left)
    left -= start_share
    if left < 0.5 * per_process or not _wants_more_processes(done, config.target):
        return None
    return PassPlan(index, min(left, per_process), target, least, max(wait_left, 0.0))


def pair_startups(cells: list[CellResult]) -> dict[int, float]:
    """Seconds each process pair of a group spent beyond its timing and its waits for a quiet
    machine, by pass index: the pair's wall time (first start to last finish over the group's
    cells) less every side's timed blocks and waits. Empty when the cells' records do not say
    (stores from before passes); never negative (a simulated worker's samples are not clock
    time)."""
    from harness.measure import stats

    walls: dict[int, list[float]] = {}
    busy: dict[int, float] = {}
    for cell in cells:
        procs = cell.meta.get("processes") if isinstance(cell.meta, dict) else None
        owner = cell.meta.get("block_process") if isinstance(cell.meta, dict) else None
        parts = stats.split_blocks(cell.samples_ms, cell.meta.get("blocks"))
        if not isinstance(procs, list) or not isinstance(owner, list) or parts is None \
                or len(parts) != len(owner):
            return {}
        for part, k in zip(parts, owner, strict=True):
            busy[int(k)] = busy.get(int(k), 0.0) + float(np.sum(part)) / 1000.0
        for proc in procs:
            if not isinstance(proc, dict) or proc.get("started") is None \
                    or proc.get("finished") is None:
                return {}
            k = int(proc.get("index", 0))
            span = walls.setdefault(k, [math.inf, -math.inf])
            span[0] = min(span[0], float(proc["started"]))
            span[1] = max(span[1], float(proc["finished"]))
            busy[k] = busy.get(k, 0.0) + float((proc.get("waited") or {}).get("seconds") or 0.0)
    return {k: max(hi - lo - busy.get(k, 0.0), 0.0) for k, (lo, hi) in walls.items()}


def startup_s(cells: list[CellResult]) -> float:
    """What the next process pair of the group is expected to cost beyond its timing: the
    median start-up of its passes after the first (the first also profiles, counts and checks
    parity), else the first's; 0 when unknown."""
    got = pair_startups(cells)
    later = [v for k, v in got.items() if k > 0]
    if later:
        return float(np.median(later))
    return got.get(0, 0.0)


def extra_startup_s(cells: list[CellResult], processes: int) -> float:
    """Start-up the group's extra passes (beyond ``processes``) have cost so far."""
    return sum(v for k, v in pair_startups(cells).items() if k >= processes)


def _sides(cells: list[CellResult | None]) -> list[list[list[np.ndarray]]] | None:
    """The group's cells' processes, aligned by pair; None when they do not align."""
    from harness.measure.estimate import process_parts

    sides = [process_parts(c) for c in cells if c is not None]
    if not sides or any(not p for p in sides) or len({len(p) for p in sides}) != 1:
        return None
    return sides


def slowed_s(cells: list[CellResult | None]) -> float:
    """Seconds the group's largest cell spent in process pairs timed in a host slow stretch
    (``harness.measure.slowed``): refunded to its budget, charged to its wait allowance."""
    sides = _sides(cells)
    if sides is None:
        return 0.0
    found = slowed.slowed(sides)
    return max((sum(float(np.sum(np.concatenate(parts[k]))) for k in found) / 1000.0
                for parts in sides), default=0.0)


def _short_of_unslowed(cells: list[CellResult], processes: int) -> bool:
    """Fewer process pairs than ``processes`` outside host slow stretches: time another."""
    sides = _sides(cells)
    return sides is not None and bool(slowed.slowed(sides)) and \
        slowed.unslowed(sides) < processes


def max_processes(config: Any) -> int:
    """The most processes a cell may get: ``max_processes``, or twice ``processes``."""
    return config.max_processes or 2 * config.processes


def _process_spread(cells: list[CellResult | None]) -> float | None:
    """Relative spread (SD of log medians) between the processes timed so far, the largest
    over the group's cells; None before two processes."""
    from harness.measure.estimate import process_parts

    worst = None
    for cell in cells:
        parts = process_parts(cell) if cell is not None else None
        if not parts or len(parts) < 2:
            continue
        meds = [float(np.median(np.concatenate(p))) for p in parts]
        sd = float(np.std(np.log(meds), ddof=1))
        worst = sd if worst is None else max(worst, sd)
    return worst


def _wants_more_processes(cells: list[CellResult], target: float) -> bool:
    """Some cell's nested interval is wider than the target and its process level dominates."""
    from harness.measure.estimate import cell_summary

    for cell in cells:
        if cell.status != DONE:
            continue
        s = cell_summary(cell)
        lo, hi = s.get("ci95") or (None, None)
        if lo is None or hi is None or not s.get("median"):
            continue
        wide = (hi - lo) / 2 / s["median"] > target
        var = s.get("variance") or {}
        if wide and var.get("dominant") == "processes":
            return True
    return False
