"""``accelbench compare``: joins on identity, significance of ratios, warnings, gates, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.compare_support import AMD, INTEL, SPECS, latencies, machine_store
from tests.conftest import run_cli
from tests.store_support import sha


def _json(*args: str) -> tuple[int, dict]:
    proc = run_cli("compare", *args, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_real_stores_from_two_machines(tmp_path: Path) -> None:
    before = (sha(INTEL), sha(AMD))
    rc, data = _json(str(INTEL), str(AMD))
    assert rc == 0
    assert after_is(before)
    ids = [s["machine"] for s in data["sources"]]
    assert len(set(ids)) == 2 and data["reference"] == "intel-xeon-amx-quick4"
    assert {s["brand"].split()[0] for s in data["sources"]} == {"Intel(R)", "AMD"}
    assert len(data["latencies"]) == 8 and len(data["speedups"]) == 4
    for row in data["speedups"]:
        ref, other = row["speedup"]
        assert ref["ci95"][0] <= ref["value"] <= ref["ci95"][1]
        ch = row["change"][0]
        assert ch["ratio"] == pytest.approx(other["value"] / ref["value"])
        noise = ch["noise"]
        assert ch["significant"] == (ch["ci95"][0] > 1 + noise or ch["ci95"][1] < 1 / (1 + noise))
    # the AMD session ran on a shared, busy machine: the comparison says so
    assert any("busier than its cores" in w for w in data["warnings"])


def after_is(before: tuple[str, str]) -> bool:
    return (sha(INTEL), sha(AMD)) == before  # opened read-only: not a byte changed


def test_same_distribution_is_not_significant_and_passes_gates(tmp_path: Path) -> None:
    a = machine_store(tmp_path / "a.sqlite", "aaaa", latencies(), seed=1)
    b = machine_store(tmp_path / "b.sqlite", "bbbb", latencies(), seed=2)
    proc = run_cli("compare", str(a), str(b), "--fail-on-regression", "median:5%",
                   "--fail-on-regression", "speedup:5%")
    assert proc.returncode == 0, proc.stderr
    assert "within noise" in proc.stdout
    _, data = _json(str(a), str(b))
    assert all(r["change"][0]["ci95"][0] < 1 < r["change"][0]["ci95"][1]
               for r in data["latencies"])


def test_slower_machine_fails_the_median_gate_naming_each_cell(tmp_path: Path) -> None:
    a = machine_store(tmp_path / "a.sqlite", "aaaa", latencies(), seed=1)
    b = machine_store(tmp_path / "b.sqlite", "bbbb", latencies(slow=1.3), seed=2)
    proc = run_cli("compare", str(a), str(b), "--fail-on-regression", "median:5%")
    assert proc.returncode == 1
    lines = [x for x in proc.stderr.splitlines() if "regression" in x]
    assert len(lines) == len(SPECS)  # the torch cells, not the unchanged OpenVINO ones
    assert all("torch" in x and "median:5%" in x for x in lines)
    for spec in SPECS:
        assert any(spec in x for x in lines)
    # a threshold beyond the interval: no regression
    assert run_cli("compare", str(a), str(b), "--fail-on-regression", "median:50%").returncode == 0
    # slower torch means a larger speed-up: not a speed-up regression
    assert run_cli("compare", str(a), str(b), "--fail-on-regression", "speedup:5%").returncode == 0


def test_lost_speedup_fails_the_speedup_gate(tmp_path: Path) -> None:
    a = machine_store(tmp_path / "a.sqlite", "aaaa", latencies(), seed=1)
    b = machine_store(tmp_path / "b.sqlite", "bbbb", latencies(slow_ov=1.25), seed=2)
    proc = run_cli("compare", str(a), str(b), "--fail-on-regression", "speedup:5%",
                   "--fail-on-regression", "median:0.5s")  # far beyond any change here
    assert proc.returncode == 1
    lines = [x for x in proc.stderr.splitlines() if "regression" in x]
    assert len(lines) == len(SPECS) and all(x.count("speedup:5%") == 1 for x in lines)


@pytest.mark.parametrize("rule", ["median", "median:5", "mean:5%", "speedup:-5%", "median:5%%",
                                  "median:five%"])
def test_malformed_rule_exits_2(tmp_path: Path, rule: str) -> None:
    proc = run_cli("compare", str(INTEL), str(AMD), "--fail-on-regression", rule)
    assert proc.returncode == 2
    assert "regression rule" in proc.stderr and rule in proc.stderr
    assert proc.stdout == ""


def test_pair_warnings_versions_threads_effective_precision(tmp_path: Path) -> None:
    a = machine_store(tmp_path / "a.sqlite", "aaaa", latencies(), seed=1)
    b = machine_store(tmp_path / "b.sqlite", "bbbb", latencies(), seed=2,
                      versions={"openvino": "2025.1.0"}, effective="bf16")
    c = machine_store(tmp_path / "c.sqlite", "cccc", latencies(), seed=3, threads=4)
    _, data = _json(str(a), str(b), str(c))
    w = "\n".join(data["warnings"])
    assert "a vs b: openvino 2026.4.1 vs 2025.1.0" in w
    assert "a vs b: the runtime ran a different effective precision in 2 cells" in w
    assert "a vs c: sessions ran different threads (['2'] vs ['4'])" in w
    # different threads: different identity, nothing joined with c
    assert all(r["change"][1] is None for r in data["latencies"])
    assert data["unmatched"]["c"] == 4


def test_session_selection_and_outputs(tmp_path: Path) -> None:
    store = tmp_path / "two.sqlite"
    machine_store(store, "aaaa", latencies(), seed=1, sid="20261128-100000-first")
    machine_store(store, "aaaa", latencies(slow=2.0), seed=2, sid="20261128-110000-second",
                  started=1.9e9)
    out = tmp_path / "report"
    proc = run_cli("compare", f"{store}#20261128-100000-first", f"{store}#20261128-110000",
                   "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "two#20261128-100000-first (reference)" in proc.stdout
    assert {p.name for p in out.iterdir()} == {"compare.md", "compare.html", "compare.png",
                                               "compare.json"}
    html = (out / "compare.html").read_text()
    assert "data:image/png;base64," in html and "<img" in html and "src='compare.png'" not in html
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "compare.md").read_text()
    assert "Speed-ups per machine" in md and "×2.0" in md  # torch twice as slow: ratio ~2
    data = json.loads((out / "compare.json").read_text())
    assert data["regressions"] == [] and len(data["sources"]) == 2


def test_bad_sources_exit_2(tmp_path: Path) -> None:
    proc = run_cli("compare", str(INTEL), str(tmp_path / "missing.sqlite"))
    assert proc.returncode == 2 and "no store at" in proc.stderr
    proc = run_cli("compare", f"{INTEL}#nosuchsession", str(AMD))
    assert proc.returncode == 2 and "no session matching" in proc.stderr
    proc = run_cli("compare", str(INTEL))
    assert proc.returncode == 2 and "at least two" in proc.stderr
    proc = run_cli("compare", str(INTEL), str(INTEL))
    assert proc.returncode == 2 and "twice" in proc.stderr


def test_median_draws_match_the_cells_own_block_ci() -> None:
    """The draws behind a comparison are the same bootstrap that gives a cell its CI."""
    import numpy as np

    from harness.measure import stats

    rng = np.random.default_rng(5)
    blocks = [30] * 10
    x = list(np.repeat(1 + 0.1 * rng.standard_normal(10), 30) + 0.01 * rng.standard_normal(300))
    draws, method = stats.median_draws(x, blocks, seed=0)
    assert method == "blocks" and draws.shape == (2000,)
    lo, hi = np.percentile(draws, [2.5, 97.5])
    assert [lo, hi] == pytest.approx(stats.summarize(x, blocks)["ci95"])
    iid, method = stats.median_draws(x, None, seed=0)
    assert method == "iid"
    # iterations treated as independent ignore the drift between blocks: a narrower interval
    assert np.ptp(np.percentile(iid, [2.5, 97.5])) < hi - lo


def test_compare_and_export_import_neither_torch_nor_openvino(tmp_path: Path) -> None:
    """Comparing stores from CI runners must not pay for the frameworks (guard lazy imports)."""
    import subprocess
    import sys

    code = (
        "import contextlib, io, json, sys\n"
        "from harness.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rcs = [main(['compare', {str(INTEL)!r}, {str(AMD)!r}, '--out', "
        f"{str(tmp_path / 'c')!r}]),\n"
        f"           main(['export', '--format', 'pytest-benchmark', '--store', {str(AMD)!r}])]\n"
        "print(json.dumps([rcs, [m for m in ('torch', 'openvino') if m in sys.modules]]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == [[0, 0], []]
    assert (tmp_path / "c" / "compare.html").is_file()
