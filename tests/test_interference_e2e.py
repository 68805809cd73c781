"""End to end: a real CPU burner beside a tiny session. Nothing it disturbs may be reported as
a valid speed-up — the cells are set aside, waited for, then marked invalid (exit 1)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

BURN = "while True: pass"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@pytest.mark.slow  # ~90 s on a loaded 2-core machine: worker start-up beside the burners
def test_a_cpu_burner_throughout_makes_the_cells_invalid(tmp_path: Path):
    config = tmp_path / "session.toml"
    config.write_text("[session]\nbudget_s = 0.5\nwait_s = 3.0\nmax_foreign_cpu = 0.5\n"
                      "min_pairs = 6\n")
    burners = [subprocess.Popen([sys.executable, "-c", BURN], start_new_session=True)
               for _ in range(_cores())]
    try:
        proc = run_cli("run", "plain:depth=1,width=8,res=32", "--config", str(config),
                       "--store", str(tmp_path / "s.sqlite"), "--json", cwd=tmp_path,
                       env={"ACCELBENCH_MAX_FOREIGN_CPU": "0.5"})
    finally:
        for b in burners:
            os.killpg(b.pid, signal.SIGKILL)
            b.wait(timeout=10)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["speedups"] == []  # no speed-up from disturbed blocks
    assert "waiting for a quiet machine" in proc.stderr
    for cell in data["cells"]:
        assert cell["status"] == "invalid", cell
        assert "clean block pairs" in cell["reason"] and "foreign CPU" in cell["reason"]
        assert cell["disturbed_blocks"] > 0 and cell["clean_blocks"] < 6
        assert cell["converged"] is False


def run_beside_a_burner(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``accelbench run ARGS --no-report --store tmp/s.sqlite --json`` with the gate as users
    get it (no ACCELBENCH_MAX_FOREIGN_CPU, which conftest.py sets for every other test) and one
    busy process beside it for the whole session."""
    env = {k: v for k, v in os.environ.items() if k != "ACCELBENCH_MAX_FOREIGN_CPU"}
    burner = subprocess.Popen([sys.executable, "-c", BURN], start_new_session=True)
    try:
        return subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", *args, "--no-report",
             "--store", str(tmp_path / "s.sqlite"), "--json"],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=300)
    finally:
        os.killpg(burner.pid, signal.SIGKILL)
        burner.wait(timeout=10)


def test_the_default_gate_turns_a_session_beside_one_burner_invalid(tmp_path: Path):
    """The gate as users get it: no ACCELBENCH_MAX_FOREIGN_CPU (conftest.py lifts the limit for
    every other test) and no max_foreign_cpu in the config, so its default (0.5 core) decides.
    One busy process is about one foreign core on any machine. In the default run, kept short:
    one backend, a 1 s allowance for waiting."""
    config = tmp_path / "session.toml"
    config.write_text("[session]\nbudget_s = 0.5\nwait_s = 1.0\n")
    proc = run_beside_a_burner(tmp_path, "plain:depth=1,width=8,res=32", "--backends", "torch",
                               "--threads", "1", "--config", str(config))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    (cell,) = json.loads(proc.stdout)["cells"]
    assert cell["status"] == "invalid", cell
    assert "foreign CPU" in cell["reason"] and cell["disturbed_blocks"] > 0
    con = sqlite3.connect(tmp_path / "s.sqlite")
    (meta,) = con.execute("SELECT meta FROM cells").fetchone()
    con.close()
    assert json.loads(meta)["max_foreign_cpu"] == 0.5  # the default, recorded with the cell
