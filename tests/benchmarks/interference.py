"""Issue 14's benchmark: the same pair on a quiet machine, with a CPU burner for the first half
of the session, and with a burner throughout. Not a test (it needs a quiet machine and minutes):

    PYTHONPATH=$PWD python -m tests.benchmarks.interference [--budget 2] [--out DIR]

Prints, per scenario: exit code, wall time, each cell's status, clean/disturbed blocks, and the speed-ups with their CI. What to expect: (a) exit 0;
(b) the speed-ups agree with (a) within their CIs, paid for in waiting time; (c) every cell
invalid, exit 1. The burner is one ``while True: pass`` process per core, always killed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

SPECS = ("plain:depth=4,width=16,res=64", "dwseparable:depth=4,width=16,res=64")


def burners(cores: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
            for _ in range(cores)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


def session(out: Path, name: str, budget: float, burn_for: float | None) -> dict:
    """One session; ``burn_for`` seconds of burner from its start (None: no burner, inf: all)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("ACCELBENCH_MAX_FOREIGN_CPU", None)  # the shipped default, as a user gets it
    cmd = [sys.executable, "-m", "harness.cli", "run", *SPECS, "--budget", str(budget),
           "--store", str(out / f"{name}.sqlite"), "--json"]
    cores = len(os.sched_getaffinity(0))
    procs = burners(cores) if burn_for else []
    timer = None
    if procs and burn_for != float("inf"):
        timer = threading.Timer(burn_for, stop, args=(procs,))
        timer.start()
    t0 = time.monotonic()
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out, timeout=3600)
    finally:
        if timer is not None:
            timer.cancel()
        stop(procs)
    wall = time.monotonic() - t0
    (out / f"{name}.stderr").write_text(run.stderr)
    data = json.loads(run.stdout) if run.stdout.strip() else {"cells": [], "speedups": []}
    return {"name": name, "rc": run.returncode, "wall_s": round(wall, 1), **data}


def show(result: dict) -> None:
    print(f"\n== {result['name']}: exit {result['rc']}, wall {result['wall_s']} s")
    for c in result["cells"]:
        print(f"  {c['spec']:40} {c['backend']:13} {c['status']:8} median {c['median_ms']} ms "
              f"clean {c.get('clean_blocks')} disturbed {c.get('disturbed_blocks')} "
              f"converged {c.get('converged')}"
              + (f"\n      reason: {c['reason']}" if c.get("reason") else ""))
    for s in result["speedups"]:
        lo, hi = s["ci95"]
        print(f"  speed-up {s['spec']:40} {s['speedup']:.2f}x [{lo:.2f}, {hi:.2f}] "
              f"{s['ci_method']} significant={s['significant']}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=2.0)
    ap.add_argument("--out", type=Path, default=Path("results/interference-bench"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    quiet = session(args.out, "a-quiet", args.budget, None)
    show(quiet)
    half = session(args.out, "b-burner-first-half", args.budget, quiet["wall_s"] / 2)
    show(half)
    show(session(args.out, "c-burner-throughout", args.budget, float("inf")))
    print(f"\nwaiting cost (b): {half['wall_s'] - quiet['wall_s']:+.1f} s of wall time vs (a)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
