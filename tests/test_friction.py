"""Small things a new user tripped over (issue 28, item 7), as the user meets them."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from tests.conftest import run_cli

TINY = "plain:depth=1,width=8,res=16"


def test_toml_backends_as_one_string_and_unknown_keys_name_model(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text(f'[session]\nworkloads = ["{TINY}"]\nbackends = "torch,openvino:CPU"\n'
                   'precisions = "f32"\n')
    proc = run_cli("run", "--config", str(cfg), "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["config"]["backends"] == ["torch", "openvino:CPU"]
    cfg.write_text(f'[session]\nworkloads = ["{TINY}"]\nmodels = "net.py:make"\n')
    proc = run_cli("run", "--config", str(cfg), "--dry-run")
    assert proc.returncode == 2 and "unknown key(s) ['models']" in proc.stderr
    assert "'model'" in proc.stderr  # the key they meant is among the valid ones


def test_sessions_and_machine_read_as_text(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    done = run_cli("run", TINY, "--backends", "torch", "--threads", "1", "--budget", "0.3",
                   "--store", str(store), "--no-report")
    assert done.returncode == 0, done.stderr[-2000:]
    line = run_cli("sessions", "--store", str(store)).stdout.strip()
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", line) and TINY in line
    assert " 1 cell " in line
    (row,) = json.loads(run_cli("sessions", "--store", str(store), "--json").stdout)
    assert row["specs"] == [TINY]

    with sqlite3.connect(store) as conn:
        machine_id = conn.execute("SELECT machine_id FROM sessions").fetchone()[0]
    from harness.store import Store

    with Store.open(store) as s:
        s.put_peak(machine_id, {"gflops": {"torch": 51.25}, "bandwidth_gbs": 9.5,
                                "cache_bandwidth_gbs": {"l2": 80.0}, "threads": 1,
                                "measured_at": 1.8e9})
    text = run_cli("machine", "--store", str(store)).stdout
    peak = text[text.index("peak "):]
    assert "{" not in peak and "torch 51.25" in peak and "DRAM 9.5, L2 80" in peak
    assert f"from {store}" in peak


def test_compare_warns_when_one_session_comes_from_two_stores(tmp_path: Path) -> None:
    import shutil

    from tests.compare_support import INTEL

    copy = tmp_path / "merged.sqlite"
    shutil.copyfile(INTEL, copy)
    proc = run_cli("compare", str(INTEL), str(copy))
    assert proc.returncode == 0, proc.stderr
    assert "hold the same session" in proc.stderr and str(copy) in proc.stderr


def test_explain_piped_prints_full_width(tmp_path: Path) -> None:
    proc = run_cli("explain", TINY, "--threads", "1", "--passes", "2",
                   "--store", str(tmp_path / "s.sqlite"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "openvino:CPU ms" in proc.stdout and "activation" in proc.stdout
    assert "…" not in proc.stdout  # rich folded nothing at an assumed 80 columns


def test_piped_progress_shows_a_running_group_as_it_goes(monkeypatch) -> None:
    import io

    from rich.console import Console

    from harness.cli import progress
    from harness.measure.results import CellKey

    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    p = progress.SessionProgress(Console(file=out, width=200), live=False)
    p.start("s1", 2)
    key = CellKey(TINY, "torch", "f32", 1)
    for t in (101.0, 102.0, 112.0, 113.0):  # blocks: a line now, then none until 10 s later
        now[0] = t
        p.block(key, [1.0, 2.0, 3.0])
    lines = [ln for ln in out.getvalue().splitlines() if "..." in ln]
    assert len(lines) == 2 and "median 2.000 ms (n=3)" in lines[0]
    assert "elapsed 1 s" in lines[0] and "elapsed 12 s" in lines[1]


def test_the_eta_follows_the_pace_of_the_latest_cells(monkeypatch) -> None:
    """The first pass (conversion, parity, profile) is slow, the later ones fast: the ETA goes
    by the latest cells, not by the average since the start (issue 28)."""
    import io

    from rich.console import Console

    from harness.cli import progress
    from harness.measure.results import DONE, CellKey, CellResult

    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    p = progress.SessionProgress(Console(file=out, width=300), live=False)
    p.start("s1", 30)
    key = CellKey(TINY, "torch", "f32", 1)
    cell = CellResult(key, DONE, None, [1.0, 2.0], None, {})
    for i in range(1, 21):  # ten cells at 10 s each, then ten at 2 s each
        now[0] += 10.0 if i <= 10 else 2.0
        p.cell(i, 30, cell)
    last = out.getvalue().strip().splitlines()[-1]
    assert "[20/30]" in last and "elapsed 120 s" in last
    assert "ETA 20 s" in last, last  # 10 cells left at 2 s; elapsed/done would say 60 s
    assert progress.eta_s([5.0], 0.0, 1, 1) == 0.0 and progress.eta_s([], 0.0, 0, 5) == 0.0
    assert progress.eta_s([4.0, 8.0], 0.0, 2, 4) == 8.0  # fewer cells than the window


def test_no_help_text_shows_a_doubled_percent_sign() -> None:
    """argparse formats arguments' help with %, not descriptions: a '%%' written in a
    description is printed as it is (issue 28: 'compare --help' said '95%% intervals')."""
    import argparse

    from harness.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert len(subs.choices) >= 10
    for name, sub in subs.choices.items():
        assert "%%" not in sub.format_help(), name
