"""The ``accelbench`` pytest fixture: time your own model on torch and OpenVINO in your suite.

    def test_my_net(accelbench):
        result = accelbench(make_model(), torch.randn(1, 3, 64, 64))
        assert result.speedup().ci95[0] > 1.0   # OpenVINO is faster, at 95%

Why it rides on pytest-benchmark: people already run ``pytest --benchmark-only``, save runs and
gate with ``--benchmark-compare-fail=median:5%``. Each backend becomes one entry in its table
(``test_my_net[torch]``, ``test_my_net[openvino:CPU]``) with the raw samples, so those habits
keep working; what pytest-benchmark lacks, the speed-up with a CI, comes back as the result.

Why in-process backends (``harness.backends.get_backend``) and alternated blocks: the timing
loop, conversion, static shapes and explicit precision are the harness's, not re-written here;
alternating blocks between the backends lets drift hit both sides alike, so the speed-up's
interval is a paired block bootstrap (``harness.measure.stats.speedup``), as in ``accelbench run``
for a cell timed in one process: the ratio of medians (a session timed in several process pairs
reads each side at its quiet state, ``harness.measure.nested.SPEEDUP_QUANTILE``; one process in
one stretch of seconds cannot tell a quiet state from a slow one).
Registered through the ``pytest11`` entry point, so installing accelbench is enough.

Why it behaves as ``accelbench run`` does (issue 28: 4.50x here against 5.64x from the CLI):
the same default thread count (``harness.config.default_threads``: every core this process may
use), the outputs compared (``harness.parity``; a candidate that computes something else fails
the test instead of reporting a speed-up), and the machine id of ``accelbench machine`` in the
saved JSON's ``machine_info``. The test process's own torch thread count is restored afterwards.
Each backend stays its own pytest-benchmark entry (its ``compare`` keys entries by full name),
but ``extra_info.accelbench.key`` names one workload (the test) with the backend beside it, so
``accelbench import`` reads the two entries back as one pair.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from harness.measure import parity, stats

BLOCK_S = 0.05  # one timed block: long enough to amortize the loop, short enough to alternate
MIN_BLOCKS = 8  # enough blocks for a block bootstrap (stats.MIN_BOOTSTRAP_BLOCKS is 4)
DISABLED_BUDGET_S = 0.2  # under --benchmark-disable: a smoke run, nothing reported


@dataclass(frozen=True)
class Speedup:
    baseline: str
    candidate: str
    value: float
    ci95: tuple[float, float]
    ci_method: str | None

    @property
    def significant(self) -> bool:
        return self.ci95[0] > 1.0 or self.ci95[1] < 1.0


@dataclass
class AccelResult:
    """Per-backend samples (ms), timed blocks, summaries, and speed-ups over the first backend."""

    backends: tuple[str, ...]
    samples_ms: dict[str, list[float]] = field(default_factory=dict)
    blocks: dict[str, list[int]] = field(default_factory=dict)
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    precision: str = "f32"
    threads: int = 1

    def __str__(self) -> str:
        """One paragraph: each backend's median and n, each speed-up with its CI, parity."""
        parts = []
        for b in self.backends:
            s = self.summary(b)
            parts.append(f"{b} median {s['median']:.4g} ms (n={s['n']})")
        for b in self.backends[1:]:
            sp = self.speedup(b)
            verdict = (self.info.get(b) or {}).get("parity") or {}
            rel = verdict.get("rel_l2")
            parts.append(f"{b} over {sp.baseline} {sp.value:.3g}× [{sp.ci95[0]:.3g}, "
                         f"{sp.ci95[1]:.3g}] (95% CI)"
                         + (f", outputs agree (rel_l2 {rel:.2g})" if verdict.get("ok") else ""))
        return (f"accelbench, {self.precision}, {self.threads} threads: " + "; ".join(parts)
                + ".")

    __repr__ = __str__  # a dataclass repr would print every sample

    def summary(self, backend: str) -> dict[str, Any]:
        return stats.summarize(self.samples_ms[backend], self.blocks[backend])

    def speedup(self, candidate: str | None = None) -> Speedup:
        """median(first backend) / median(candidate), with its 95% paired-block CI."""
        base = self.backends[0]
        cand = candidate or self.backends[-1]
        r = stats.speedup(self.samples_ms[base], self.samples_ms[cand],
                          baseline_blocks=self.blocks[base], candidate_blocks=self.blocks[cand])
        return Speedup(base, cand, r["speedup"], tuple(r["ci95"]), r["ci_method"])


class AccelBench:
    """Callable returned by the fixture; one call times one model on every backend."""

    def __init__(self, benchmark: Any) -> None:
        self._bm = benchmark

    def __call__(self, model: Any, example_input: Any, *,
                 backends: Sequence[str] = ("torch", "openvino:CPU"), precision: str = "f32",
                 threads: int | None = None, budget_s: float = 2.0) -> AccelResult:
        """``threads``: default, what ``accelbench run`` uses (every core this process may
        use). The test process's torch thread count is the same after the call as before."""
        import torch

        from harness.run.config import default_threads

        threads = threads or default_threads()
        before = torch.get_num_threads()
        try:
            return self._time(model, example_input, backends, precision, threads, budget_s)
        finally:
            torch.set_num_threads(before)

    def _time(self, model: Any, example_input: Any, backends: Sequence[str], precision: str,
              threads: int, budget_s: float) -> AccelResult:
        from harness.backends import get_backend
        from harness.backends.base import PrepareContext

        disabled = bool(getattr(self._bm, "disabled", False))
        budget = DISABLED_BUDGET_S if disabled else budget_s
        prepared = {}
        for text in backends:
            backend = get_backend(text)
            ok, why = backend.availability()
            if not ok:
                pytest.skip(f"accelbench: {backend.spec.text} is not available here: {why}")
            prepared[backend.spec.text] = backend.prepare(model, example_input,
                                                          PrepareContext(precision, threads))
        result = AccelResult(tuple(prepared), precision=precision, threads=threads)
        sizes = {k: max(1, int(BLOCK_S * 1000 / max(p.first_ms, 1e-3))) for k, p in prepared.items()}
        for k, p in prepared.items():
            result.samples_ms[k], result.blocks[k] = [], []
            result.info[k] = {**p.info, "warmup_ms": p.first_ms}
            if p.info.get("flag"):  # a flag the backend raised (a model writing its input)
                pytest.fail(f"accelbench: {k}: {p.info['flag']}", pytrace=False)
        _check_parity(result, prepared, precision)
        deadline = time.perf_counter() + budget
        rounds = 0
        while rounds < MIN_BLOCKS or time.perf_counter() < deadline:
            for k, p in prepared.items():  # alternate: block i of each ran side by side
                got = p.time_block(sizes[k])
                result.samples_ms[k].extend(got)
                result.blocks[k].append(len(got))
            rounds += 1
        if not disabled:
            self._report(result, precision, threads)
        return result

    def _report(self, result: AccelResult, precision: str, threads: int) -> None:
        """One pytest-benchmark entry per backend, holding the raw samples (in seconds)."""
        from pytest_benchmark.stats import Metadata

        bm = self._bm
        bm._mode = "accelbench"  # the fixture was used (pytest-benchmark warns otherwise)
        for backend in result.backends:
            key = {"spec": bm.fullname, "backend": backend, "precision": precision,
                   "threads": threads}  # one workload, the test: an import pairs the backends
            fake = SimpleNamespace(
                name=f"{bm.name}[{backend}]", fullname=f"{bm.fullname}[{backend}]",
                group=bm.group or bm.name, param=backend,
                params={**(bm.params or {}), "backend": backend},
                extra_info={**bm.extra_info, "accelbench": {
                    "backend": backend, "precision": precision, "threads": threads,
                    "blocks": result.blocks[backend], "key": key, "status": "done",
                    "meta": {"blocks": result.blocks[backend],
                             "parity": result.info[backend].get("parity")},
                    "warmup_ms": result.info[backend].get("warmup_ms"),
                    "speedup": _speedup_json(result, backend)}},
                cprofile_stats=None, has_error=False)
            meta = Metadata(fake, iterations=1, options={
                "disable_gc": True, "timer": "perf_counter_ns", "min_rounds": MIN_BLOCKS,
                "max_time": None, "min_time": None, "warmup": True})
            for ms in result.samples_ms[backend]:
                meta.stats.update(ms / 1000.0)
            bm._add_stats(meta)


def _check_parity(result: AccelResult, prepared: dict[str, Any], precision: str) -> None:
    """Each candidate's output against the first backend's, on the same input, as the CLI
    judges a cell; a candidate that computes something else fails the test, because its
    speed-up would compare two different functions."""
    names = list(prepared)
    base = prepared[names[0]].output()
    for name in names[1:]:
        verdict = parity.judge(base, prepared[name].output(), None, precision)
        result.info[name]["parity"] = {**verdict, "baseline": names[0]}
        if not verdict["ok"]:
            pytest.fail(f"accelbench: {name}'s outputs differ from {names[0]}'s: "
                        f"{parity.describe(verdict)}", pytrace=False)


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    """The saved JSON names the machine as ``accelbench machine`` does, so an import of it
    lands on the same machine id as the CLI's sessions."""
    from harness.machine.fingerprint import fingerprint

    fp = fingerprint()
    machine_info["accelbench"] = {"id": fp["id"], "fingerprint": fp}


def _speedup_json(result: AccelResult, backend: str) -> dict[str, Any] | None:
    if backend == result.backends[0]:
        return None
    s = result.speedup(backend)
    return {"over": s.baseline, "value": s.value, "ci95": list(s.ci95), "ci_method": s.ci_method}


@pytest.fixture
def accelbench(benchmark: Any) -> AccelBench:
    """Time a model on torch and OpenVINO (see the module docstring); needs pytest-benchmark."""
    return AccelBench(benchmark)
