"""--counters and ``counters = "..."`` as a user meets them: the choice reaches every cell,
off is said rather than left blank, a bad value is exit 2; cachegrind on a tiny model (slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.run.config import ConfigError, SessionConfig, _from_toml_text
from tests.conftest import run_cli

TINY = "plain:res=16,depth=1,width=4"


def _run(tmp_path: Path, *args: str, timeout: float = 600) -> dict:
    proc = run_cli("run", TINY, "--backends", "torch", "--threads", "1", "--budget", "0.3",
                   "--store", str(tmp_path / "s.sqlite"), "--json", "--no-report", *args,
                   cwd=tmp_path, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_config_field_and_toml():
    assert SessionConfig(workloads=(TINY,)).counters == "auto"
    cfg = _from_toml_text(f'[session]\nworkloads = ["{TINY}"]\ncounters = "model"\n', "t.toml")
    assert cfg.counters == "model" and cfg.as_dict()["counters"] == "model"
    with pytest.raises(ConfigError, match="valid: auto, cachegrind, model, perf, off"):
        SessionConfig(workloads=(TINY,), counters="papi")


def test_bad_counters_flag_is_exit_2(tmp_path: Path):
    proc = run_cli("run", TINY, "--counters", "papi", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 2 and "--counters" in proc.stderr


def test_model_and_off_reach_the_cell_and_the_store(tmp_path: Path):
    cell = _run(tmp_path, "--counters", "model")["cells"][0]
    c = cell["counters"]
    assert c["source"] == "model" and c["choice"] == "model"
    assert c["arithmetic_intensity"] > 0 and c["achieved_gflops"] > 0
    assert c["misses_per_kflop"] is not None
    off = _run(tmp_path, "--counters", "off")["cells"][0]["counters"]
    assert off["source"] == "off" and off.get("arithmetic_intensity") is None
    proc = run_cli("report", "--store", str(tmp_path / "s.sqlite"), "--json", cwd=tmp_path)
    assert json.loads(proc.stdout)["cells"][0]["counters"]["source"] == "off"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_cachegrind_on_a_tiny_model_then_from_its_cache(tmp_path: Path):
    cell = _run(tmp_path, "--counters", "cachegrind", timeout=3000)["cells"][0]
    c = cell["counters"]
    assert c["source"] == "cachegrind", c
    assert "error" not in c, c["error"] if "error" in c else ""
    assert c["simulated_isa"].startswith("AVX2") and c["cached"] is False
    assert c["threads_simulated"] == 1 and c["inferences"] >= 8
    assert c["misses_per_inference"] >= 0 and c["instructions_per_inference"] > 1000
    assert c["geometry"]["LL"]["real"]["size"] > 0 and c["geometry"]["LL"]["simulated"]
    again = _run(tmp_path, "--counters", "cachegrind", timeout=600)["cells"][0]["counters"]
    assert again["cached"] is True and again["misses_per_inference"] == c["misses_per_inference"]
