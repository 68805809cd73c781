"""Shared helpers of the fault tests: the misbehaving models, process watching, stores.

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

import contextlib
import hashlib
import io
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import archs
from harness import cli
from tests.conftest import run_cli

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
def writes_input():  # its first layer writes into the network's input
    return (torch.nn.Sequential(torch.nn.Hardswish(inplace=True),
                                torch.nn.Conv2d(3, 4, 3, padding=1)).eval(), torch.randn(1, 3, 8, 8))
def xss(): raise RuntimeError("<script>alert(1)</script>|**x**")
'''


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
    """pid -> (start time, command line) of the workers started by process ppid: its
    ``harness.run.worker`` children, and the workers forked by its preloaded server
    (``harness.run.forkserver``), which name themselves ``ab-BACKEND`` in /proc/PID/comm."""
    found: dict[int, tuple[str, str]] = {}
    servers = set()
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _proc_stat(int(entry))) is not None:
            stats[int(entry)] = stat
    for pid, stat in stats.items():
        if stat[1] != ppid:
            continue
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"harness.run.worker" in argv:
                found[pid] = (stat[2], b" ".join(argv).decode(errors="replace"))
            elif any(b"multiprocessing.forkserver" in a for a in argv):
                servers.add(pid)
    for pid, stat in stats.items():
        if stat[1] not in servers:
            continue
        with contextlib.suppress(OSError):
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            if comm.startswith("ab-"):
                found[pid] = (stat[2], f"forked harness.run.worker --backend {comm[3:]}")
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


def wait_for_hold(session: Session, reached: Path) -> None:
    deadline = time.monotonic() + 240
    while not reached.exists():
        if session.proc.poll() is not None:
            pytest.fail(f"the session ended (rc {session.proc.returncode}) before the hold:\n"
                        f"{session.stderr()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail("the session never reached the hold")
        time.sleep(0.1)


def main_in_process(*argv: str) -> tuple[int, str, str]:
    """``accelbench ARGV`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(list(argv))
        except SystemExit as exc:  # argparse's own usage errors: exit 2 by design
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()
