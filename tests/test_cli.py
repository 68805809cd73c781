"""The command line end to end, as a user meets it, on tiny models."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import archs
from tests.conftest import FAMILY_NAMES, run_cli

TINY = "plain:res=16,depth=1,width=4"
TINY2 = "dwseparable:res=16,depth=1,width=4"


def test_archs_json_lists_every_family_with_typed_params():
    proc = run_cli("archs", "--json")
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert sorted(d["family"] for d in data) == sorted(FAMILY_NAMES)
    for fam in data:
        assert fam["doc"]
        for p in fam["params"]:
            assert {"name", "type", "default"} <= set(p)
            assert "choices" in p or "min" in p or p["type"] in ("str", "bool")


def test_archs_text_mentions_ranges():
    proc = run_cli("archs")
    assert proc.returncode == 0
    assert "mobilenetv2" in proc.stdout and "depth" in proc.stdout


def test_profile_json_matches_design_and_api():
    proc = run_cli("profile", "mobilenetv2", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"spec", "flops", "macs", "params", "weight_bytes", "activation_bytes",
            "peak_working_set_bytes", "layers"} <= set(data)
    assert data["flops"] == 2 * data["macs"]
    assert data["params"] == 3_504_872
    assert abs(data["macs"] - 300e6) / 300e6 < 0.02
    assert data["flops"] == archs.profile("mobilenetv2").flops
    assert len(data["layers"]) > 50


def test_profile_text_has_a_layer_table():
    proc = run_cli("profile", "resnet:depth=18,res=64", "--limit", "5")
    assert proc.returncode == 0
    assert "conv" in proc.stdout.lower() and "more layers" in proc.stdout


@pytest.mark.parametrize("args, words", [
    (("profile", "nosuchnet"), ["unknown family", "mobilenetv2"]),
    (("profile", "resnet:depth=7"), ["depth", "50"]),
    (("run", "mobilenetv2", "--backends", "torch,nosuch", "--dry-run"), ["unknown backend", "openvino"]),
    (("run", "mobilenetv2", "--precision", "f16", "--dry-run"), ["precision", "bf16"]),
    (("run", "mobilenetv2", "--threads", "two", "--dry-run"), ["--threads"]),
    (("run", "--preset", "nosuch", "--dry-run"), ["unknown preset", "quick"]),
    (("run", "--config", "/nonexistent.toml", "--dry-run"), ["cannot read config"]),
    (("run", "--model", "nofile", "--dry-run"), ["file.py:factory"]),
])
def test_bad_usage_exits_2_with_a_message(args, words):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("accelbench: error:")
    for w in words:
        assert w in proc.stderr, proc.stderr


def test_machine_json_has_the_fingerprint():
    proc = run_cli("machine", "--json")
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert {"id", "cpu", "caches", "openvino_devices", "versions", "counters"} <= set(data)
    assert {"perf", "cachegrind", "model"} <= set(data["counters"])
    assert "CPU" in [d["name"] if isinstance(d, dict) else d for d in data["openvino_devices"]]


def test_quick_preset_dry_run_has_at_least_20_cells_of_every_family():
    proc = run_cli("run", "--dry-run", "--json")
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    cells = data["cells"]
    assert len(cells) >= 20
    assert {c["backend"] for c in cells} == {"torch", "openvino:CPU"}
    assert {c["precision"] for c in cells} == {"f32"}
    # every architecture family; ``kernel:`` is one layer at a time, the predictor's building
    # block (its own preset, ``--preset kernels``), not an architecture to benchmark
    assert {c["spec"].split(":")[0] for c in cells} >= set(FAMILY_NAMES) - {"kernel"}


def test_config_file_and_preset_formats(tmp_path: Path):
    cfg = tmp_path / "s.toml"
    cfg.write_text('[session]\nworkloads = ["mobilenetv2:res=64", "resnet:depth=18"]\n'
                   'backends = ["torch", "openvino"]\nthreads = [1, 2]\nbudget_s = 2\n')
    proc = run_cli("run", "--config", str(cfg), "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["cells"]) == 2 * 2 * 2
    assert {c["backend"] for c in data["cells"]} == {"torch", "openvino:CPU"}
    assert data["config"]["budget_s"] == 2.0
    cfg.write_text('[session]\nworkloads = ["mobilenetv2"]\nbogus = 1\n')
    proc = run_cli("run", "--config", str(cfg), "--dry-run")
    assert proc.returncode == 2 and "bogus" in proc.stderr


def _run_json(tmp_path: Path, *args: str, expect: int = 0) -> dict:
    proc = run_cli("run", *args, "--store", str(tmp_path / "s.sqlite"), "--budget", "0.3",
                   "--json", cwd=tmp_path)
    assert proc.returncode == expect, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_run_end_to_end_stores_times_and_reports(tmp_path: Path):
    data = _run_json(tmp_path, TINY, TINY2, "--threads", "1")
    assert len(data["cells"]) == 4
    for cell in data["cells"]:
        assert cell["status"] == "done", cell
        assert cell["n"] >= 6 and cell["median_ms"] > 0
        lo, hi = cell["ci95_ms"]
        assert lo <= cell["median_ms"] <= hi
        assert cell["threads"] == 1 and cell["precision"] == "f32"
        assert cell["flops"] > 0
        assert cell["counters"]["source"] == "model"
    ov = [c for c in data["cells"] if c["backend"] == "openvino:CPU"]
    assert all(c["parity"]["ok"] and c["parity"]["rel_l2"] < 1e-4 for c in ov)
    assert len(data["speedups"]) == 2
    for s in data["speedups"]:
        assert s["baseline"] == "torch" and s["candidate"] == "openvino:CPU"
        assert s["ci95"][0] <= s["speedup"] <= s["ci95"][1]
    # The report files exist beside the store, named by the session id.
    out = tmp_path / data["session"]
    assert (out / "report.md").stat().st_size > 0 and (out / "report.html").stat().st_size > 0
    # The store holds raw samples and the OpenVINO properties read back from the compiled model.
    con = sqlite3.connect(tmp_path / "s.sqlite")
    rows = con.execute("SELECT backend, samples, meta FROM cells").fetchall()
    con.close()
    for backend, samples, meta in rows:
        assert len(json.loads(samples)) >= 6
        meta = json.loads(meta)
        # every cell says which allocator regime it ran in and how often its timed blocks faulted
        assert meta["allocator"]["policy"] == "fixed thresholds (accelbench)"
        assert meta["minor_faults_per_inference"] >= 0
        if backend.startswith("openvino"):
            props = meta["properties"]
            assert str(props["INFERENCE_PRECISION_HINT"]).lower() in ("f32", "float32", "<type: 'float32'>")
            assert int(props["INFERENCE_NUM_THREADS"]) == 1
            assert meta["precision_effective"] == "f32"
    # report re-renders the same session from the store alone.
    proc = run_cli("report", "--store", str(tmp_path / "s.sqlite"), "--json")
    assert proc.returncode == 0
    again = json.loads(proc.stdout)
    for c in again["cells"]:  # where a figure comes from: the allocator regime, its evidence
        assert c["allocator"]["policy"] == "fixed thresholds (accelbench)"
        assert c["minor_faults_per_inference"] >= 0
    assert again["session"] == data["session"]
    assert [c["median_ms"] for c in again["cells"]] == [c["median_ms"] for c in data["cells"]]


def test_second_run_reuses_the_converted_ir(tmp_path: Path):
    first = _run_json(tmp_path, TINY, "--backends", "openvino:CPU", "--threads", "1")
    second = _run_json(tmp_path, TINY, "--backends", "openvino:CPU", "--threads", "1")
    con = sqlite3.connect(tmp_path / "s.sqlite")
    metas = {sid: json.loads(m) for sid, m in con.execute("SELECT session_id, meta FROM cells")}
    con.close()
    assert metas[first["session"]]["ir_cache_hit"] is False
    assert metas[second["session"]]["ir_cache_hit"] is True
    assert metas[second["session"]]["convert_s"] == 0


def test_absent_device_is_skipped_with_the_available_devices_named(tmp_path: Path):
    data = _run_json(tmp_path, TINY, "--backends", "torch,openvino:GPU", "--threads", "1", expect=1)
    by_backend = {c["backend"]: c for c in data["cells"]}
    assert by_backend["torch"]["status"] == "done"
    gpu = by_backend["openvino:GPU"]
    assert gpu["status"] == "skipped"
    assert "GPU" in gpu["reason"] and "CPU" in gpu["reason"]
    assert data["speedups"] == []


def test_torch_cuda_without_cuda_is_skipped_with_a_reason(tmp_path: Path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    data = _run_json(tmp_path, TINY, "--backends", "torch:cuda", "--threads", "1", expect=1)
    assert data["cells"][0]["status"] == "skipped"
    assert "CUDA" in data["cells"][0]["reason"]


def test_users_own_model_gets_flops_and_a_speedup(tmp_path: Path, tiny_model_file: Path):
    data = _run_json(tmp_path, "--model", f"{tiny_model_file}:make", "--threads", "1")
    assert [c["status"] for c in data["cells"]] == ["done", "done"]
    # Conv 3->8 3x3 on 16x16 + Linear 8->4: 2 * (8*3*9*256 + 8*4) FLOPs.
    assert data["cells"][0]["flops"] == 2 * (8 * 3 * 9 * 256 + 8 * 4)
    assert len(data["speedups"]) == 1


def test_sessions_lists_what_ran(tmp_path: Path):
    data = _run_json(tmp_path, TINY, "--backends", "torch", "--threads", "1")
    proc = run_cli("sessions", "--store", str(tmp_path / "s.sqlite"), "--json")
    rows = json.loads(proc.stdout)
    assert [r["session"] for r in rows] == [data["session"]]
    assert rows[0]["status"] == "finished" and rows[0]["cells"] == 1


def test_store_commands_do_not_import_torch_or_openvino(tmp_path: Path):
    """Reading a store is seconds faster without the frameworks; guard the lazy imports."""
    _run_json(tmp_path, TINY, "--backends", "torch", "--threads", "1")
    store = str(tmp_path / "s.sqlite")
    code = (
        "import contextlib, io, json, sys\n"
        "from harness.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rcs = [main(['sessions', '--store', {store!r}, '--json']),\n"
        f"           main(['report', '--store', {store!r}, '--json', '--out', {str(tmp_path / 'r')!r}])]\n"
        "print(json.dumps([rcs, [m for m in ('torch', 'openvino') if m in sys.modules]]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == [[0, 0], []]
    assert (tmp_path / "r" / "report.json").is_file()


def test_specs_on_the_command_line_fill_a_config_without_workloads(tmp_path: Path):
    cfg = tmp_path / "backends.toml"
    cfg.write_text('[session]\nbackends = ["torch"]\nthreads = [1]\n')
    proc = run_cli("run", "resnet:depth=18", "--config", str(cfg), "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    cells = json.loads(proc.stdout)["cells"]
    assert [(c["spec"], c["backend"], c["threads"]) for c in cells] == [("resnet:depth=18", "torch", 1)]
