"""``accelbench run --layers``: per-layer tables stored with the cells, shown by report --json,
joined and drawn by reports.layers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.run.config import ConfigError, SessionConfig
from harness.store import Store
from reports.layers import layer_kind_rows, plot_layer_kinds
from tests.conftest import run_cli


def test_layers_flag_is_a_checked_config_field():
    assert SessionConfig(workloads=("plain:depth=1",)).layers is False
    with pytest.raises(ConfigError, match="layers"):
        SessionConfig.from_dict({"workloads": ["plain:depth=1"], "layers": "yes"})
    assert SessionConfig.from_dict({"workloads": ["plain:depth=1"], "layers": True}).layers


def test_run_layers_stores_tables_and_reports_them(tmp_path: Path):
    store = tmp_path / "s.sqlite"
    proc = run_cli("run", "plain:depth=1,width=8,res=32", "--threads", "1", "--budget", "0.5",
                   "--layers", "--json", "--no-report", "--store", str(store), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = json.loads(proc.stdout)["cells"]
    assert {c["backend"] for c in cells} == {"torch", "openvino:CPU"}
    for cell in cells:
        layers = cell["layers"]
        assert layers["whole_ms"] > 0 and layers["n"] >= 1
        assert any(u["kind"] == "conv" for u in layers["units"])
        assert sum(r["ms"] for r in layers["layers"]) > 0
    report = run_cli("report", "--store", str(store), "--json", "--out", str(tmp_path / "r"))
    assert report.returncode == 0, report.stderr
    assert all(c["layers"]["layers"] for c in json.loads(report.stdout)["cells"])

    with Store.open(store, create=False) as db:
        stored = db.cells(db.session(None).id)
    rows = layer_kind_rows(stored)
    kinds = {r["kind"]: r for r in rows}
    assert {"conv", "batchnorm", "linear"} <= set(kinds)
    assert kinds["batchnorm"]["ms"]["openvino:CPU"] == 0.0 < kinds["batchnorm"]["ms"]["torch"]
    assert all(set(r["coverage"]) == {"torch", "openvino:CPU"} for r in rows)
    png = plot_layer_kinds(rows, tmp_path / "kinds.png", source="f32, 1 thread, test machine")
    assert png is not None and png.stat().st_size > 1000
    assert plot_layer_kinds([], tmp_path / "none.png") is None


def test_run_without_layers_stores_none(tmp_path: Path):
    proc = run_cli("run", "plain:depth=1,width=8,res=32", "--threads", "1", "--budget", "0.3",
                   "--backends", "torch", "--json", "--no-report",
                   "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["cells"][0]["layers"] is None
