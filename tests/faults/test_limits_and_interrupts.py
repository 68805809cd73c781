"""A cell past its time limit, Ctrl-C, SIGTERM and kill -9: finished cells kept, workers gone."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from harness.run.client import WorkerClient, reap_on_exit
from tests.conftest import run_cli
from tests.faults.support import (
    FAST,
    HAVE_PROC,
    TINY,
    Session,
    _alive,
    _wait_until,
    by_cell,
    model,
    sessions,
    stdout_json,
    wait_for_hold,
)

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


def test_a_sigterm_while_the_fork_server_starts_stops_the_session(monkeypatch) -> None:
    """SIGTERM becomes ``Interrupted`` inside a session; code that guards its own failures with
    ``except Exception`` must let it through. Starting the fork server is such code: a SIGTERM
    3 s into a real session was read as "preloaded worker server unavailable (SIGTERM)" and the
    session ran on to its end."""
    import os
    import sys

    from harness.run import forkserver, session

    def interrupted_start(ctx, env) -> None:  # noqa: ANN001, ARG001 - the server's start, cut short
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises at the next bytecode

    monkeypatch.setattr(forkserver, "_start_server", interrupted_start)
    monkeypatch.setattr(forkserver, "enabled", lambda: True)
    monkeypatch.setitem(forkserver._state, "env", None)
    monkeypatch.setitem(forkserver._state, "broken", False)
    with pytest.raises(session.Interrupted), session._signals_as_interrupt():
        forkserver.start("harness.run.worker", [], dict(os.environ), sys.stderr)
    assert forkserver._state["broken"] is False  # not taken for a broken server
