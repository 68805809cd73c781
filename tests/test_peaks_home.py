"""Peaks live per machine where every store finds them (issue 28, item 6): a report from a
store without peaks says where it looked and how to bring them; after ``accelbench peak`` into
another store, it finds them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from reports.render import md_escape
from tests.conftest import run_cli


@pytest.mark.slow
def test_a_report_finds_peaks_measured_into_another_store(tmp_path: Path) -> None:
    env = {"ACCELBENCH_PEAKS": str(tmp_path / "peaks")}
    store = tmp_path / "project" / "s.sqlite"
    done = run_cli("run", "plain:depth=1,width=8,res=16", "--backends", "torch", "--threads", "1",
                   "--budget", "0.3", "--store", str(store), "--no-report", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    with sqlite3.connect(store) as conn:
        machine_id = conn.execute("SELECT machine_id FROM sessions").fetchone()[0]

    def roofline_text() -> str:
        proc = run_cli("report", "--store", str(store), "--out", str(tmp_path / "r"), env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return (tmp_path / "r" / "report.md").read_text()

    before = roofline_text()
    assert "No measured peaks for this machine (looked in" in before
    assert md_escape(str(store)) in before and f"{machine_id}.json" in before
    assert "`accelbench peak`" in before and "`--store`" in before

    other = tmp_path / "elsewhere" / "other.sqlite"
    peak = run_cli("peak", "--store", str(other), "--backends", "torch", "--gemm-n", "64",
                   "--seconds", "0.05", "--threads", "1", "--triad-mib", "1", "--rounds", "1",
                   env=env)
    assert peak.returncode == 0, peak.stderr[-2000:]
    saved = tmp_path / "peaks" / f"{machine_id}.json"
    assert saved.is_file() and str(saved) in peak.stdout
    assert json.loads(saved.read_text())["gflops"]["torch"] > 0

    after = roofline_text()
    assert "No measured peaks" not in after
    assert f"from {md_escape(saved)}" in after  # the header says where the roofs came from
    shown = json.loads(run_cli("machine", "--store", str(store), "--json", env=env).stdout)
    assert shown["peak"]["gflops"]["torch"] > 0
