"""Times one comparison group: its backends' workers, alternating blocks, parity, evidence.

A *group* (``harness.run.plan``) is one workload at one precision and thread count, measured on
every backend of the session. Each backend runs in its own worker process; the coordinator
alternates timed blocks between them (A B, B A, A B, ...) so the slow drift of a shared
machine — thermal state, a background job — lands on both sides of a speed-up alike.

Alternation cannot cancel everything: another process competing for the cores distorts the
ratio itself (PyTorch's OpenMP threads suffer far more from it than OpenVINO's). So every
block carries its own foreign-CPU figure (``harness.run.interference``); a round (one block per
side) whose foreign load exceeds ``max_foreign_cpu`` is set aside — kept and marked, never in
a figure — and the runner waits with back-off for a quiet machine, within ``wait_s``, apart
from the timing budget. A cell that ends with fewer than ``min_pairs`` clean rounds is
``invalid``: no speed-up is ever computed from it.

Whether the backends computed the same function is asked on a cell's first pass
(``harness.run.parity_check``); a worker's side keeps its evidence (``harness.run.side``).

Workers come from an injectable factory, so every rule here is unit-tested in-process with a
synthetic block source (``tests/test_coordinator.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness.measure import stats
from harness.measure.results import DONE, FAILED, FLAGGED, INVALID, SKIPPED, CellKey, CellResult
from harness.run import protocol
from harness.run.client import WorkerClient, WorkerCrashed, WorkerError, WorkerTimeout
from harness.run.config import SessionConfig
from harness.run.interference import CpuMeter, cores, invalid_reason, loadavg, worth_checking
from harness.run.parity_check import check_parity
from harness.run.passes import PassPlan
from harness.run.plan import GroupPlan
from harness.run.side import Side as _Side
from harness.run.side import WorkerFactory

MIN_ROUNDS = 3
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.5, 8.0
LAYER_PASSES = 20  # profiled inferences per cell for ``run --layers`` (medians per layer)


class GroupRunner:
    """Times one group. ``on_block`` is told (key, clean samples so far) after every block;
    ``on_wait`` gets a one-line message whenever the runner waits for a quiet machine."""

    def __init__(self, config: SessionConfig, cache_dir: Path,
                 on_block: Callable[[CellKey, list[float]], None] | None = None, *,
                 worker_factory: WorkerFactory = WorkerClient, meter: Any = None,
                 on_wait: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.cache_dir = cache_dir
        self.on_block = on_block or (lambda key, samples: None)
        self.on_wait = on_wait or (lambda message: None)
        self.worker_factory = worker_factory
        self.meter = meter or CpuMeter()
        self.sleep = sleep
        # each built-in spec cell's artefact key, from its first process this session: later
        # processes reuse it instead of tracing the model again (PrepareContext.known_artefact_key)
        self.artefact_keys: dict[CellKey, str] = {}

    def run(self, plan: GroupPlan, step: PassPlan | None = None) -> list[CellResult]:
        """One process pair (one pass, ``harness.run.passes``) of the group: fresh workers,
        set up, parity on the first pass only, timed; a result per side for this pass."""
        self._step = step or PassPlan(0, self.config.budget_s, self.config.target,
                                      max(self.config.min_pairs, MIN_ROUNDS), self.config.wait_s)
        sides = [_Side(b, plan.key(b)) for b in plan.backends]
        self._worker_profile: dict[str, Any] | None = None
        self._waited = {"seconds": 0.0, "pauses": 0}
        try:
            # Start every worker first: their interpreter and library imports overlap; setups
            # (build, convert, compile) then run one at a time so their timings are clean.
            for side in sides:
                self._start(side, plan)
            self._pids = [s.client.pid for s in sides if s.client is not None]
            for side in sides:
                if side.client is not None:
                    self._setup(side, plan)
            if self._step.index == 0:  # outputs do not change between processes
                check_parity(sides, plan.precision, self.config.baseline, self.config.timeout_s,
                             self._request)
            self._time(sides)
            if self.config.layers and self._step.index == 0:
                self._layers(sides)
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
            side.client = self.worker_factory(side.backend, plan.threads)
        except (OSError, ValueError) as exc:
            side.end(FAILED, f"worker did not start: {exc}")

    def _setup(self, side: _Side, plan: GroupPlan) -> None:
        """Build, convert, compile; the first side that sets up also profiles the model.

        Why the worker profiles: models are only ever built in workers, so one that crashes
        or hangs while being profiled costs its cells, never the session — for a built-in spec
        and a user's file alike.
        """
        cfg = self.config
        assert side.client is not None
        known = self.artefact_keys.get(side.key)
        try:
            reply = side.client.request(
                {"op": protocol.SETUP, **plan.workload.setup_fields(), "seed": cfg.seed,
                 "precision": plan.precision, "threads": plan.threads,
                 "scenario": plan.scenario, "first_pass": self._step.index == 0,
                 "ir_key": plan.workload.ir_key(cfg.seed), "cache_dir": str(self.cache_dir),
                 "profile": self._worker_profile is None and self._step.index == 0,
                 "counters": cfg.counters if self._step.index == 0 else "off",
                 **({"known_profile": self._worker_profile}
                    if self._worker_profile is not None and self._step.index == 0
                    and cfg.counters != "off" else {}),
                 **({"known_artefact_key": known} if known else {})},
                timeout=cfg.timeout_s,
            )
            side.info = dict(reply.get("info", {}))
            # A user's model file is traced every time (no key kept): what its imports build
            # may change between processes; a built-in spec builds the same network all session.
            if plan.workload.model_ref is None and isinstance(side.info.get("artefact_key"), str):
                self.artefact_keys[side.key] = side.info["artefact_key"]
            if reply.get("profile"):
                self._worker_profile = reply["profile"]
            effective = side.info.get("precision_effective")
            if effective and effective != plan.precision:
                side.flag(f"{plan.precision} was asked for but {side.backend} ran "
                          f"{effective}; its time is not a {plan.precision} figure")
        except WorkerError as exc:
            status = SKIPPED if exc.kind == protocol.AVAILABILITY else FAILED
            side.end(status, f"{exc.kind}: {exc}")
        except WorkerTimeout as exc:
            side.end(FAILED, f"timeout after {exc.seconds:g} s (setup)")
        except WorkerCrashed as exc:
            side.end(FAILED, f"worker crashed during setup: {exc}")

    def _time(self, sides: list[_Side]) -> None:
        """Rounds of one block per side, alternating order, until converged or out of time.

        Two clocks: clean rounds spend the timing budget (``budget_s`` per side); disturbed
        rounds and the pauses after them spend the waiting allowance (``wait_s``), so a busy
        machine cannot eat the budget and a session on one still ends. The budget never stops
        a cell before ``min_pairs`` clean rounds: those cost at most ``min_pairs`` capped blocks
        per side (or one inference each, for a model slower than the cap).
        """
        cfg = self.config
        for side in sides:
            first_ms = side.info.get("first_ms") or 1.0
            side.block = max(1, int(cfg.block_s * 1000 / max(first_ms, 1e-3)))
        self._warm_up(sides)
        load_before = loadavg()
        step = self._step
        budget = step.budget_s * max(1, sum(s.active for s in sides))
        clean_s, clean_rounds, rounds, backoff = 0.0, 0, 0, FIRST_BACKOFF_S
        while any(s.active for s in sides):
            order = sides if rounds % 2 == 0 else list(reversed(sides))
            tried = [(side, self._time_block(side)) for side in order if side.active]
            timed = [(side, got) for side, got in tried if got is not None]
            rounds += 1
            if not timed:
                continue
            wall = sum(got[1] for _, got in timed)
            known = [got[0] for _, got in timed if got[0] is not None]
            load = cores(sum(known), wall) if len(known) == len(timed) else None
            disturbed = load is not None and load > cfg.max_foreign_cpu
            for side, _ in timed:
                side.disturbed.append(disturbed)
                self.on_block(side.key, side.clean()[0])
            if disturbed:
                self._waited["seconds"] += wall
                if self._waited["seconds"] >= step.wait_s:
                    break
                pause = min(backoff, step.wait_s - self._waited["seconds"])
                self.on_wait(f"waiting for a quiet machine: other work used {load:.2f} cores "
                             f"(limit {cfg.max_foreign_cpu:g}); pausing {pause:.1f} s, "
                             f"{self._waited['seconds']:.0f}/{step.wait_s:g} s of the allowance used")
                self.sleep(pause)
                self._waited["seconds"] += pause
                self._waited["pauses"] += 1
                backoff = min(2 * backoff, MAX_BACKOFF_S)
                continue
            backoff = FIRST_BACKOFF_S
            clean_s += wall
            clean_rounds += 1
            if clean_rounds >= max(step.min_rounds, MIN_ROUNDS) and (
                    clean_s >= budget - 1e-9 or (worth_checking(clean_rounds, cfg.min_pairs)
                                                 and self._converged(sides, step.target))):
                break
        # The 1-minute load average before and after, kept for reports of old and new stores
        # alike; the per-block foreign-CPU figures are what decide.
        for side in sides:
            side.info["loadavg"] = {"before": load_before, "after": loadavg(), "rounds": rounds}

    def _warm_up(self, sides: list[_Side]) -> None:
        """One untimed block per side before the timed ones.

        Why more than the first inference: allocator pools, oneDNN primitive caches, thread pools
        and CPU caches keep settling for tens of iterations; timing them would widen the CI and
        bias the median of short cells upwards. The block's median is kept in the metadata.
        """
        for side in sides:
            if side.active:
                got = self._time_block(side, count=False)  # counters see timed blocks only
                side.info["warmup_block"] = {
                    "n": len(side.samples),
                    "median_ms": float(np.median(side.samples)) if side.samples else None,
                    "foreign_cores": cores(*got) if got else None}
                side.samples, side.blocks, side.foreign = [], [], []

    def _time_block(self, side: _Side, count: bool = True) -> tuple[float | None, float] | None:
        """One capped block; (foreign CPU s, wall s) measured around it, or None if it failed."""
        cap_s = self.config.block_cap_s
        pids = self._pids
        before = self.meter.read(pids)
        slowest_s = max(cap_s, (side.info.get("first_ms") or 0.0) / 1000)  # one inference may pass the cap
        reply = self._request(side, {"op": protocol.TIME, "n": side.block, "max_s": cap_s,
                               "count": count},
                              60 + 20 * slowest_s)
        if reply is None:
            return None
        got = self.meter.between(before, self.meter.read(pids))
        samples = [float(v) for v in reply["samples_ms"]]
        side.samples.extend(samples)
        side.blocks.append(len(samples))
        load = cores(*got)
        side.foreign.append(None if load is None else round(load, 3))
        # Re-size blocks from the measured median: the first inference is often slower.
        med = float(np.median(samples)) if samples else 0.0
        if med > 0:
            side.block = max(1, int(self.config.block_s * 1000 / med))
        return got

    def _converged(self, sides: list[_Side], target: float) -> bool:
        """Every active side's clean samples meet the pass's target (``stats.converged``)."""
        cfg = self.config
        return all(stats.converged(*side.clean(), target, cfg.min_samples)
                   for side in sides if side.active)

    def _finish(self, side: _Side, plan: GroupPlan) -> CellResult:
        if side.result is not None:
            return side.result
        reply = self._request(side, {"op": protocol.STATS}, 30)
        counted = self._counters(side)
        if side.result is not None:  # the worker died after timing
            side.result.samples_ms = side.samples
            return side.result
        info = dict(side.info)
        flag = info.pop("flag", None)
        warmup = info.pop("first_ms", None)
        info.update(plan.workload.profile_meta(self._worker_profile))
        info["max_rss_bytes"] = (reply or {}).get("max_rss_bytes")
        info["minor_faults_per_inference"] = (reply or {}).get("minor_faults_per_inference")
        facts = (reply or {}).get("throughput")
        if isinstance(facts, dict):  # OpenVINO's queue: request percentiles, requests in flight
            info["throughput"] = {**(info.get("throughput") or {}), **facts}
        clean_samples, clean_blocks = side.clean()
        if counted is not None and self._step.index == 0:  # harness.counters: the source's figures + the derived ones
            from harness.counters import derive

            info["counters"] = derive(  # achieved GFLOP/s from the clean blocks' median only
                counted, flops=info.get("flops"), backend=side.backend, peaks=self.peaks,
                precision=plan.precision,
                median_ms=_per_inference(clean_samples, info))
        cfg = self.config
        info.update(target=cfg.target, min_samples=cfg.min_samples, blocks=side.blocks,
                    block_foreign=side.foreign, disturbed=side.disturbed,
                    max_foreign_cpu=cfg.max_foreign_cpu, min_pairs=cfg.min_pairs,
                    waited=dict(self._waited, allowance_s=self._step.wait_s),
                    converged=stats.converged(clean_samples, clean_blocks, cfg.target,
                                              cfg.min_samples))
        status, reason = (FLAGGED, flag) if flag else (DONE, None)
        pairs = len(clean_blocks or [])
        if not flag and pairs < self._step.min_rounds:
            status, reason = INVALID, invalid_reason(
                pairs, side.foreign, side.disturbed, self._step.min_rounds, cfg.max_foreign_cpu,
                self._waited["seconds"], self._step.wait_s)
        return CellResult(side.key, status, reason, side.samples, warmup, info,
                          side.started, time.time())

    # -- counters (harness.counters) ------------------------------------------------------

    peaks: dict[str, Any] | None = None  # the machine's stored peaks (set by the session)

    def _counters(self, side: _Side) -> dict[str, Any] | None:
        """The worker's counter figures; a failure costs the figures, never the timing."""
        if side.result is not None or side.client is None:
            return None
        from harness.counters.cell import request_counters

        return request_counters(side.client, self.config.counters)

    def _layers(self, sides: list[_Side]) -> None:
        """Per-layer tables (``run --layers``), after every timed block so profiling never
        touches a reported latency. A backend that cannot time layers keeps its cell and says
        why in meta["layers"]["error"]; a worker that dies here ends its cell, samples kept."""
        for side in sides:
            if side.client is None or side.result is not None:
                continue
            try:
                reply = side.client.request({"op": protocol.LAYERS, "n": LAYER_PASSES},
                                            timeout=self.config.timeout_s)
                side.info["layers"] = {k: reply[k] for k in ("layers", "units", "whole_ms", "n")}
            except WorkerError as exc:
                side.info["layers"] = {"error": f"{exc.kind}: {exc}"}
            except (WorkerTimeout, WorkerCrashed) as exc:
                side.end(FAILED, f"per-layer pass: {exc}", keep_samples=True)

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
        side.end(FAILED, reason, keep_samples=True)
        return None



def _per_inference(samples: list[float], info: dict[str, Any]) -> float | None:
    """The median time of one inference of the model (what its FLOPs are counted for): a
    throughput sample spans ``images_per_sample / batch`` inferences."""
    if not samples:
        return None
    ipt, batch = info.get("images_per_sample") or 1, info.get("batch") or 1
    return float(np.median(samples)) / max(ipt / batch, 1e-9)
