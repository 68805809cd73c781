"""Crashing, unconvertible, NaN, disagreeing and hostile models in one session: each fails or is flagged with its cause."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import run_cli
from tests.faults.support import (
    FAST,
    TINY,
    by_cell,
    model,
    name_of,
    stdout_json,
)

# ---------------------------------------------------------------------- 1, 7, 8: one session
# One session holds every misbehaving model, beside a healthy spec: they share the cost of
# starting the CLI, and "the others still done" is checked in the same run. These tests come
# last: the session runs in the background from the module's first test on.

FAULT_MODELS = ("crash", "untraceable", "parity", "nan", "writes_input", "xss")


@pytest.fixture(scope="module")
def fault_run(faults, tmp_path_factory):
    """The fault session's process: the longest run here, mostly on one core."""
    d = tmp_path_factory.mktemp("faults")
    store = d / "store.sqlite"
    args = [a for m in FAULT_MODELS for a in model(faults, m)]
    with (d / "run.out").open("w") as fo, (d / "run.err").open("w") as fe:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "run", TINY, *args, *FAST, "--store", str(store),
             "--json"], cwd=d, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL, stdout=fo, stderr=fe)
    yield proc, store
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module", autouse=True)
def _start_the_fault_session_early(request):
    """Start it with the module's first test when a selected test needs it: the tests before
    it (in file order) then run on the other core while it goes."""
    if any("fault_session" in item.fixturenames for item in request.session.items
           if item.module is request.module):
        request.getfixturevalue("fault_run")


@pytest.fixture(scope="module")
def fault_session(fault_run) -> dict:
    proc, store = fault_run
    rc = proc.wait(timeout=900)
    out, err = (store.parent / "run.out").read_text(), (store.parent / "run.err").read_text()
    assert "Traceback" not in err, err
    ran = stdout_json(subprocess.CompletedProcess(proc.args, rc, out, err))
    stored = run_cli("report", ran["session"], "--store", str(store), "--json")
    assert stored.returncode == 0, stored.stderr
    return {"rc": rc, "err": err, "run": ran, "report": stdout_json(stored), "store": store,
            "dir": store.parent / ran["session"]}


@pytest.mark.parametrize("source", ["run", "report"])
def test_crashed_workers_fail_their_own_cells_with_the_cause(fault_session, source):
    assert fault_session["rc"] == 1, fault_session["err"][-3000:]
    cells = by_cell(fault_session[source])
    assert len(cells) == 2 * (1 + len(FAULT_MODELS))
    for backend, signame in (("torch", "SIGSEGV"), ("openvino:CPU", "SIGKILL (out of memory?)")):
        assert cells[(TINY, backend)]["status"] == "done"
        crashed = cells[("crash", backend)]
        assert crashed["status"] == "failed"
        assert crashed["reason"].startswith(f"worker crashed during setup: worker killed by {signame}")
    # Conversion is OpenVINO's alone: PyTorch runs the same model fine.
    assert cells[("untraceable", "torch")]["status"] == "done"
    conv = cells[("untraceable", "openvino:CPU")]
    assert conv["status"] == "failed"
    assert conv["reason"].startswith("conversion:")
    assert "this forward refuses to be traced" in conv["reason"]
    assert [(s["spec"], s["candidate"]) for s in fault_session[source]["speedups"]] == \
        [(TINY, "openvino:CPU")]


@pytest.mark.parametrize("source", ["run", "report"])
def test_nan_outputs_and_parity_failures_are_flagged_not_speedups(fault_session, source):
    cells = by_cell(fault_session[source])
    assert cells[("parity", "torch")]["status"] == "done"
    differ = cells[("parity", "openvino:CPU")]
    assert differ["status"] == "flagged"
    assert differ["reason"].startswith("outputs differ from torch"), differ["reason"]
    assert differ["parity"]["ok"] is False
    for backend in ("torch", "openvino:CPU"):
        assert cells[("nan", backend)]["status"] == "flagged"
        assert "NaN" in cells[("nan", backend)]["reason"]
    # PyTorch times one input tensor: a model that writes into it is flagged, and its parity
    # output is still the seeded input's, so OpenVINO (which reads a copy) agrees with it
    writes = cells[("writes_input", "torch")]
    assert writes["status"] == "flagged"
    assert writes["reason"].startswith("the model writes into its input"), writes["reason"]
    assert cells[("writes_input", "openvino:CPU")]["status"] == "done"
    assert cells[("writes_input", "openvino:CPU")]["parity"]["ok"] is True
    flagged_specs = {c["spec"] for c in fault_session[source]["cells"]
                     if name_of(c["spec"]) in ("parity", "nan", "writes_input")}
    assert not [s for s in fault_session[source]["speedups"] if s["spec"] in flagged_specs]


def test_flagged_cells_say_why_in_the_reports(fault_session):
    md = (fault_session["dir"] / "report.md").read_text()
    html = (fault_session["dir"] / "report.html").read_text()
    for text in (md, html):
        assert "outputs differ from torch" in text
        assert "outputs hold NaN or Inf" in text
    rows = [ln for ln in md.splitlines() if ln.startswith("| @") and ":parity |" in ln]
    assert any("| openvino:CPU |" in r and "| flagged |" in r for r in rows), rows
    assert html.count('<tr class="flagged">') == 4


def test_reasons_are_escaped_in_the_reports(fault_session):
    cells = by_cell(fault_session["report"])
    assert "<script>alert(1)</script>|**x**" in cells[("xss", "torch")]["reason"]
    html = (fault_session["dir"] / "report.html").read_text()
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;|**x**" in html
    md = (fault_session["dir"] / "report.md").read_text()
    assert not re.search(r"(?<!\\)<script", md)  # raw HTML runs wherever the .md is shown
    assert r"\<script\>alert(1)\</script\>\|\*\*x\*\*" in md
    # Every row of a table has as many cell separators (unescaped pipes) as its header.
    for table in re.findall(r"(?m)(?:^\|.*\n)+", md):
        counts = {len(re.findall(r"(?<!\\)\|", row)) for row in table.splitlines()}
        assert len(counts) == 1, table
