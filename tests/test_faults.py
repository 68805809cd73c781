"""Faults, interruptions and bad input lose nothing: each case through the real command line.

The tests run ``accelbench`` in a subprocess, as a user would, and check what the user and the
store are left with: a crashed, hung or misbehaving worker fails its own cell with the cause;
Ctrl-C, SIGTERM and ``kill -9`` keep the finished cells, leave no worker running, and ``--resume``
completes the session; two sessions share a store; a bad store is a one-line exit 2 that changes
no byte; reasons are escaped in the reports. Where many inputs are tried (the property tests,
every command on every bad store) ``harness.cli.main`` is called in-process, because a process
start each (torch's import, mostly) would cost minutes.

The misbehaving models live in one file (``FAULTS``). They misbehave on real tensors only:
a user's model is first profiled on meta tensors in the worker, and OpenVINO converts by
TorchScript tracing, so ``torch.jit.is_tracing()`` singles out the OpenVINO side.

Timings are never asserted: the machine is shared. Waits are bounded, and every process a test
starts (and every worker seen under it) is killed at teardown if still alive.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import hashlib
import io
import json
import math
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archs
from harness import cli
from harness.config import SessionConfig
from harness.results import CellKey, CellResult, SessionInfo
from harness.store import Store
from harness.worker_client import WorkerClient, reap_on_exit
from tests.conftest import ROOT, run_cli

TINY = archs.format_spec(archs.parse("plain:res=16,depth=1,width=4"))  # as cells name it
FAST = ("--budget", "0.3", "--threads", "1")  # short cells; one thread leaves a core to others
HAVE_PROC = Path("/proc/self/stat").exists()

FAULTS = '''
import os
import signal
import time

import torch


class Fault(torch.nn.Module):
    def __init__(self, what):
        super().__init__()
        self.what = what
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        if x.device.type == "meta":  # the profiler's pass
            return y
        tracing = torch.jit.is_tracing()  # OpenVINO's conversion
        if self.what == "crash":  # PyTorch segfaults; OpenVINO is OOM-killed while tracing
            os.kill(os.getpid(), signal.SIGKILL if tracing else signal.SIGSEGV)
        elif self.what == "untraceable" and tracing:
            raise RuntimeError("this forward refuses to be traced")
        elif self.what == "parity" and tracing:
            return y + 1
        elif self.what == "nan":
            return y * float("nan")
        elif self.what == "slow":
            time.sleep(60)
        elif self.what == "hold" or (self.what == "hold_trace" and tracing):
            hold()
        return y


def hold():
    """Block while the test's hold file exists (2 minutes at most), after saying so."""
    path = os.environ.get("FAULTS_HOLD")
    if not path or not os.path.exists(path):
        return
    open(os.environ["FAULTS_REACHED"], "a").close()
    deadline = time.monotonic() + 120
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def _make(what):
    return Fault(what).eval(), torch.randn(1, 3, 8, 8)


def fine(): return _make("fine")
def crash(): return _make("crash")
def untraceable(): return _make("untraceable")
def parity(): return _make("parity")
def nan(): return _make("nan")
def slow(): return _make("slow")
def hold_eager(): return _make("hold")
def hold_trace(): return _make("hold_trace")
def xss(): raise RuntimeError("<script>alert(1)</script>|**x**")
'''


@pytest.fixture(scope="module")
def faults(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "faults.py"
    path.write_text(FAULTS)
    return path


def model(faults: Path, factory: str) -> tuple[str, str]:
    return ("--model", f"{faults}:{factory}")


def name_of(spec: str) -> str:
    """A cell's workload as the tests call it: the factory of a user model, else the spec."""
    return spec.rpartition(":")[2] if spec.startswith("@") else spec


def by_cell(report: dict) -> dict[tuple[str, str], dict]:
    cells = {(name_of(c["spec"]), c["backend"]): c for c in report["cells"]}
    assert len(cells) == len(report["cells"]), "a cell is listed twice"
    return cells


def stdout_json(proc: subprocess.CompletedProcess) -> dict:
    try:
        return json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"not JSON on stdout (rc {proc.returncode}):\n{proc.stdout[-2000:]}\n"
                    f"stderr:\n{proc.stderr[-3000:]}")


def sessions(store: Path) -> list[dict]:
    proc = run_cli("sessions", "--store", str(store), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, start time) of a process, from /proc; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = text.rpartition(")")[2].split()
    return rest[0], int(rest[1]), rest[19]


def _alive(pid: int, started: str) -> bool:
    """Still running: the same process (not a reused pid) and not a zombie awaiting reaping."""
    stat = _proc_stat(pid)
    return stat is not None and stat[2] == started and stat[0] not in ("Z", "X")


def _worker_children(ppid: int) -> dict[int, tuple[str, str]]:
    """pid -> (start time, command line) of the ``harness.worker`` processes whose parent is ppid."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat is None or stat[1] != ppid:
            continue
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if b"harness.worker" in argv:
                found[int(entry)] = (stat[2], b" ".join(argv).decode(errors="replace"))
    return found


def _wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Session:
    """An ``accelbench`` process started in the background, and the workers seen under it."""

    proc: subprocess.Popen
    out: Path
    err: Path
    workers: dict[int, tuple[str, str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        while not self._stop.is_set() and self.proc.poll() is None:
            if HAVE_PROC:
                self.workers.update(_worker_children(self.proc.pid))
            time.sleep(0.05)

    def wait(self, timeout: float = 300) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._stop.set()
        assert "Traceback" not in self.stderr(), self.stderr()
        return rc

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def live_workers(self) -> dict[int, str]:
        return {pid: cmd for pid, (t0, cmd) in self.workers.items() if _alive(pid, t0)}


@pytest.fixture
def spawn(tmp_path):
    """Start ``accelbench ARGS`` in the background; at teardown kill whatever is left of it."""
    started: list[Session] = []

    def start(*args: str, env: dict | None = None) -> Session:
        n = len(started)
        out, err = tmp_path / f"session{n}.out", tmp_path / f"session{n}.err"
        with out.open("w") as fo, err.open("w") as fe:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness.cli", *args], cwd=tmp_path,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                # A background job may inherit SIGINT ignored; Ctrl-C must reach this one.
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        session = Session(proc, out, err)
        threading.Thread(target=session.watch, daemon=True).start()
        started.append(session)
        return session

    yield start
    for session in started:
        session._stop.set()
        if session.proc.poll() is None:
            session.proc.kill()
            session.proc.wait()
        for pid in session.live_workers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def hold(tmp_path) -> tuple[Path, Path, dict]:
    """A hold file the ``hold*`` models wait on, the file they create on reaching it, their env."""
    path, reached = tmp_path / "hold", tmp_path / "reached"
    path.touch()
    yield path, reached, {"FAULTS_HOLD": str(path), "FAULTS_REACHED": str(reached)}
    path.unlink(missing_ok=True)  # releases any worker still holding


def wait_for_hold(session: Session, reached: Path) -> None:
    deadline = time.monotonic() + 240
    while not reached.exists():
        if session.proc.poll() is not None:
            pytest.fail(f"the session ended (rc {session.proc.returncode}) before the hold:\n"
                        f"{session.stderr()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail("the session never reached the hold")
        time.sleep(0.1)


# ---------------------------------------------------------------------- 2: time limit


def test_a_cell_past_its_time_limit_fails_and_its_worker_is_killed(faults, spawn, tmp_path):
    store = tmp_path / "store.sqlite"
    session = spawn("run", *model(faults, "slow"), *FAST, "--timeout", "3", "--store", str(store),
                    "--json", "--no-report")
    assert session.wait(timeout=240) == 1, session.stderr()[-3000:]
    cells = by_cell(json.loads(session.stdout()))
    # Both sides hit the limit in turn: after the first, the session went on to the next cell.
    for backend in ("torch", "openvino:CPU"):
        assert cells[("slow", backend)]["status"] == "failed"
        assert cells[("slow", backend)]["reason"].startswith("timeout after 3 s"), cells
    assert [s["status"] for s in sessions(store)] == ["finished"]
    if HAVE_PROC:
        assert any("--backend torch" in cmd for _, cmd in session.workers.values()), session.workers
        assert session.live_workers() == {}


# ---------------------------------------------------------------------- 3: interruptions


def interrupt(session: Session, reached: Path, *signals: signal.Signals) -> None:
    """Once the session holds, send ``signals`` a second apart; it must stop with 130."""
    wait_for_hold(session, reached)
    for i, signum in enumerate(signals):
        time.sleep(i and 1.0)  # the next one lands while the stuck worker is given its grace
        session.proc.send_signal(signum)
    assert session.wait(timeout=120) == 130, session.stderr()[-3000:]
    assert "interrupted: " in session.stdout() and "--resume" in session.stdout()
    if HAVE_PROC:  # the hold is still on: the worker stuck in it was killed, not released
        assert session.workers and session.live_workers() == {}, session.workers
    reached.unlink()


def test_ctrl_c_twice_and_sigterm_keep_finished_cells_and_resume_finishes(faults, spawn, hold,
                                                                     tmp_path):
    hold_file, reached, env = hold
    store = tmp_path / "store.sqlite"
    args = ("--store", str(store), "--no-report")
    # The first group (TINY) is stored by the time the second one's worker holds. Ctrl-C is
    # pressed twice: the second lands while the stuck worker is given its grace to quit.
    session = spawn("run", TINY, *model(faults, "hold_eager"), "--backends", "torch", *FAST,
                    *args, env=env)
    interrupt(session, reached, signal.SIGINT, signal.SIGINT)
    [info] = sessions(store)
    assert (info["status"], info["cells"]) == ("interrupted", 1)

    interrupt(spawn("run", "--resume", *args, env=env), reached, signal.SIGTERM)
    assert [(s["session"], s["status"], s["cells"]) for s in sessions(store)] == \
        [(info["session"], "interrupted", 1)]

    hold_file.unlink()
    proc = run_cli("run", "--resume", info["session"], *args, "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = stdout_json(proc)
    assert resumed["session"] == info["session"]
    assert sorted(by_cell(resumed)) == sorted([(TINY, "torch"), ("hold_eager", "torch")])
    assert {c["status"] for c in resumed["cells"]} == {"done"}
    [info] = sessions(store)
    assert (info["status"], info["cells"]) == ("finished", 2)


def test_reap_on_exit_kills_the_workers_left_running():
    """What stops the worker after a second Ctrl-C: a client nobody closed is killed on exit."""
    with reap_on_exit():
        client = WorkerClient("torch", 1)
    assert client.proc.poll() is not None
    client.close()


@pytest.mark.skipif(not HAVE_PROC, reason="finds the orphaned workers through /proc")
def test_kill_9_loses_at_most_the_group_in_flight(faults, spawn, hold, tmp_path):
    hold_file, reached, env = hold
    store = tmp_path / "store.sqlite"
    session = spawn("run", TINY, *model(faults, "hold_trace"), *FAST, "--store", str(store),
                    "--no-report", env=env)
    wait_for_hold(session, reached)  # torch is set up and idle; OpenVINO is converting
    orphans = {pid: t0 for pid, (t0, _) in session.workers.items() if _alive(pid, t0)}
    idle = [pid for pid in orphans if "--backend torch" in session.workers[pid][1]]
    assert len(orphans) == 2 and len(idle) == 1, session.workers
    session.proc.kill()
    session.wait()

    # A worker waiting for its next request reads EOF and exits; the busy one once it is free.
    _wait_until(lambda: not _alive(idle[0], orphans[idle[0]]), 60, "the idle worker to exit")
    proc = run_cli("report", "--store", str(store), "--json")
    assert proc.returncode == 0, proc.stderr
    stored = stdout_json(proc)
    assert sorted(by_cell(stored)) == [(TINY, "openvino:CPU"), (TINY, "torch")]
    assert {c["status"] for c in stored["cells"]} == {"done"}
    hold_file.unlink()
    _wait_until(lambda: not any(_alive(p, t0) for p, t0 in orphans.items()), 180,
                "the orphaned workers to exit")

    proc = run_cli("run", "--resume", stored["session"], "--store", str(store), "--json",
                   "--no-report", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = by_cell(stdout_json(proc))
    assert sorted(cells) == sorted((n, b) for n in (TINY, "hold_trace")
                                   for b in ("torch", "openvino:CPU"))
    assert {c["status"] for c in cells.values()} == {"done"}


# ---------------------------------------------------------------------- 4: two writers


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory) -> dict:
    """Two sessions of the same spec started at once on one new store (and the IR cache beside
    it, which both fill with the same entry)."""
    d = tmp_path_factory.mktemp("shared")
    store = d / "store.sqlite"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = {}
    for k in ("a", "b"):
        with (d / f"{k}.out").open("w") as fo, (d / f"{k}.err").open("w") as fe:
            procs[k] = subprocess.Popen(
                [sys.executable, "-m", "harness.cli", "run", TINY, *FAST, "--store", str(store),
                 "--json", "--no-report"], cwd=d, env=env, stdin=subprocess.DEVNULL,
                stdout=fo, stderr=fe)
    try:
        rcs = {k: p.wait(timeout=600) for k, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    return {"store": store, "rcs": rcs,
            "out": {k: (d / f"{k}.out").read_text() for k in procs},
            "err": {k: (d / f"{k}.err").read_text() for k in procs}}


def test_two_sessions_writing_one_store_at_once_both_complete(shared_store):
    for k, rc in shared_store["rcs"].items():
        assert "Traceback" not in shared_store["err"][k], shared_store["err"][k]
        assert rc == 0, shared_store["err"][k][-3000:]
    runs = {k: json.loads(text) for k, text in shared_store["out"].items()}
    for run in runs.values():
        assert sorted(by_cell(run)) == [(TINY, "openvino:CPU"), (TINY, "torch")]
        assert {c["status"] for c in run["cells"]} == {"done"}
    listed = {s["session"]: s for s in sessions(shared_store["store"])}
    assert {sid: s["cells"] for sid, s in listed.items()} == {r["session"]: 2 for r in runs.values()}
    assert {s["status"] for s in listed.values()} == {"finished"}


# ---------------------------------------------------------------------- 5, 8: bad stores


def _session(i: int) -> SessionInfo:
    return SessionInfo(f"20200101-00000{i}-{i:06x}", started=1.6e9 + i, machine_id="m0",
                       config={"name": "made-by-a-test", "baseline": "torch"},
                       argv=["accelbench", "run"], version="0.1.0")


def make_store(path: Path, ids: range = range(3)) -> list[str]:
    """A valid store with a few sessions, big enough (samples) to span many pages."""
    with Store.open(path) as store:
        store.add_machine("m0", {"id": "m0"})
        for i in ids:
            info = _session(i)
            store.begin_session(info)
            for backend in ("torch", "openvino:CPU"):
                samples = [1.0 + j * 1e-4 for j in range(3000)]
                store.put_cell(info.id, CellResult(CellKey("plain:res=16", backend, "f32", 1),
                                                   "done", None, samples, 2.0, {}, 0.0, 1.0))
            store.finish_session(info.id, "finished")
    return [_session(i).id for i in ids]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "good.sqlite"
    make_store(path)
    return path


def _in_one_file(path: Path) -> None:
    """Fold the WAL into the main file so it alone holds the store (and its hash says all)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()


def bad_store(kind: str, template: Path, path: Path) -> Path:
    data = template.read_bytes()
    rnd = random.Random(kind)
    if kind == "garbage":
        path.write_bytes(bytes(rnd.randrange(256) for _ in range(8192)))
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":  # a b-tree page overwritten
        page = bytearray(data)
        page[8192:12288] = bytes(rnd.randrange(256) for _ in range(4096))
        path.write_bytes(bytes(page))
    elif kind in ("newer", "malformed-row"):
        shutil.copyfile(template, path)
        conn = sqlite3.connect(path)
        if kind == "newer":
            conn.execute("PRAGMA user_version = 99")
            conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        else:
            conn.execute("UPDATE cells SET samples = '[1.0, \"x\"' WHERE id = 3")
        conn.commit()
        conn.close()
        _in_one_file(path)
    elif kind == "not-a-store":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE songs (title TEXT, year INTEGER)")
        conn.execute("INSERT INTO songs VALUES ('x', 1999)")
        conn.commit()
        conn.close()
    return path


BAD_KINDS = ("garbage", "newer", "truncated", "corrupt", "not-a-store")
STORE_COMMANDS = ("run", "report", "sessions", "merge-from", "merge-into")


def store_command(command: str, bad: Path, other: Path) -> tuple[str, ...]:
    return {
        "run": ("run", TINY, *FAST, "--no-report", "--store", str(bad)),
        "report": ("report", "--store", str(bad)),
        "sessions": ("sessions", "--store", str(bad), "--json"),
        "merge-from": ("merge", str(bad), "--store", str(other)),
        "merge-into": ("merge", str(other), "--store", str(bad)),
    }[command]


def assert_refused(args: tuple[str, ...], rc: int, out: str, err: str, bad: Path) -> None:
    assert rc == 2, (args, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("accelbench: error:"), (args, err)
    assert bad.name in lines[0], lines[0]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_a_bad_store_is_refused_in_one_line_and_left_as_it_was(kind, template, tmp_path):
    """Every command on every kind of bad store (in-process: a process start each would cost a
    minute), and one command per kind, in turn, as a real ``accelbench`` process."""
    bad = bad_store(kind, template, tmp_path / f"{kind}.sqlite")
    other = tmp_path / "other.sqlite"
    shutil.copyfile(template, other)
    before = {p: sha256(p) for p in (bad, other)}
    for command in STORE_COMMANDS:
        args = store_command(command, bad, other)
        assert_refused(args, *main_in_process(*args), bad)
    args = store_command(STORE_COMMANDS[BAD_KINDS.index(kind)], bad, other)
    proc = run_cli(*args, timeout=300)
    assert_refused(args, proc.returncode, proc.stdout, proc.stderr, bad)
    assert {p: sha256(p) for p in (bad, other)} == before


def test_merge_validates_every_row_first_and_a_good_store_merges(template, shared_store,
                                                                  tmp_path):
    target = tmp_path / "target.sqlite"
    mine = make_store(target, range(7, 8))
    bad = bad_store("malformed-row", template, tmp_path / "from-elsewhere.sqlite")
    before = sha256(target)
    proc = run_cli("merge", str(bad), "--store", str(target))
    assert proc.returncode == 2
    assert "cell row 3" in proc.stderr and "nothing was merged" in proc.stderr, proc.stderr
    assert sha256(target) == before
    newer = bad_store("newer", template, tmp_path / "newer.sqlite")  # a target is checked too
    newer_before = sha256(newer)
    proc = run_cli("merge", str(target), "--store", str(newer))
    assert proc.returncode == 2 and "schema v99" in proc.stderr, proc.stderr
    assert (sha256(newer), sha256(target)) == (newer_before, before)

    theirs = [json.loads(out)["session"] for out in shared_store["out"].values()]
    proc = run_cli("merge", str(shared_store["store"]), "--store", str(target))
    assert proc.returncode == 0, proc.stderr
    assert "added 2 sessions, 4 cells" in proc.stdout, proc.stdout
    listed = {s["session"]: s["cells"] for s in sessions(target)}
    assert listed == {**{sid: 2 for sid in mine}, **{sid: 2 for sid in theirs}}
    again = run_cli("merge", str(shared_store["store"]), "--store", str(target))
    assert again.returncode == 0 and "added 0 sessions, 0 cells" in again.stdout, again.stdout


def test_no_pickle_or_eval_in_the_product():
    """Results, stores and configs are data; nothing loads code or objects from them."""
    banned_modules = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal",
                      "joblib"}
    found = []
    files = sorted(p for pkg in ("archs", "harness", "reports") for p in (ROOT / pkg).rglob("*.py"))
    assert len(files) > 20
    for path in files:
        where = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            line = f"{where}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                found += [f"{line} imports {a.name}" for a in node.names
                          if a.name.split(".")[0] in banned_modules]
            elif isinstance(node, ast.ImportFrom) and \
                    (node.module or "").split(".")[0] in banned_modules:
                found.append(f"{line} imports from {node.module}")
            elif isinstance(node, ast.Name) and (node.id in ("eval", "exec") or "pickle" in node.id):
                found.append(f"{line} uses {node.id}")
            elif isinstance(node, ast.Attribute) and "pickle" in node.attr:
                found.append(f"{line} uses .{node.attr}")
            elif isinstance(node, ast.Call):
                kw = {k.arg: k.value for k in node.keywords}
                if "allow_pickle" in kw and not (isinstance(kw["allow_pickle"], ast.Constant)
                                                 and kw["allow_pickle"].value is False):
                    found.append(f"{line} passes allow_pickle other than False")
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr == "load" and \
                        isinstance(func.value, ast.Name) and func.value.id == "torch":
                    wo = kw.get("weights_only")
                    if not (isinstance(wo, ast.Constant) and wo.value is True):
                        found.append(f"{line} calls torch.load without weights_only=True")
    assert not found, "\n".join(found)
    text = "\n".join(p.read_text(encoding="utf-8") for p in files)
    assert not re.search(r"(?<![\w.])eval\(", text)


# ---------------------------------------------------------------------- 6: any input


def main_in_process(*argv: str) -> tuple[int, str, str]:
    """``accelbench ARGV`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(list(argv))
        except SystemExit as exc:  # argparse's own usage errors: exit 2 by design
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()


def assert_clean(rc: int, out: str, err: str) -> None:
    assert rc in (0, 2), (rc, out, err)
    assert "Traceback" not in err
    if rc == 2:
        assert err.startswith(("accelbench: error:", "usage:")), err
    else:
        assert "cells" in out, out


FAMILIES = {f.name: [p.name for p in f.params] for f in archs.list_archs()}
KEYS = [f.name for f in fields(SessionConfig)]
WORDS = ["", "0", "1", "-1", "16", "0.5", "1e9", "1e400", "nan", "inf", "true", "false",
         "cifar", "imagenet", "DARTS_V2", "relu", " ", "=", ",", ":", "\x00", "é", "@x.py:f"]
value_text = st.one_of(st.sampled_from(WORDS), st.integers(-2**70, 2**70).map(str),
                       st.floats().map(repr), st.text(max_size=6))


@st.composite
def near_specs(draw) -> str:
    """Spec-shaped text: a family (or not), its keys (or others), values of any kind."""
    fam = draw(st.sampled_from([*FAMILIES, "", "nope", "PLAIN"]))
    keys = [*FAMILIES.get(fam, []), "bogus", "", "res "]
    pairs = draw(st.lists(st.tuples(st.sampled_from(keys), value_text), max_size=4))
    sep = draw(st.sampled_from([":", ":", "", "::", ": "]))
    return fam + (sep + ",".join(f"{k}={v}" for k, v in pairs) if pairs or sep else "")


spec_text = st.one_of(st.text(max_size=40), near_specs())
scalars = st.one_of(st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=10),
                    st.sampled_from(WORDS), st.datetimes(), st.dates())
toml_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                     st.dictionaries(st.text(max_size=5), inner, max_size=2)),
    max_leaves=6)
plausible = {
    "workloads": st.lists(st.one_of(near_specs(), st.just(TINY), st.just("@m.py:make")),
                          max_size=3),
    "backends": st.lists(st.sampled_from(["torch", "openvino:CPU", "openvino", "torch-compile",
                                          "torch:cuda", "openvino:GPU", "tensorflow", "", ":"]),
                         max_size=3),
    "precisions": st.lists(st.sampled_from(["f32", "bf16", "f16", ""]), max_size=3),
    "threads": st.lists(st.integers(-2, 2000), max_size=3),
    "baseline": st.sampled_from(["torch", "openvino:CPU", "nope"]),
}


def toml(value) -> str:
    """A value written as TOML (the standard library reads TOML but does not write it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml(str(k))} = {toml(v)}" for k, v in value.items()) + "}"


@st.composite
def session_tables(draw) -> dict:
    chosen = draw(st.lists(st.sampled_from([*KEYS, "bogus"]), unique=True, max_size=len(KEYS)))
    return {k: draw(st.one_of(toml_values, plausible.get(k, toml_values))) for k in chosen}


FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "session.toml"


@FUZZ
@given(text=spec_text)
def test_any_spec_text_is_listed_or_refused_cleanly(text):
    assert_clean(*main_in_process("run", "--dry-run", "--", text))


@FUZZ
@given(table=session_tables())
def test_any_config_values_are_accepted_or_refused_cleanly(table, config_file):
    body = "".join(f"{toml(k)} = {toml(v)}\n" for k, v in table.items())
    config_file.write_text("[session]\n" + body, encoding="utf-8")
    assert_clean(*main_in_process("run", "--config", str(config_file), "--dry-run"))


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(
    lambda b: b"[session]\nworkloads = [\"plain\"]\n" + b)))
def test_any_config_bytes_are_accepted_or_refused_cleanly(data, config_file):
    config_file.write_bytes(data)
    assert_clean(*main_in_process("run", "--config", str(config_file), "--dry-run", "--json"))


# ---------------------------------------------------------------------- 1, 7, 8: one session
# One session holds every misbehaving model, beside a healthy spec: they share the cost of
# starting the CLI, and "the others still done" is checked in the same run. These tests come
# last: the session runs in the background from the module's first test on.

FAULT_MODELS = ("crash", "untraceable", "parity", "nan", "xss")


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
    flagged_specs = {c["spec"] for c in fault_session[source]["cells"]
                     if name_of(c["spec"]) in ("parity", "nan")}
    assert not [s for s in fault_session[source]["speedups"] if s["spec"] in flagged_specs]


def test_flagged_cells_say_why_in_the_reports(fault_session):
    md = (fault_session["dir"] / "report.md").read_text()
    html = (fault_session["dir"] / "report.html").read_text()
    for text in (md, html):
        assert "outputs differ from torch" in text
        assert "outputs hold NaN or Inf" in text
    rows = [ln for ln in md.splitlines() if ln.startswith("| @") and ":parity |" in ln]
    assert any("| openvino:CPU |" in r and "| flagged |" in r for r in rows), rows
    assert html.count('<tr class="flagged">') == 3


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
