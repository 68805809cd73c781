"""Fixtures shared by the fault tests (the models file, background sessions, holds)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.faults.support import (
    FAULTS,
    Session,
)


@pytest.fixture(scope="module")
def faults(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "faults.py"
    path.write_text(FAULTS)
    return path



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

