"""What a new user meets (issue 15): mistakes found early and said in the user's words.

Every test goes through the command line. Most use ``--dry-run`` or a store written through the
API, so only a few start timing workers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.measure.results import DONE, FAILED, INTERRUPTED
from harness.run.config import SessionConfig, preset_value
from harness.store import Store
from tests.conftest import run_cli
from tests.store_support import cell, session

TINY = "plain:depth=1,width=8,res=32"
FAST = ("--budget", "0.5", "--threads", "1")


def error_of(proc) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("accelbench: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


# -- 1: an unwritable report path -------------------------------------------------------------

def test_report_out_that_is_a_file_is_a_clean_usage_error(tmp_path: Path):
    store = tmp_path / "s.sqlite"
    with Store.open(store) as s:
        s.begin_session(session("20240105T101010-aaaa1111", config={"baseline": "torch"}))
        s.put_cell("20240105T101010-aaaa1111", cell(TINY))
    target = tmp_path / "taken.txt"
    target.write_text("mine")
    err = error_of(run_cli("report", "--store", str(store), "--out", str(target)))
    assert "not a folder" in err and str(target) in err
    assert target.read_text() == "mine"


# -- 2: --model mistakes before a session is stored -------------------------------------------

MODELS = '''import torch

def make():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)).eval(), torch.randn(1, 3, 8, 8)

def raises():
    x = 1
    raise ValueError("the factory is broken")

def not_a_module():
    return 42, torch.randn(1)
'''


@pytest.fixture
def models(tmp_path: Path) -> Path:
    path = tmp_path / "models.py"
    path.write_text(MODELS)
    return path


@pytest.mark.parametrize("ref, words", [
    ("missing.py:make", ["no such file"]),
    ("{models}:nosuch", ["defines no function 'nosuch'", "make"]),
])
def test_model_mistakes_found_before_any_session_is_stored(tmp_path, models, ref, words):
    store = tmp_path / "store.sqlite"
    proc = run_cli("run", "--model", ref.format(models=models), "--store", str(store), *FAST,
                   cwd=tmp_path)
    err = error_of(proc)
    for w in words:
        assert w in err, err
    assert not store.exists()  # nothing stored, no workers started


def test_dry_run_builds_the_model_and_points_at_the_raising_line(models):
    err = error_of(run_cli("run", "--model", f"{models}:raises", "--dry-run"))
    assert "raised ValueError: the factory is broken (at models.py:8)" in err
    err = error_of(run_cli("run", "--model", f"{models}:not_a_module", "--dry-run"))
    assert "nn.Module" in err
    ok = run_cli("run", "--model", f"{models}:make", "--backends", "torch", "--dry-run")
    assert ok.returncode == 0, ok.stderr


# -- 3: model paths from a TOML, from another folder, importing siblings ----------------------

def test_toml_model_paths_are_relative_to_the_toml_and_stored_absolute(tmp_path: Path):
    proj = tmp_path / "proj"
    (proj / "models").mkdir(parents=True)
    (proj / "models" / "mixer.py").write_text(
        "import torch\nclass ConvMixer(torch.nn.Sequential):\n"
        "    def __init__(self):\n        super().__init__(torch.nn.Conv2d(3, 4, 3))\n")
    (proj / "models" / "net.py").write_text(
        "import torch\nfrom mixer import ConvMixer\n"
        "def make():\n    return ConvMixer().eval(), torch.randn(1, 3, 8, 8)\n")
    (proj / "session.toml").write_text(
        '[session]\nmodel = "models/net.py:make"\nworkloads = ["@models/net.py:make"]\n'
        'backends = ["torch"]\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # listed twice (once per key): the message names it, with its absolute path
    err = error_of(run_cli("run", "--config", str(proj / "session.toml"), "--dry-run",
                           cwd=elsewhere))
    assert f"'@{proj / 'models' / 'net.py'}:make' is listed twice" in err
    (proj / "session.toml").write_text(
        '[session]\nmodel = "models/net.py:make"\nbackends = ["torch"]\n')
    proc = run_cli("run", "--config", str(proj / "session.toml"), "--dry-run", "--json",
                   cwd=elsewhere)  # builds it: the sibling import works from any folder
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["config"]["workloads"] == [f"@{proj / 'models' / 'net.py'}:make"]


# -- 4: piped output is not cut to 80 columns -------------------------------------------------

def test_piped_run_prints_full_width_tables_and_one_line_reasons(tmp_path: Path):
    proc = run_cli("run", TINY, "--backends", "torch,openvino:GPU", *FAST, "--no-report",
                   "--store", str(tmp_path / "s.sqlite"))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    row = next(ln for ln in lines if "openvino:GPU" in ln and "skipped" in ln)
    assert "is not available here; available devices" in row  # the reason on the row's line
    assert any("status" in ln for ln in lines)
    assert not any(ln.strip() in ("d", "f", "s") for ln in lines)


# -- 5: --resume with flags ---------------------------------------------------------------------

def _interrupted_store(tmp_path: Path) -> tuple[Path, str]:
    store = tmp_path / "s.sqlite"
    config = SessionConfig(workloads=(TINY,), backends=("torch",), threads=(1,), budget_s=0.5)
    sid = "20240105T101010-aaaa1111"
    with Store.open(store) as s:
        s.begin_session(session(sid, config=config.as_dict(), argv=["accelbench"],
                                version="0.1.0"))
        s.finish_session(sid, INTERRUPTED)
    return store, sid


def test_resume_refuses_flags_that_differ_and_says_which(tmp_path: Path):
    store, sid = _interrupted_store(tmp_path)
    err = error_of(run_cli("run", "--resume", "--budget", "5", "--backends", "torch,openvino:CPU",
                           "--store", str(store)))
    assert sid in err and "--budget 5 (session: 0.5)" in err
    assert "--backends torch,openvino:CPU (session: torch)" in err
    err = error_of(run_cli("run", "resnet:depth=18", "--resume", "--store", str(store)))
    assert f"SPEC/--model resnet:depth=18 (session: {TINY})" in err
    assert "--budget 10 (session: 0.5)" in err  # a spec's default, not the session's


def test_resume_with_the_same_command_line_finishes_the_session(tmp_path: Path):
    store, sid = _interrupted_store(tmp_path)
    proc = run_cli("run", TINY, "--backends", "torch", *FAST, "--resume", "--store", str(store),
                   "--json", "--no-report")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["session"] == sid and [c["status"] for c in data["cells"]] == [DONE]


# -- 6: one backend, did-you-mean, absent devices under --dry-run -----------------------------

def test_one_backend_says_a_baseline_is_needed():
    proc = run_cli("run", TINY, "--backends", "openvino:CPU", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "a speed-up needs a baseline too, e.g. --backends torch,openvino:CPU" in proc.stderr


@pytest.mark.parametrize("typed, meant", [("ov", "openvino"), ("pytorch", "torch"),
                                          ("opnevino:CPU", "openvino")])
def test_unknown_backend_suggests_the_registered_one(typed, meant):
    err = error_of(run_cli("run", TINY, "--backends", typed, "--dry-run"))
    assert f"did you mean '{meant}'" in err and "openvino:DEVICE" in err


def test_an_unknown_allocator_policy_is_bad_usage_before_anything_runs(tmp_path):
    err = error_of(run_cli("run", TINY, "--store", str(tmp_path / "s.sqlite"),
                           env={"ACCELBENCH_MALLOC": "jemalloc"}))
    assert "ACCELBENCH_MALLOC='jemalloc': valid: fixed, default" in err
    assert not (tmp_path / "s.sqlite").exists()


def test_dry_run_checks_that_the_device_exists():
    err = error_of(run_cli("run", TINY, "--backends", "torch,openvino:GPU", "--dry-run"))
    assert "GPU" in err and "not available" in err


# -- 7: defaults are visible --------------------------------------------------------------------

def test_run_help_shows_the_defaults():
    out = run_cli("run", "--help").stdout
    quick = f"quick preset uses {preset_value('quick', 'budget_s'):g} s"  # read from the preset
    for words in ("default: torch,openvino:CPU", "default: all", "default: 10 s",
                  quick, "default: 600 s", "default 0.01"):
        assert words in " ".join(out.split()), words


# -- 8: profile a user model, summary first ---------------------------------------------------

def test_profile_takes_a_user_model_and_prints_the_summary_first(models):
    proc = run_cli("profile", f"@{models}:make")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.index("FLOPs ") < out.index("layer ") and "Conv2d" in out
    data = json.loads(run_cli("profile", f"@{models}:make", "--json").stdout)
    assert data["flops"] == 2 * 4 * 3 * 9 * 36 and isinstance(data["flops"], int)


# -- 9: messages in the user's words ------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (("run", TINY, "--budget", "-1", "--dry-run"), ["--budget must be", "-1"]),
    (("run", TINY, "--timeout", "0", "--dry-run"), ["--timeout must be"]),
    (("run", TINY, "--threads", "0", "--dry-run"), ["--threads must be"]),
    (("run", TINY, "plain:res=32,depth=1,width=8", "--dry-run"), [f"'{TINY}' is listed twice"]),
    (("profile", TINY, "--limit", "-1"), ["--limit must be 0 or more"]),
])
def test_messages_speak_the_flags_typed(args, words):
    err = error_of(run_cli(*args))
    for w in words:
        assert w in err, err
    assert "budget_s" not in err and "timeout_s" not in err


def test_toml_errors_name_the_file(tmp_path: Path):
    cfg = tmp_path / "mine.toml"
    cfg.write_text(f'[session]\nworkloads = ["{TINY}"]\nbudget_s = -1\n')
    err = error_of(run_cli("run", "--config", str(cfg), "--dry-run"))
    assert str(cfg) in err and "budget_s" in err


def test_too_many_threads_warns_and_counts_are_singular():
    proc = run_cli("run", TINY, "--backends", "torch", "--threads", str(os.cpu_count() * 8),
                   "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "warning: --threads" in proc.stderr and "oversubscribe" in proc.stderr
    assert proc.stdout.startswith("1 cell (")


# -- 10: machine for people --------------------------------------------------------------------

def test_machine_text_is_for_people():
    out = run_cli("machine").stdout
    assert "{'" not in out and "[{" not in out
    caches = next(ln for ln in out.splitlines() if ln.startswith("caches"))
    assert "KiB" in caches or "MiB" in caches
    assert "versions accelbench " in out


# -- 11: JSON for scripts -----------------------------------------------------------------------

def test_json_has_units_in_names_kinds_and_one_type_per_field(tmp_path: Path):
    machine = json.loads(run_cli("machine", "--json").stdout)
    assert machine["caches"]["l3_bytes"] == machine["caches"]["l3"]
    assert "clock_hz" in machine["cpu"]
    store = tmp_path / "s.sqlite"
    sid = "20240105T101010-aaaa1111"
    with Store.open(store) as s:
        s.begin_session(session(sid, config={"baseline": "torch"}))
        s.put_cell(sid, cell(TINY, warmup_ms=3.5, meta={"flops": 421500.0}))
        s.put_cell(sid, cell(TINY, backend="openvino:CPU", status=FAILED, samples_ms=[],
                             reason="conversion: cannot trace"))
    rows = json.loads(run_cli("sessions", "--json", "--store", str(store)).stdout)
    assert rows[0]["started_epoch_s"] == rows[0]["started"]
    rep = json.loads(run_cli("report", "--json", "--store", str(store),
                             "--out", str(tmp_path / "r")).stdout)
    by = {c["backend"]: c for c in rep["cells"]}
    assert by["openvino:CPU"]["reason_kind"] == "conversion"
    assert by["torch"]["reason_kind"] is None
    assert by["torch"]["first_inference_ms"] == 3.5
    assert by["torch"]["flops"] == 421500 and isinstance(by["torch"]["flops"], int)
    assert rep["session_info"]["started_epoch_s"] == rep["session_info"]["started"]


# -- 12: interrupted before any cell finished ---------------------------------------------------

def test_report_of_a_session_interrupted_before_any_cell_says_how_to_resume(tmp_path: Path):
    store, sid = _interrupted_store(tmp_path)
    proc = run_cli("report", "--store", str(store), "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "interrupted before any cell finished" in text
    assert f"accelbench run --resume {sid}" in text


STUCK_MODEL = """
import pathlib, time, torch
class Stuck(torch.nn.Module):
    def forward(self, x):  # the first inference (in the worker's setup) never ends by itself
        pathlib.Path({mark!r}).touch()
        time.sleep(300)
        return x
def make(): return Stuck(), torch.zeros(1, 3)
"""


def test_run_interrupted_before_any_cell_says_so_and_how_to_resume(tmp_path: Path):
    """A real Ctrl-C: SIGINT to the command's process group (as a terminal sends it) while the
    first cell's worker is still in its first inference, so no cell can have finished."""
    import signal
    import subprocess
    import sys
    import time

    mark = tmp_path / "reached"
    (tmp_path / "stuck.py").write_text(STUCK_MODEL.format(mark=str(mark)))
    store = tmp_path / "s.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--model", f"{tmp_path / 'stuck.py'}:make",
         "--backends", "torch", *FAST, "--no-report", "--store", str(store)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        # A terminal's command starts with SIGINT at its default; a suite launched in the
        # background (`cmd &`, nohup) has it ignored, children inherit that, and Python then
        # installs no KeyboardInterrupt handler: the Ctrl-C below would never arrive.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mark.exists(), proc.communicate(timeout=30)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    text = " ".join(out.split())
    assert "interrupted before any cell finished" in text
    with Store.open(store) as s:
        (info,) = s.sessions()
    assert info.status == INTERRUPTED
    assert f"accelbench run --resume {info.id}" in text
