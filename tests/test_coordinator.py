"""GroupRunner's rules in-process, with fake workers fed by a synthetic block source.

Stopping, warm-up, block alternation, parity and interference (disturbed rounds set aside,
back-off, invalid cells) are decided by the coordinator alone; a fake worker and a scripted CPU
meter let each rule be tested exactly, with no process, model or clock involved.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.measure import stats
from harness.measure.results import DONE, FLAGGED, INVALID, SKIPPED, CellResult, SessionInfo
from harness.run.client import WorkerError
from harness.run.config import SessionConfig
from harness.run.coordinator import GroupRunner
from harness.run.interference import CpuMeter, cores
from harness.run.plan import plan_groups
from reports.tables import build_report

SPEC = "plain:depth=1,width=8,res=32"
BACKENDS = ("torch", "openvino:CPU")
WARMUP_MS = 100.0  # the warm-up block's samples; they must never reach a cell


class BlockSource:
    """Scripted blocks: ``latency(backend, block_index)`` ms per sample; ``foreign(i)`` the
    foreign CPU seconds of the i-th timed request overall (warm-ups included), each 0.1 s."""

    def __init__(self, latency: Callable[[str, int], float] | None = None,
                 foreign: Callable[[int], float] = lambda i: 0.0,
                 outputs: dict[str, np.ndarray] | None = None,
                 reference: np.ndarray | None = None, unavailable: tuple[str, ...] = (),
                 flags: dict[str, str] | None = None) -> None:
        self.latency = latency or (lambda backend, i: 1.0 if backend == "torch" else 0.5)
        self.foreign = foreign
        self.outputs = outputs or {}
        self.reference = reference
        self.unavailable = unavailable
        self.flags = flags or {}  # backend -> the flag its setup raises (a model writing its input)
        self.order: list[str] = []  # backend of every time request, in order
        self.setups: list[dict[str, Any]] = []
        self.closed: list[str] = []
        self._pids = itertools.count(1000)

    def factory(self, backend: str, threads: int) -> FakeWorker:
        return FakeWorker(self, backend, next(self._pids))


class FakeWorker:
    def __init__(self, source: BlockSource, backend: str, pid: int) -> None:
        self.source, self.backend, self.pid = source, backend, pid
        self.blocks = 0

    def request(self, msg: dict[str, Any], timeout: float) -> dict[str, Any]:
        src, op = self.source, msg["op"]
        if op == "setup":
            src.setups.append(msg)
            if self.backend in src.unavailable:
                raise WorkerError(f"{self.backend} is not here", "availability")
            keyed = {"artefact_key": f"ir:{msg['spec'] or msg['model']}"} \
                if self.backend != "torch" else {}
            flag = {"flag": src.flags[self.backend]} if self.backend in src.flags else {}
            return {"ok": True, "info": {"first_ms": 1.0, "precision_effective": "f32", **keyed,
                                         **flag},
                    "profile": {"error": "fake worker"} if msg["profile"] else None}
        if op == "output":
            out = src.outputs.get(self.backend, np.ones((1, 4), dtype=np.float32))
            np.save(msg["path"], out.astype(np.float32), allow_pickle=False)
            return {"ok": True, "finite": True, "shape": list(out.shape)}
        if op == "reference":
            if src.reference is None:
                raise WorkerError("no float64 reference here", "availability")
            np.save(msg["path"], src.reference, allow_pickle=False)
            return {"ok": True}
        if op == "time":
            assert msg["max_s"] > 0  # every block is capped
            src.order.append(self.backend)
            value = src.latency(self.backend, self.blocks)
            self.blocks += 1
            n = min(msg["n"], 20)
            # a little spread so the CI is not degenerate
            return {"ok": True, "samples_ms": [value * (1 + 0.001 * (k % 3)) for k in range(n)]}
        if op == "stats":
            return {"ok": True, "max_rss_bytes": 1, "pid": self.pid}
        if op == "counters":  # the counter window the setup's "counters" choice opened
            return {"ok": True, "counters": {"source": "fake", "choice": msg.get("op")}}
        raise AssertionError(op)

    def kill(self) -> None:
        pass

    def close(self) -> None:
        self.source.closed.append(self.backend)


class ScriptedMeter:
    """Stands in for CpuMeter: each block reads 0.1 s of wall time and the source's foreign."""

    def __init__(self, source: BlockSource) -> None:
        self.source, self.count = source, 0

    def read(self, pids: list[int]) -> int:
        return self.count

    def between(self, before: int, after: int) -> tuple[float | None, float]:
        i = self.count
        self.count += 1
        return self.source.foreign(i), 0.1


def run_group(source: BlockSource, **overrides: Any) -> tuple[list[CellResult], list[str], list[float]]:
    settings = {"budget_s": 2.0, "target": 0.01, "min_samples": 30, "block_s": 0.1,
                "max_foreign_cpu": 0.5, "wait_s": 10.0, "min_pairs": 6, **overrides}
    config = SessionConfig(workloads=(SPEC,), backends=BACKENDS, threads=(2,), **settings)
    waits: list[str] = []
    sleeps: list[float] = []
    runner = GroupRunner(config, Path("/nonexistent"), worker_factory=source.factory,
                         meter=ScriptedMeter(source), on_wait=waits.append, sleep=sleeps.append)
    (plan,) = plan_groups(config, set())
    return runner.run(plan), waits, sleeps


def test_blocks_alternate_after_one_warm_up_block_per_side():
    source = BlockSource(latency=lambda b, i: WARMUP_MS if i == 0 else (1.0 if b == "torch" else 0.5))
    cells, _, _ = run_group(source)
    assert source.order[:2] == ["torch", "openvino:CPU"]  # the warm-up
    rounds = [source.order[i:i + 2] for i in range(2, len(source.order), 2)]
    assert rounds[0] == ["torch", "openvino:CPU"] and rounds[1] == ["openvino:CPU", "torch"]
    assert all(r == rounds[k % 2] for k, r in enumerate(rounds))
    for cell in cells:
        assert cell.status == DONE
        assert WARMUP_MS not in cell.samples_ms  # the warm-up block never reaches the samples
        assert cell.meta["warmup_block"]["median_ms"] == pytest.approx(WARMUP_MS, rel=0.01)
        assert sum(cell.meta["blocks"]) == len(cell.samples_ms)
    assert len(cells[0].meta["blocks"]) == len(cells[1].meta["blocks"])  # paired
    assert sorted(source.closed) == sorted(BACKENDS)


def test_stops_once_converged_and_only_after_min_pairs():
    source = BlockSource()
    cells, _, _ = run_group(source, budget_s=1000.0, min_pairs=6)
    for cell in cells:
        blocks = cell.meta["blocks"]
        assert len(blocks) == 6  # tight samples: converged as soon as min_pairs allows
        assert cell.meta["converged"] is True
        # every sample within 0.2% of the scripted latency: the median is known far inside the
        # 1% target, so nothing but min_pairs could have kept the cell running
        lat = 1.0 if cell.key.backend == "torch" else 0.5
        assert {round(v / lat, 6) for v in cell.samples_ms} == {1.0, 1.001, 1.002}


def test_a_noisy_cell_stops_at_its_budget_unconverged():
    rng = np.random.default_rng(1)
    source = BlockSource(latency=lambda b, i: float(rng.uniform(0.5, 2.0)))
    cells, _, _ = run_group(source, budget_s=1.0)  # 2 sides x 1 s = 20 blocks of 0.1 s
    for cell in cells:
        assert cell.status == DONE and len(cell.meta["blocks"]) == 10
        assert cell.meta["converged"] is False
        assert cell.evidence() == {"clean_blocks": 10, "disturbed_blocks": 0, "converged": False}


def test_fewer_than_min_samples_is_never_converged():
    source = BlockSource()
    cells, _, _ = run_group(source, budget_s=1.0, min_samples=100000)
    assert all(c.meta["converged"] is False and c.status == DONE for c in cells)
    assert not stats.converged([1.0] * 10, [5, 5], 0.5, 11)
    # an order-statistics CI (no blocks) is never enough to stop on
    assert not stats.converged([1.0] * 100, None, 0.5, 6)
    assert stats.converged([1.0, 1.001] * 50, [20] * 5, 0.01, 6)


def test_parity_flags_a_candidate_that_computes_something_else():
    source = BlockSource(outputs={"torch": np.ones((1, 4)), "openvino:CPU": np.full((1, 4), 2.0)})
    torch_cell, ov_cell = run_group(source)[0]
    assert torch_cell.status == DONE
    assert ov_cell.status == FLAGGED and ov_cell.reason.startswith("outputs differ from torch: ")
    assert "rel_l2 1 > tolerance 0.001" in ov_cell.reason
    assert ov_cell.meta["parity"]["ok"] is False


def test_parity_tolerance_grows_with_the_baselines_distance_from_float64():
    base = np.array([[1.0, 1.0, 1.0, 1.0]])
    source = BlockSource(outputs={"torch": base, "openvino:CPU": base * 1.004},
                         reference=base.astype(np.float64) * 1.002)
    _, ov_cell = run_group(source)[0]
    verdict = ov_cell.meta["parity"]
    assert verdict["baseline_vs_f64"] == pytest.approx(0.002, rel=1e-2)
    assert verdict["tolerance"] == pytest.approx(0.008, rel=1e-2)
    assert ov_cell.status == DONE and verdict["ok"] is True


def test_a_baseline_far_from_float64_is_not_a_reference_to_pass_anything_against():
    # an in-place first layer once made PyTorch's f32 output 0.39 from float64: a tolerance
    # grown from that (1.55) passed a candidate 99% off
    base = np.array([[1.0, 1.0, 1.0, 1.0]])
    for candidate in (base * 0.02, base):  # 98% off, and identical: neither can be judged
        source = BlockSource(outputs={"torch": base, "openvino:CPU": candidate},
                             reference=base.astype(np.float64) * 1.4)
        _, ov_cell = run_group(source)[0]
        verdict = ov_cell.meta["parity"]
        assert verdict["tolerance"] == pytest.approx(0.2)  # 4 x the 0.05 a baseline may be off
        assert ov_cell.status == FLAGGED and verdict["ok"] is False and verdict["unjudged"]
        assert ov_cell.reason.startswith("outputs cannot be compared with torch's: the baseline's "
                                         "own f32 output is 0.286 away from float64"), ov_cell.reason


def test_a_cell_flagged_for_several_causes_names_each():
    # the backend's own flag (raised at setup), then the parity check's: both reach the reason
    source = BlockSource(outputs={"torch": np.ones((1, 4)), "openvino:CPU": np.full((1, 4), 2.0)},
                         flags={"openvino:CPU": "the model writes into its input"})
    _, ov_cell = run_group(source)[0]
    assert ov_cell.status == FLAGGED
    assert ov_cell.reason.startswith("the model writes into its input; outputs differ from torch: ")


def test_non_finite_outputs_flag_the_cell_that_made_them():
    source = BlockSource(outputs={"torch": np.array([[np.nan, 1.0]])})
    torch_cell, _ = run_group(source)[0]
    assert torch_cell.status == FLAGGED and torch_cell.reason == "outputs hold NaN or Inf"


def test_the_first_side_to_set_up_profiles_the_model():
    source = BlockSource(unavailable=("torch",))
    torch_cell, ov_cell = run_group(source)[0]
    assert torch_cell.status == SKIPPED
    assert [s["profile"] for s in source.setups] == [True, True]  # torch failed, so OV profiles
    assert ov_cell.meta["profile_error"] == "fake worker"
    source = BlockSource()
    run_group(source)
    assert [s["profile"] for s in source.setups] == [True, False]


DISTURBED_MS = 9.0


def disturbed_first(rounds: int) -> BlockSource:
    """Warm-up (2 requests), then ``rounds`` rounds under 1.5 cores of foreign load whose
    latencies are inflated; quiet afterwards."""
    heavy = range(2, 2 + 2 * rounds)
    return BlockSource(
        latency=lambda b, i: DISTURBED_MS if 1 <= i <= rounds else (1.0 if b == "torch" else 0.5),
        foreign=lambda i: 0.15 if i in heavy else 0.0)


def test_disturbed_rounds_are_set_aside_and_waited_out_with_back_off():
    source = disturbed_first(3)
    cells, waits, sleeps = run_group(source)
    assert sleeps == [0.5, 1.0, 2.0]  # back-off between disturbed rounds
    assert waits and all(w.startswith("waiting for a quiet machine") for w in waits)
    for cell in cells:
        assert cell.status == DONE
        assert cell.meta["disturbed"][:3] == [True] * 3 and not any(cell.meta["disturbed"][3:])
        assert cell.meta["block_foreign"][:3] == [1.5] * 3
        assert DISTURBED_MS in cell.samples_ms  # kept in the store...
        clean, _ = cell.clean()
        assert DISTURBED_MS not in clean  # ...but never in a figure
        assert cell.evidence()["disturbed_blocks"] == 3
        assert cell.meta["waited"]["pauses"] == 3
    assert cells[0].meta["disturbed"] == cells[1].meta["disturbed"]  # set aside as pairs
    report = build_report(SessionInfo("s", 0.0), cells, None)
    (row,) = report.speedups
    assert row.ci_method == "paired-blocks" and row.speedup == pytest.approx(2.0, rel=0.01)


def test_a_machine_that_never_quietens_makes_the_cells_invalid_within_the_allowance():
    source = BlockSource(foreign=lambda i: 0.15)
    cells, waits, sleeps = run_group(source, wait_s=10.0)
    assert sum(sleeps) + 0.2 * len(sleeps) <= 10.0 + 0.2 + 1e-9  # the allowance holds
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 1.5]  # doubling, cut short by the allowance
    for cell in cells:
        assert cell.status == INVALID
        assert cell.reason.startswith("only 0 clean block pairs of the 6 needed")
        assert "1.50 cores" in cell.reason
        assert cell.evidence()["clean_blocks"] == 0 and cell.samples_ms  # kept, marked
    report = build_report(SessionInfo("s", 0.0), cells, None)
    assert report.speedups == () and report.summary == ()
    assert report.excluded[0].why.startswith("baseline invalid: only 0 clean")
    cell_json = report.cells[1].as_json()
    assert cell_json["status"] == INVALID and cell_json["clean_blocks"] == 0
    assert cell_json["disturbed_blocks"] == len(cells[1].meta["blocks"])
    assert cell_json["converged"] is False


def test_wait_allowance_of_zero_gives_up_at_the_first_disturbed_round():
    cells, waits, sleeps = run_group(disturbed_first(1), wait_s=0.0)
    assert sleeps == [] and all(c.status == INVALID for c in cells)


def test_cpu_meter_subtracts_the_groups_own_cpu(tmp_path: Path):
    proc = tmp_path / "proc"
    (proc / "42").mkdir(parents=True)

    def write(busy: int, own: int) -> None:
        (proc / "stat").write_text(f"cpu  {busy} 0 0 1000 0 0 0 0 0 0\ncpu0 1 0 0 0 0 0 0 0 0 0\n")
        fields = ["S"] + ["0"] * 10 + [str(own), "0", "0", "0"] + ["0"] * 30
        (proc / "42" / "stat").write_text("42 (odd (name)) " + " ".join(fields) + "\n")

    meter = CpuMeter(str(proc))
    meter.tick = 100.0
    write(100, 10)
    before = meter.read([42, 99999])  # a pid that is gone counts as 0
    write(250, 60)  # 1.5 s busy, 0.5 s of it the group's
    after = meter.read([42])
    foreign, wall = meter.between(before, after)
    assert foreign == pytest.approx(1.0 - (after.self_s - before.self_s))
    assert cores(1.0, 0.5) == 2.0 and cores(-0.1, 1.0) == 0.0 and cores(None, 1.0) is None
    assert CpuMeter(str(tmp_path / "nothing")).read([]).busy_ticks is None


def test_capped_block_stops_early(monkeypatch):
    import time

    from harness.run.worker import Worker

    class Slow:
        def time_block(self, n: int) -> list[float]:
            time.sleep(0.01 * n)
            return [10.0] * n

    worker = Worker.__new__(Worker)
    worker.prepared = Slow()
    got = worker.handle({"op": "time", "n": 800, "max_s": 0.05})
    assert got["ok"] and 1 <= len(got["samples_ms"]) < 800
    assert worker.handle({"op": "time", "n": 3, "max_s": -1})["kind"] == "protocol"


@pytest.mark.parametrize("workload, reused", [(SPEC, True), ("@/somewhere/net.py:make", False)])
def test_later_processes_of_a_spec_reuse_the_first_artefact_key(workload, reused):
    """A built-in spec's later process pairs are told the artefact key its first pass found,
    so the worker need not trace the model again; a user's model file never is (what its
    imports build may change between processes)."""
    from harness.run.passes import PassPlan

    source = BlockSource()
    config = SessionConfig(workloads=(workload,), backends=BACKENDS, threads=(2,),
                           budget_s=0.5, min_pairs=4)
    runner = GroupRunner(config, Path("/nonexistent"), worker_factory=source.factory,
                         meter=ScriptedMeter(source))
    (plan,) = plan_groups(config, set())
    for index in range(3):
        runner.run(plan, PassPlan(index, 0.5, 0.01, 3, 10.0))
    sent = [(m.get("known_artefact_key")) for m in source.setups]
    name = workload if reused else "/somewhere/net.py:make"
    assert sent[:2] == [None, None]  # the first pass traces on both sides
    assert sent[2:] == ([None, f"ir:{name}"] * 2 if reused else [None] * 4)
