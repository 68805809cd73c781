"""Runs a session: expands it into comparison groups, times each group, stores every cell.

A *group* is one workload at one precision and thread count, measured on every backend of the
session. Each backend runs in its own worker process; the coordinator alternates timed blocks
between them (A B, B A, A B, ...) so the slow drift of a shared machine — another tenant, thermal
state, a background job — lands on both sides of a speed-up alike instead of biasing one.

A cell is written to the store the moment its group finishes, so an interruption or a crash of
the coordinator itself loses at most the group in flight, and ``--resume`` picks up from there.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import parity, stats
from harness.config import SessionConfig
from harness.results import DONE, FAILED, FLAGGED, SKIPPED, CellKey, CellResult
from harness.run.client import WorkerClient, WorkerCrashed, WorkerError, WorkerTimeout
from harness.run.workload import Workload

MIN_ROUNDS = 3
MIN_BLOCKS = 8  # the fewest block medians whose order-statistic CI is worth reading


@dataclass
class GroupPlan:
    workload: Workload
    precision: str
    threads: int
    backends: tuple[str, ...]  # those still to measure (resume skips finished ones)

    def key(self, backend: str) -> CellKey:
        return CellKey(self.workload.text, backend, self.precision, self.threads)


@dataclass
class _Side:
    """One backend's worker within a group, and what it has measured so far."""

    backend: str
    key: CellKey
    client: WorkerClient | None = None
    result: CellResult | None = None  # set once the side is finished (failed / skipped)
    info: dict[str, Any] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)  # length of each timed block, in order
    block: int = 1
    started: float = field(default_factory=time.time)

    @property
    def active(self) -> bool:
        return self.result is None and self.client is not None


def plan_groups(config: SessionConfig, finished: set[CellKey]) -> list[GroupPlan]:
    plans = []
    for text in config.workloads:
        workload = Workload.from_text(text)
        for precision in config.precisions:
            for threads in config.threads:
                todo = tuple(
                    b for b in config.backends
                    if CellKey(text, b, precision, threads) not in finished
                )
                if todo:
                    plans.append(GroupPlan(workload, precision, threads, todo))
    return plans


class GroupRunner:
    """Times one group. ``on_block`` is told (key, samples so far) after every block."""

    def __init__(self, config: SessionConfig, cache_dir: Path,
                 on_block: Callable[[CellKey, list[float]], None] | None = None) -> None:
        self.config = config
        self.cache_dir = cache_dir
        self.on_block = on_block or (lambda key, samples: None)

    def run(self, plan: GroupPlan) -> list[CellResult]:
        sides = [_Side(b, plan.key(b)) for b in plan.backends]
        self._worker_profile: dict[str, Any] | None = None
        try:
            # Start every worker first: their interpreter and library imports overlap; setups
            # (build, convert, compile) then run one at a time so their timings are clean.
            for side in sides:
                self._start(side, plan)
            for side in sides:
                if side.client is not None:
                    self._setup(side, plan)
            self._check_parity(sides, plan)
            self._time(sides)
            return [self._finish(side, plan) for side in sides]
        except BaseException:  # Ctrl-C, SIGTERM: no polite quit for workers mid-inference
            for side in sides:
                if side.client is not None:
                    side.client.kill()
            raise
        finally:
            for side in sides:
                if side.client is not None:
                    side.client.close()

    # -- stages ---------------------------------------------------------------------------

    def _start(self, side: _Side, plan: GroupPlan) -> None:
        try:
            side.client = WorkerClient(side.backend, plan.threads)
        except (OSError, ValueError) as exc:
            side.result = self._ended(side, FAILED, f"worker did not start: {exc}")

    def _setup(self, side: _Side, plan: GroupPlan) -> None:
        cfg = self.config
        assert side.client is not None
        try:
            reply = side.client.request(
                {"op": "setup", **plan.workload.setup_fields(), "seed": cfg.seed,
                 "precision": plan.precision, "threads": plan.threads,
                 "ir_key": plan.workload.ir_key(cfg.seed), "cache_dir": str(self.cache_dir),
                 "profile": plan.workload.profiled_in_worker and self._worker_profile is None},
                timeout=cfg.timeout_s,
            )
            side.info = dict(reply.get("info", {}))
            if reply.get("profile"):
                self._worker_profile = reply["profile"]
            effective = side.info.get("precision_effective")
            if effective and effective != plan.precision:
                side.info["flag"] = (f"{plan.precision} was asked for but {side.backend} ran "
                                     f"{effective}; its time is not a {plan.precision} figure")
        except WorkerError as exc:
            status = SKIPPED if exc.kind == "availability" else FAILED
            side.result = self._ended(side, status, f"{exc.kind}: {exc}")
        except WorkerTimeout as exc:
            side.result = self._ended(side, FAILED, f"timeout after {exc.seconds:g} s (setup)")
        except WorkerCrashed as exc:
            side.result = self._ended(side, FAILED, f"worker crashed during setup: {exc}")

    def _check_parity(self, sides: list[_Side], plan: GroupPlan) -> None:
        """Compare every candidate's output with the baseline's on the same seeded input."""
        with tempfile.TemporaryDirectory(prefix="accelbench-out-") as tmp:
            outputs: dict[str, np.ndarray] = {}
            for side in sides:
                if not side.active:
                    continue
                path = Path(tmp) / f"{len(outputs)}.npy"
                reply = self._request(side, {"op": "output", "path": str(path)}, self.config.timeout_s)
                if reply is None:
                    continue
                out = np.load(path, allow_pickle=False)
                outputs[side.backend] = out
                if not reply.get("finite", bool(np.isfinite(out).all())):
                    side.info["parity"] = {"ok": False, "finite": False}
                    side.info["flag"] = "outputs hold NaN or Inf"
            base_name = self.config.baseline if self.config.baseline in outputs else None
            reference = self._reference(sides, base_name, Path(tmp))
            for side in sides:
                if side.backend not in outputs or base_name is None or side.backend == base_name:
                    continue
                verdict = parity.judge(outputs[base_name], outputs[side.backend], reference,
                                       plan.precision)
                verdict["baseline"] = base_name
                side.info["parity"] = verdict
                if not verdict["ok"] and "flag" not in side.info:
                    side.info["flag"] = f"outputs differ from {base_name}: {parity.describe(verdict)}"

    def _reference(self, sides: list[_Side], base_name: str | None, tmp: Path) -> np.ndarray | None:
        """float64 output of the model from the baseline's worker; None if it cannot be had."""
        if base_name is None or len(sides) < 2:
            return None
        side = next(s for s in sides if s.backend == base_name)
        path = tmp / "reference.npy"
        try:
            assert side.client is not None
            side.client.request({"op": "reference", "path": str(path)}, timeout=self.config.timeout_s)
        except WorkerError:
            return None  # e.g. a model that cannot run in float64: keep the fixed tolerance
        except (WorkerTimeout, WorkerCrashed) as exc:
            if side.client is not None:
                side.client.kill()
            side.result = self._ended(side, FAILED, f"worker failed computing the f64 reference: {exc}")
            return None
        return np.load(path, allow_pickle=False)

    def _time(self, sides: list[_Side]) -> None:
        cfg = self.config
        for side in sides:
            first_ms = side.info.get("first_ms") or 1.0
            side.block = max(1, int(cfg.block_s * 1000 / max(first_ms, 1e-3)))
        self._warm_up(sides)
        deadline = time.monotonic() + cfg.budget_s * max(1, sum(s.active for s in sides))
        rounds = 0
        load_before = _loadavg()
        while any(s.active for s in sides):
            order = sides if rounds % 2 == 0 else list(reversed(sides))
            for side in order:
                if side.active:
                    self._time_block(side)
            rounds += 1
            if rounds >= MIN_ROUNDS and self._converged(sides):
                break
            if time.monotonic() >= deadline:
                break
        # Other work on the machine is the main threat to these figures (a descheduled OpenMP
        # thread stalls every barrier); the 1-minute load average before and after says how
        # busy it was, and reports warn when it exceeded the cores.
        for side in sides:
            side.info["loadavg"] = {"before": load_before, "after": _loadavg(), "rounds": rounds}

    def _warm_up(self, sides: list[_Side]) -> None:
        """One untimed block per side before the timed ones.

        Why more than the first inference: allocator pools, oneDNN primitive caches, thread pools
        and CPU caches keep settling for tens of iterations; timing them would widen the CI and
        bias the median of short cells upwards. The block's median is kept in the metadata.
        """
        for side in sides:
            if side.active:
                self._time_block(side)
                side.info["warmup_block"] = {"n": len(side.samples),
                                             "median_ms": float(np.median(side.samples))
                                             if side.samples else None}
                side.samples = []
                side.blocks = []

    def _time_block(self, side: _Side) -> None:
        expected_s = side.block * max(side.info.get("first_ms") or 1.0, 0.01) / 1000
        reply = self._request(side, {"op": "time", "n": side.block}, 60 + 20 * expected_s)
        if reply is None:
            return
        samples = [float(v) for v in reply["samples_ms"]]
        side.samples.extend(samples)
        side.blocks.append(len(samples))
        # Re-size blocks from the measured median: the first inference is often slower.
        med = float(np.median(samples)) if samples else 0.0
        if med > 0:
            side.block = max(1, int(self.config.block_s * 1000 / med))
        self.on_block(side.key, side.samples)

    def _converged(self, sides: list[_Side]) -> bool:
        """Every active side has enough samples and a tight CI of its block medians.

        Why block medians: iterations inside a block are correlated (the machine's state
        drifts over seconds, not iterations), so a CI over single iterations looks tight while
        the median still wanders between blocks; judging blocks stops only once they agree.
        """
        for side in sides:
            if not side.active:
                continue
            if len(side.samples) < self.config.min_samples or len(side.blocks) < MIN_BLOCKS:
                return False
            if stats.relative_halfwidth(_block_medians(side)) > self.config.target:
                return False
        return True

    def _finish(self, side: _Side, plan: GroupPlan) -> CellResult:
        if side.result is not None:
            return side.result
        reply = self._request(side, {"op": "stats"}, 30)
        if side.result is not None:  # the worker died after timing
            side.result.samples_ms = side.samples
            return side.result
        info = dict(side.info)
        flag = info.pop("flag", None)
        warmup = info.pop("first_ms", None)
        info.update(plan.workload.profile_meta(self._worker_profile))
        info["max_rss_bytes"] = (reply or {}).get("max_rss_bytes")
        info["target"] = self.config.target
        info["blocks"] = side.blocks
        info["converged"] = (len(side.blocks) >= MIN_BLOCKS and stats.relative_halfwidth(
            _block_medians(side)) <= self.config.target)
        return CellResult(side.key, FLAGGED if flag else DONE, flag, side.samples, warmup,
                          info, side.started, time.time())

    # -- helpers --------------------------------------------------------------------------

    def _request(self, side: _Side, msg: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send to a side's worker; on any failure end the side with the cause and return None."""
        assert side.client is not None
        try:
            return side.client.request(msg, timeout=timeout)
        except WorkerTimeout as exc:
            reason = f"timeout after {exc.seconds:g} s ({msg['op']})"
        except WorkerCrashed as exc:
            reason = f"worker crashed during {msg['op']}: {exc}"
        except WorkerError as exc:
            reason = f"{exc.kind}: {exc}"
        side.client.kill()
        side.result = self._ended(side, FAILED, reason)
        side.result.samples_ms = list(side.samples)
        return None

    @staticmethod
    def _ended(side: _Side, status: str, reason: str) -> CellResult:
        return CellResult(side.key, status, reason, [], None, dict(side.info), side.started, time.time())


def _block_medians(side: _Side) -> list[float]:
    out, start = [], 0
    for n in side.blocks:
        out.append(float(np.median(side.samples[start:start + n])))
        start += n
    return out


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not available on this platform
        return None


def iterate_cells(plans: list[GroupPlan], runner: GroupRunner) -> Iterator[CellResult]:
    for plan in plans:
        yield from runner.run(plan)
