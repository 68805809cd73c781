"""Shared fixtures. Families are discovered from the registry, so a new family is tested for free."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import archs

ROOT = Path(__file__).resolve().parents[1]

# Tests that are not about interference must not turn invalid because a neighbour on a shared
# CI runner is busy: they accept any foreign load. The interference tests set their own limit
# (tests/test_coordinator.py, tests/test_interference_e2e.py).
os.environ.setdefault("ACCELBENCH_MAX_FOREIGN_CPU", "4096")
# Peaks are kept per machine in the user's cache folder (harness.machine.peaks_home): tests neither
# read the user's nor leave theirs there.
os.environ["ACCELBENCH_PEAKS"] = tempfile.mkdtemp(prefix="accelbench-test-peaks-")
FAMILY_NAMES = [f.name for f in archs.list_archs()]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where a store goes when a test needs a fresh one (not created yet)."""
    return tmp_path / "results" / "accelbench.sqlite"


def small_spec(name: str, **extra) -> str:
    """The family's cheap configuration, with ``extra`` values on top, as canonical spec text."""
    fam = archs.family(name)
    values = {**dict(fam.small), **extra}
    text = name + (":" + ",".join(f"{k}={_fmt(v)}" for k, v in values.items()) if values else "")
    return archs.format_spec(archs.parse(text))


def _fmt(v) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None,
            check_no_traceback: bool = True) -> subprocess.CompletedProcess:
    """Run ``accelbench ARGS`` as a user would, in a subprocess."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=timeout,
    )
    if check_no_traceback:
        assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture
def tiny_model_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_net.py"
    path.write_text(
        "import torch\n"
        "def make():\n"
        "    torch.manual_seed(0)\n"
        "    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),\n"
        "                            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4))\n"
        "    return m.eval(), torch.randn(1, 3, 16, 16)\n"
    )
    return path
