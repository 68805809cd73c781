"""Issue 10's benchmark: does counting change what is timed? Not a test (it needs a quiet
machine and minutes):

    PYTHONPATH=$PWD python -m tests.benchmarks.counters [--source auto] [--pairs 6] [--rounds 24]

Why workers in pairs, interleaved, and not two sessions: on the shared VMs here a model's latency
drifts by 20-40% between sessions minutes apart, and one worker process can land a different
draw than the next (memory placement, thread placement), so two sessions — one counting, one
not — compare two draws of the machine, not two ways of measuring. Here, per backend, ``pairs``
workers time with ``--counters off`` and as many with ``--counters SOURCE``, all set up alike
and alive together; every round each worker times one block, in an order that alternates
(A B B A ...), so drift reaches both arms alike.

Printed per backend:
- each arm's median with its 95% CI (all samples of the arm, as a session states a median);
- the ratio counting/off: per pair the ratio of the two workers' medians, its geometric mean
  with a bootstrap CI over pairs (workers are the unit that varies);
- within the counting workers, blocks alternate with the window resumed (``count``) and not: the
  ratio of the two shows the window's own cost inside one process;
- the spread of the ``off`` workers' medians: how much a worker's draw alone moves a figure.
What to expect: both ratios' CIs include 1.0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.counters import resolve
from harness.measure import stats
from harness.run.client import WorkerClient, reap_on_exit
from harness.run.workload import Workload

SPEC = "dwbottleneck:depth=8,res=128"


def setup(client: WorkerClient, work: Workload, counters: str, threads: int, cache: str) -> float:
    reply = client.request({"op": "setup", **work.setup_fields(), "seed": 0, "precision": "f32",
                            "threads": threads, "ir_key": work.ir_key(0), "cache_dir": cache,
                            "profile": False, "counters": counters}, timeout=900)
    return float(reply["info"].get("first_ms") or 1.0)


def block(client: WorkerClient, n: int, count: bool) -> list[float]:
    return client.request({"op": "time", "n": n, "count": count}, timeout=300)["samples_ms"]


def geomean_ci(ratios: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Geometric mean of ratios with a 95% percentile-bootstrap CI over the ratios."""
    logs = np.log(np.asarray(ratios, float))
    rng = np.random.default_rng(seed)
    boot = rng.choice(logs, size=(10_000, len(logs)), replace=True).mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(np.exp(logs.mean())), float(np.exp(lo)), float(np.exp(hi))


def one_backend(backend: str, source: str, args: argparse.Namespace, cache: str) -> dict[str, Any]:
    work = Workload.from_text(args.spec)
    arms: dict[str, list[WorkerClient]] = {"off": [], source: []}
    firsts = []
    for _ in range(args.pairs):
        for arm in arms:
            client = WorkerClient(backend, args.threads)
            firsts.append(setup(client, work, "off" if arm == "off" else source, args.threads, cache))
            arms[arm].append(client)
    n = max(3, int(args.block_s * 1000 / statistics.median(firsts)))
    for arm in arms.values():  # warm-up block, not kept
        for client in arm:
            block(client, n, False)
    samples: dict[tuple[str, int, bool], list[float]] = {}
    order = [(arm, i) for i in range(args.pairs) for arm in arms]
    t0 = time.monotonic()
    for r in range(args.rounds):
        seq = order if r % 2 == 0 else order[::-1]  # A B .. then .. B A
        for arm, i in seq:
            # counting workers: rounds 0 and 3 of every 4 counted, 1 and 2 not, so counted and
            # uncounted blocks each run in both orders (A B and B A)
            count = arm == "off" or r % 4 in (0, 3)
            got = block(arms[arm][i], n, count)
            samples.setdefault((arm, i, count), []).extend(got)
    wall = time.monotonic() - t0
    counted = {arm: [samples[(arm, i, True)] for i in range(args.pairs)] for arm in arms}
    uncounted = [samples[(source, i, False)] for i in range(args.pairs)]
    stopped = []
    for arm in arms.values():
        for client in arm:
            stopped.append(client.request({"op": "counters"}, timeout=7200).get("counters"))
            client.close()
    result: dict[str, Any] = {"backend": backend, "source": source, "spec": args.spec, "n": n,
                              "rounds": args.rounds, "pairs": args.pairs, "wall_s": wall}
    for arm, per_worker in counted.items():
        flat = [x for w in per_worker for x in w]
        lo, hi = stats.median_ci(flat)
        result[arm] = {"median_ms": statistics.median(flat), "ci95": [lo, hi], "samples": len(flat),
                       "worker_medians": [statistics.median(w) for w in per_worker]}
    ratios = [statistics.median(c) / statistics.median(o)
              for c, o in zip(counted[source], counted["off"], strict=True)]
    result["ratio_counting_over_off"] = geomean_ci(ratios)
    inside = [statistics.median(c) / statistics.median(u)
              for c, u in zip(counted[source], uncounted, strict=True)]
    result["ratio_window_resumed_over_paused"] = geomean_ci(inside)
    off = result["off"]["worker_medians"]
    result["off_worker_spread"] = max(off) / min(off)
    figures = [c for c in stopped if c]
    result["counters_source_reported"] = sorted({str(c.get("source")) for c in figures})
    result["counters_errors"] = [c["error"] for c in figures if "error" in c]
    return result


def show(r: dict[str, Any]) -> None:
    src = r["source"]
    print(f"\n{r['backend']} on {r['spec']}: {r['pairs']} worker pairs, {r['rounds']} rounds of "
          f"{r['n']} inferences ({r['wall_s']:.0f} s)")
    for arm in ("off", src):
        a = r[arm]
        ws = ", ".join(f"{m:.3f}" for m in a["worker_medians"])
        print(f"  --counters {arm:<5} median {a['median_ms']:.3f} ms [{a['ci95'][0]:.3f}, "
              f"{a['ci95'][1]:.3f}] over {a['samples']} samples; per worker {ws}")
    g, lo, hi = r["ratio_counting_over_off"]
    print(f"  {src}/off per pair: {g:.4f} [{lo:.4f}, {hi:.4f}]  "
          f"({'includes' if lo <= 1 <= hi else 'EXCLUDES'} 1.0)")
    g, lo, hi = r["ratio_window_resumed_over_paused"]
    print(f"  window resumed/paused in the same workers: {g:.4f} [{lo:.4f}, {hi:.4f}]  "
          f"({'includes' if lo <= 1 <= hi else 'EXCLUDES'} 1.0)")
    print(f"  off workers' medians span {r['off_worker_spread']:.3f}x; counters reported: "
          f"{', '.join(r['counters_source_reported']) or 'none'}"
          + (f"; errors: {r['counters_errors']}" if r["counters_errors"] else ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.benchmarks.counters")
    p.add_argument("--spec", default=SPEC)
    p.add_argument("--backends", default="torch,openvino:CPU")
    p.add_argument("--source", default="auto", help="counter source to compare with off")
    p.add_argument("--pairs", type=int, default=6)
    p.add_argument("--rounds", type=int, default=24)
    p.add_argument("--block-s", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = p.parse_args(argv)
    source, why = resolve(args.source)
    if source is None or source == "cachegrind":
        p.error("--source must count during the timed blocks: perf, model or auto")
    print(f"source: {source} ({why})")
    results = []
    with tempfile.TemporaryDirectory(prefix="accelbench-bench-") as cache, reap_on_exit():
        for backend in args.backends.split(","):
            results.append(one_backend(backend, source, args, cache))
            show(results[-1])
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
