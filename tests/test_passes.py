"""Cells measured in several worker process pairs spread over the session (issue 21):
``harness.run.passes`` and ``run_session``'s passes, with fake workers (no process, no model).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.measure import stats
from harness.measure.estimate import cell_speedup, cell_summary
from harness.measure.results import DONE, FAILED, INVALID, CellKey, CellResult
from harness.run import passes
from harness.run.config import ConfigError, SessionConfig
from harness.run.coordinator import GroupRunner
from harness.run.session import run_session
from harness.store import Store
from reports.tables import build_report
from tests.test_coordinator import BACKENDS, BlockSource, ScriptedMeter

SPECS = ("plain:depth=1,width=8,res=32", "plain:depth=2,width=8,res=32")


class ProcessSource(BlockSource):
    """Each worker process gets a latency multiplier of its own (``scales``, in start order
    per backend), as allocation and placement give real processes; the log of every
    request's op is kept."""

    def __init__(self, scales: list[float], unit_ms: float = 1.0, jitter: float = 0.002,
                 per_backend: dict[str, list[float]] | None = None) -> None:
        super().__init__(latency=self._latency)
        self.scales, self.unit_ms, self.jitter = scales, unit_ms, jitter
        self.per_backend = per_backend or {}
        self.started: dict[str, int] = {}
        self.ops: list[tuple[str, str]] = []

    def factory(self, backend: str, threads: int):
        self.started[backend] = self.started.get(backend, 0) + 1
        worker = super().factory(backend, threads)
        real = worker.request

        def request(msg: dict[str, Any], timeout: float) -> dict[str, Any]:
            self.ops.append((backend, msg["op"]))
            return real(msg, timeout)

        worker.request = request  # type: ignore[method-assign]
        return worker

    def _latency(self, backend: str, block: int) -> float:
        k = self.started[backend] - 1
        base = self.unit_ms if backend == "torch" else self.unit_ms / 2
        scales = self.per_backend.get(backend, self.scales)
        return base * scales[k % len(scales)] * (1 + self.jitter * (block % 5))


def _session(tmp_path: Path, source: ProcessSource, **overrides: Any):
    settings = {"budget_s": 3.0, "target": 0.01, "min_samples": 30, "block_s": 0.1,
                "max_foreign_cpu": 0.5, "wait_s": 10.0, "min_pairs": 6, **overrides}
    config = SessionConfig(workloads=SPECS, backends=BACKENDS, threads=(2,), **settings)
    runner = GroupRunner(config, tmp_path / "cache", worker_factory=source.factory,
                         meter=ScriptedMeter(source), sleep=lambda s: None)
    store = Store.open(tmp_path / "s.sqlite")
    seen: list[tuple[int, str]] = []
    out = run_session(store, tmp_path / "s.sqlite", config, argv=["test"], runner=runner,
                      on_cell=lambda d, t, r: seen.append((len(r.meta["processes"]),
                                                            r.key.backend)))
    return out, store, seen


def test_each_cell_gets_its_process_pairs_spread_over_the_session(tmp_path: Path) -> None:
    source = ProcessSource([1.0, 1.0, 1.0])
    out, store, seen = _session(tmp_path, source, processes=3, max_processes=3)
    assert len(out.cells) == 4 and all(c.status == DONE for c in out.cells)
    for cell in out.cells:
        procs = cell.meta["processes"]
        assert [p["index"] for p in procs] == [0, 1, 2]
        labels = cell.meta["block_process"]
        assert len(labels) == len(cell.meta["blocks"]) == len(cell.meta["disturbed"])
        assert sorted(set(labels)) == [0, 1, 2]
        assert sum(cell.meta["blocks"]) == len(cell.samples_ms)
    # passes run over the whole plan: both specs' first process before any second one
    starts = {(c.key.spec, p["index"]): p["started"] for c in out.cells
              for p in c.meta["processes"] if c.key.backend == "torch"}
    assert starts[SPECS[1], 0] < starts[SPECS[0], 1]
    # six worker pairs, parity and the profile asked for once per cell only
    assert source.started == {"torch": 6, "openvino:CPU": 6}
    assert sum(op == "output" for _, op in source.ops) == 4
    assert sum(bool(s.get("profile")) for s in source.setups) == 2
    # the store held the cell after every pass (a crash keeps finished passes)
    assert [n for n, _ in seen] == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    assert len(store.cells(out.info.id)) == 4


def test_interval_resamples_processes_and_widens_with_their_spread(tmp_path: Path) -> None:
    calm, _, _ = _session(tmp_path / "calm", ProcessSource([1.0]), processes=3, max_processes=3)
    noisy, _, _ = _session(tmp_path / "noisy", ProcessSource([1.0, 1.12, 0.92]), processes=3,
                           max_processes=3)
    c, n = cell_summary(calm.cells[0]), cell_summary(noisy.cells[0])
    assert c["ci_method"] == n["ci_method"] == "nested" and n["processes"] == 3
    assert n["variance"]["dominant"] == "processes"
    half = lambda s: (s["ci95"][1] - s["ci95"][0]) / 2 / s["median"]  # noqa: E731
    assert half(n) > 5 * half(c)
    # "converged" judges the interval the report prints: the nested one
    assert calm.cells[0].evidence()["converged"] is True
    assert noisy.cells[0].evidence()["converged"] is False
    # the spread between processes (0.92..1.12, below the slow-stretch factor) lies inside
    # the noisy cell's interval
    assert n["ci95"][0] < 0.92 * 1.0 * 1.001 and n["ci95"][1] > 1.12 * 1.0
    # the speed-up: both sides had the same multiplier per process pair, so it cancels
    sp = cell_speedup(noisy.cells[0], noisy.cells[1])
    assert sp["ci_method"] == "nested-pairs" and sp["processes"] == 3
    assert sp["ci95"][0] <= 2.0 <= sp["ci95"][1]
    assert (sp["ci95"][1] - sp["ci95"][0]) / 2 / sp["speedup"] < 0.02


def test_adaptive_stop_adds_processes_where_the_process_level_dominates(tmp_path: Path) -> None:
    calm, _, _ = _session(tmp_path / "calm", ProcessSource([1.0]), processes=3,
                          max_processes=6, budget_s=30.0)
    noisy, _, _ = _session(tmp_path / "noisy", ProcessSource([1.0, 1.15, 0.95, 1.1]),
                           processes=3, max_processes=6, budget_s=30.0)
    assert {len(c.meta["processes"]) for c in calm.cells} == {3}
    assert {len(c.meta["processes"]) for c in noisy.cells} == {6}


def test_the_budget_stays_a_budget_over_all_processes(tmp_path: Path) -> None:
    """A cell that never converges (blocks 0-120% apart, processes 1.2x apart) spends its
    budget and no more, however many processes it gets. Torch's 20 samples of 5 ms fill the
    0.1 s that the scripted meter reads per block, so timed time and wall agree."""
    out, _, _ = _session(tmp_path, ProcessSource([1.0, 1.15, 0.96], unit_ms=5.0, jitter=0.3),
                         processes=3, max_processes=6, budget_s=3.0)
    torch_cells = [c for c in out.cells if c.key.backend == "torch"]
    for cell in torch_cells:
        timed = sum(cell.samples_ms) / 1000
        passes_run = len(cell.meta["processes"])
        # at most one round past its share in each process, never a whole extra share
        assert 0.8 * 3.0 <= timed <= 3.0 + 0.1 * passes_run, (timed, passes_run)
        assert passes_run >= 3


def test_a_pair_timed_in_a_host_slow_stretch_is_replaced_and_set_aside(tmp_path: Path) -> None:
    """The second process pair lands in a slow stretch that hits torch 2x and OpenVINO 1.3x
    (as the quick preset's A/A saw): the run times a fourth pair, the speed-up leaves the
    slowed one out and says so, the latencies keep it."""
    # workers start spec by spec within a pass: starts 3 and 4 are the second pass
    slow = {"torch": [1.0, 1.0, 2.0, 2.0] + [1.0] * 4,
            "openvino:CPU": [1.0, 1.0, 1.3, 1.3] + [1.0] * 4}
    out, _, _ = _session(tmp_path, ProcessSource([1.0], per_backend=slow), processes=3,
                         max_processes=4)
    cells = {(c.key.spec, c.key.backend): c for c in out.cells}
    for spec in SPECS:
        base, cand = cells[spec, "torch"], cells[spec, "openvino:CPU"]
        assert len(base.meta["processes"]) == len(cand.meta["processes"]) == 4
        sp = cell_speedup(base, cand)
        assert sp["processes"] == 3 and sp["ci95"][0] <= 2.0 <= sp["ci95"][1]
        assert (sp["ci95"][1] - sp["ci95"][0]) / 2 / sp["speedup"] < 0.02
        (record,) = sp["set_aside"]
        assert record["side"] == "torch" and record["process"] == 2
        assert record["slower"] == pytest.approx(2.0, rel=0.02)
        assert record["speedup"] == pytest.approx(2.0 * 2.0 / 1.3, rel=0.02)
        assert "1 of 4 process pairs set aside" in sp["ci_note"]
        assert cell_summary(base)["processes"] == 4  # the latency keeps every process


def _timed_by_process(cell: CellResult) -> dict[int, float]:
    parts = stats.split_blocks(cell.samples_ms, cell.meta["blocks"])
    timed: dict[int, float] = {}
    for part, k in zip(parts, cell.meta["block_process"], strict=True):
        timed[k] = timed.get(k, 0.0) + float(np.sum(part)) / 1000
    return timed


def _with_startup(cells: list[CellResult], seconds: float) -> list[CellResult]:
    """The group's cells as if each process pair had spent ``seconds`` more wall time than its
    timed blocks (start-up: fork, build, compile, warm-up), the pair's two sides together."""
    timed = [_timed_by_process(c) for c in cells]
    out = []
    for cell in cells:
        procs = []
        for p in cell.meta["processes"]:
            k, start = p["index"], 1000.0 * p["index"]  # every side shares its pair's span
            pair_timed = sum(t.get(k, 0.0) for t in timed)
            procs.append({**p, "started": start, "finished": start + pair_timed + seconds})
        out.append(dataclasses.replace(cell, meta={**cell.meta, "processes": procs}))
    return out


def test_an_extra_process_pays_its_start_up_from_the_budget(tmp_path: Path) -> None:
    """Where the process level dominates, an extra pass is planned while budget is left; once
    each pair is known to cost seconds of start-up beyond its timing, each side pays its share
    of the next pair's start-up and of every extra pair's already run."""
    out, _, _ = _session(tmp_path, ProcessSource([1.0, 1.15, 0.95, 1.1]), processes=3,
                         max_processes=3)
    group = [c for c in out.cells if c.key.spec == SPECS[0]]
    spent = max(passes.timed_s(c) for c in group)
    per_process = spent / 3

    def config(processes: int) -> SessionConfig:
        return SessionConfig(workloads=SPECS, backends=BACKENDS, threads=(2,),
                             budget_s=spent * 1.25, processes=processes, max_processes=6,
                             target=0.001)

    assert passes.startup_s(group) == 0.0  # simulated workers: no wall time beyond samples
    step = passes.plan_pass(group, 3, config(3))
    assert step is not None and step.budget_s == pytest.approx(0.25 * spent)
    costly = _with_startup(group, spent)  # a pair's start-up as long as a cell's timing
    assert passes.pair_startups(costly) == pytest.approx({0: spent, 1: spent, 2: spent})
    assert passes.startup_s(costly) == pytest.approx(spent)
    assert passes.plan_pass(costly, 3, config(3)) is None
    cheap = _with_startup(group, spent / 10)  # each side pays half: spent / 20
    step = passes.plan_pass(cheap, 3, config(3))
    assert step is not None and step.budget_s == pytest.approx(0.25 * spent - spent / 20)
    assert step.budget_s < per_process
    # counted from one process, passes 1 and 2 were extra: their start-up comes off as well,
    # and what is left (0.25 - 0.1 - 0.05 of the timing) is below half a process's share
    assert passes.extra_startup_s(cheap, 1) == pytest.approx(2 * spent / 10)
    assert passes.plan_pass(group, 3, config(1)) is not None
    assert passes.plan_pass(cheap, 3, config(1)) is None


def test_a_slowed_pair_is_replaced_from_its_refund_when_the_budget_is_spent(tmp_path) -> None:
    """Three passes, the second slowed, the budget spent: only the slowed pair's refund pays
    for a fourth process, as long as the wait allowance lasts; a group as noisy but not slowed
    gets none."""
    slow = {"torch": [1.0, 1.0, 2.0, 2.0, 1.0, 1.0], "openvino:CPU": [1.0]}
    out, _, _ = _session(tmp_path / "slow", ProcessSource([1.0], per_backend=slow),
                         processes=3, max_processes=3)
    noisy, _, _ = _session(tmp_path / "noisy", ProcessSource([1.0, 1.0, 1.1, 1.1, 1.0, 1.0]),
                           processes=3, max_processes=3)
    for got in (out, noisy):
        group = [c for c in got.cells if c.key.spec == SPECS[0]]
        spent = max(passes.timed_s(c) for c in group)
        config = SessionConfig(workloads=SPECS, backends=BACKENDS, threads=(2,), budget_s=spent,
                               processes=3, max_processes=6, target=0.001, wait_s=10.0)
        step = passes.plan_pass(group, 3, config)
        if got is noisy:
            assert step is None
            continue
        slowed_s = passes.slowed_s(group)
        assert 0 < slowed_s < spent
        assert step is not None and step.budget_s == pytest.approx(min(slowed_s, spent / 3))
        assert step.wait_s == pytest.approx(10.0 - slowed_s)
        no_wait = SessionConfig(workloads=SPECS, backends=BACKENDS, threads=(2,),
                                budget_s=spent, processes=3, max_processes=6, target=0.001,
                                wait_s=slowed_s / 2)
        assert passes.plan_pass(group, 3, no_wait) is None


def test_a_cell_slowed_most_of_the_time_keeps_every_pair(tmp_path: Path) -> None:
    slow = {"torch": [2.0, 2.0, 2.0, 2.0, 1.0, 1.0], "openvino:CPU": [1.0]}
    out, _, _ = _session(tmp_path, ProcessSource([1.0], per_backend=slow), processes=3,
                         max_processes=3)
    sp = cell_speedup(out.cells[0], out.cells[1])
    assert sp["processes"] == 3 and sp["set_aside"] == [] and sp["ci_note"] is None


def test_a_failed_process_ends_the_cell_and_keeps_the_earlier_samples() -> None:
    key = CellKey("plain", "torch", "f32", 2)
    first = CellResult(key, DONE, None, [1.0] * 8, 5.0,
                       {"blocks": [4, 4], "disturbed": [False, False]}, 1.0, 2.0)
    broken = CellResult(key, FAILED, "worker crashed during time: SIGSEGV", [1.1] * 4, None,
                        {"blocks": [4], "disturbed": [False]}, 3.0, 4.0)
    merged = passes.merge(passes.merge(None, first, 0), broken, 1)
    assert merged.status == FAILED and merged.reason.startswith("process 2: worker crashed")
    assert merged.samples_ms == [1.0] * 8 + [1.1] * 4
    assert merged.meta["block_process"] == [0, 0, 1]
    assert passes.finished(merged)
    # an invalid (disturbed) process does not undo a clean one, and a clean one after an
    # invalid one makes the cell done
    bad = CellResult(key, INVALID, "busy", [], None, {"blocks": [], "disturbed": []}, 5, 6)
    assert passes.merge(passes.merge(None, first, 0), bad, 1).status == DONE
    assert passes.merge(passes.merge(None, bad, 0), first, 1).status == DONE


def test_a_cell_from_before_processes_is_read_with_a_note() -> None:
    key = CellKey("plain", "torch", "f32", 2)
    rng = np.random.default_rng(0)
    old = CellResult(key, DONE, None, list(rng.normal(10, 0.1, 80)), 5.0,
                     {"blocks": [10] * 8, "disturbed": [False] * 8})
    s = cell_summary(old)
    assert s["ci_method"] == "blocks" and s["processes"] == 1
    assert "one worker process" in s["ci_note"]
    # and a later pass appended to it (a resumed old session) labels its blocks
    more = CellResult(key, DONE, None, [10.0] * 20, None, {"blocks": [10, 10],
                                                           "disturbed": [False, False]})
    merged = passes.merge(old, more, 1)
    assert merged.meta["block_process"] == [0] * 8 + [1, 1]


def test_the_report_says_which_level_dominates_and_warns_for_one_process(tmp_path) -> None:
    noisy, store, _ = _session(tmp_path, ProcessSource([1.0, 1.25, 0.85]), processes=3,
                               max_processes=3)
    from reports.sections import document

    report = build_report(store.session(noisy.info.id), noisy.cells, None)
    text = str(document(report))
    assert "between processes" in text and "3 worker process pairs" in text
    one = [CellResult(c.key, c.status, c.reason, c.samples_ms, c.warmup_ms,
                      {k: v for k, v in c.meta.items() if k != "block_process"})
           for c in noisy.cells]
    assert "timed in one worker process" in str(document(build_report(
        store.session(noisy.info.id), one, None)))


@pytest.mark.parametrize("bad", [{"processes": 0}, {"processes": 2.5},
                                 {"processes": 4, "max_processes": 3}])
def test_process_counts_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        SessionConfig(workloads=SPECS, **bad)
