"""pytest-benchmark both ways: export a session, read it with pytest-benchmark, import it back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.cli.compare import read_sources
from tests.compare_support import AMD, INTEL
from tests.conftest import run_cli
from tests.store_support import sha


def _cells(path: Path) -> tuple:
    """Through compare's reader: the committed stores may be of an older schema than this code."""
    (src,) = read_sources([str(path)])
    return src.session, src.machine, list(src.cells)


def test_round_trip_keeps_samples_meta_and_machine(tmp_path: Path) -> None:
    before = sha(INTEL)
    out = tmp_path / "0001_intel.json"
    proc = run_cli("export", "--format", "pytest-benchmark", "--store", str(INTEL), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert sha(INTEL) == before
    data = json.loads(out.read_text())
    assert data["machine_info"]["cpu"]["brand_raw"] == "Intel(R) Xeon(R) Processor"
    assert data["machine_info"]["system"] == "Linux"
    bench = data["benchmarks"][0]
    assert bench["stats"]["median"] * 1000 > 0 and bench["stats"]["rounds"] == len(
        bench["stats"]["data"])

    store = tmp_path / "imported.sqlite"
    proc = run_cli("import", str(out), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    info0, machine0, cells0 = _cells(INTEL)
    info1, machine1, cells1 = _cells(store)
    assert (info1.id, info1.machine_id, info1.config) == (info0.id, info0.machine_id, info0.config)
    assert machine1 == {**machine0, "id": info0.machine_id}
    assert [c.key for c in cells1] == [c.key for c in cells0]
    for a, b in zip(cells0, cells1, strict=True):
        assert b.status == a.status and b.meta == a.meta and b.warmup_ms == a.warmup_ms
        assert len(b.samples_ms) == len(a.samples_ms)
        assert max(abs(x - y) for x, y in zip(a.samples_ms, b.samples_ms, strict=True)) < 1e-9
    # importing twice adds nothing and says so
    proc = run_cli("import", str(out), "--store", str(store))
    assert proc.returncode == 2 and "already has session" in proc.stderr


def test_stdout_export_is_read_by_pytest_benchmark_compare(tmp_path: Path) -> None:
    for i, src in enumerate((INTEL, AMD), start=1):
        proc = run_cli("export", "--format", "pytest-benchmark", "--store", str(src))
        assert proc.returncode == 0, proc.stderr
        (tmp_path / f"000{i}_{src.stem}.json").write_text(proc.stdout)
    exe = Path(sys.executable).parent / "py.test-benchmark"
    proc = subprocess.run([str(exe), "compare", *sorted(map(str, tmp_path.glob("*.json"))),
                           "--columns=median,rounds"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Failed to load" not in out + proc.stderr
    assert "resnet:depth=18,res=64[openvino:CPU-f32-t2]" in out
    rows = [x for x in out.splitlines() if "[openvino:CPU-f32-t2]" in x or "[torch-f32-t2]" in x]
    assert len(rows) == 16  # 4 specs x 2 backends x 2 files: every benchmark was read


def test_import_of_a_foreign_file(tmp_path: Path) -> None:
    foreign = {"machine_info": {"node": "ci-7", "cpu": {"brand_raw": "Some CPU"}},
               "benchmarks": [{"name": "test_x", "fullname": "t.py::test_x", "group": None,
                               "params": None, "stats": {"data": [0.002, 0.0021, 0.0019],
                                                         "iterations": 1}}],
               "datetime": "2026-11-28T12:00:00+00:00", "version": "5.3.1"}
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(foreign))
    store = tmp_path / "s.sqlite"
    proc = run_cli("import", str(path), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    info, machine, cells = _cells(store)
    assert machine["pytest_benchmark_machine_info"]["node"] == "ci-7"
    assert [c.key.spec for c in cells] == ["t.py::test_x"]
    assert cells[0].samples_ms == [2.0, 2.1, 1.9]

    del foreign["benchmarks"][0]["stats"]["data"]  # saved without --benchmark-save-data
    path.write_text(json.dumps(foreign))
    proc = run_cli("import", str(path), "--store", str(tmp_path / "t.sqlite"))
    assert proc.returncode == 2 and "no raw samples" in proc.stderr
    assert not (tmp_path / "t.sqlite").exists()
    path.write_text("{not json")
    proc = run_cli("import", str(path), "--store", str(tmp_path / "t.sqlite"))
    assert proc.returncode == 2 and "is not JSON" in proc.stderr
