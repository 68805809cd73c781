"""A benchmark session from start to end: identity, store, interruption, resume.

Why signals are turned into one exception: Ctrl-C (SIGINT) and SIGTERM must both leave the
store consistent — finished cells kept, the session marked ``interrupted`` so ``--resume`` can
finish it. Worker processes run in their own process groups, so a Ctrl-C at the terminal reaches
only the coordinator, which then stops them itself — every one, even when a second Ctrl-C cuts
the polite closing short (``reap_on_exit``).
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from harness import __version__
from harness.machine.fingerprint import fingerprint
from harness.measure.results import FINISHED, INTERRUPTED, CellKey, CellResult, SessionInfo
from harness.run import passes
from harness.run.client import reap_on_exit, signals_held
from harness.run.config import SessionConfig
from harness.run.coordinator import GroupRunner
from harness.run.plan import GroupPlan, plan_groups
from harness.store import Store, StoreError


class Interrupted(BaseException):
    """SIGTERM arrived; the session stops after saving what it has.

    A ``BaseException``, as ``KeyboardInterrupt`` is: a SIGTERM that lands inside code guarding
    against its own failures with ``except Exception`` (starting the fork server, a backend's
    optional probe) must stop the session, not be taken for that failure. As an ``Exception``
    it was: a SIGTERM 3 s into a session, while the fork server started, was read as "preloaded
    worker server unavailable (SIGTERM)" and the session ran on to its end."""


@dataclass
class SessionOutcome:
    info: SessionInfo
    cells: list[CellResult]
    interrupted: bool


def new_session_id() -> str:
    """Sortable by start time and unique across machines (merging stores never collides)."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def cache_dir_for(home: Path) -> Path:
    """Converted IR lives beside the store (``StoreRef.home``: the file's folder, ``results/``
    for a database), so a second run with the same store converts nothing."""
    return Path(os.environ.get("ACCELBENCH_CACHE", home / "ircache"))


def run_session(
    store: Store,
    home: Path,
    config: SessionConfig,
    *,
    resume: SessionInfo | None = None,
    argv: list[str] | None = None,
    on_cell: Callable[[int, int, CellResult], None] | None = None,
    on_block: Callable[[CellKey, list[float]], None] | None = None,
    on_start: Callable[[SessionInfo, int], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
    runner: GroupRunner | None = None,
) -> SessionOutcome:
    """Run (or resume) a session into ``store``; ``runner`` replaces the real one in tests
    (fake workers), with its callbacks left as given to it."""
    machine = fingerprint()
    if resume is not None and resume.machine_id and resume.machine_id != machine["id"]:
        # Many machines share a fleet database: finishing another machine's session here
        # would mix two machines' timings under one id. Refused before anything is written.
        raise StoreError(f"session {resume.id} was run on machine {resume.machine_id}; this is "
                         f"machine {machine['id']}: a session is resumed on the machine that "
                         "started it")
    store.add_machine(machine["id"], machine)
    stored: dict[CellKey, CellResult] = {}
    if resume is None:
        info = SessionInfo(new_session_id(), time.time(), machine_id=machine["id"],
                           config=config.as_dict(), argv=list(argv or sys.argv), version=__version__)
        store.begin_session(info)
    else:
        info = resume
        store.resume_session(info.id)
        stored = {c.key: c for c in store.cells(info.id)}
    plans = plan_groups(config, set())
    total = sum(len(p.backends) for p in plans) * config.processes
    total -= sum(min(passes.processes_in(c), config.processes) for c in stored.values())
    if on_start:
        on_start(info, total)
    runner = runner or GroupRunner(config, cache_dir_for(home), on_block, on_wait=on_wait)
    from harness.machine.peaks_home import peaks_for

    runner.peaks = peaks_for(store, machine["id"])  # the roofs, when `peak` measured them
    done = 0
    interrupted = False
    with _signals_as_interrupt():
        try:
            with reap_on_exit():  # no worker outlives the session, however it is interrupted
                for index in range(passes.max_processes(config)):
                    ran = False
                    for plan in plans:
                        got = _next_pass(plan, stored, index, config)
                        if got is None:
                            continue
                        ran = True
                        for result in runner.run(*got):
                            merged = passes.merge(stored.get(result.key), result, index)
                            stored[result.key] = merged
                            store.put_cell(info.id, merged)
                            done += 1
                            if on_cell:
                                on_cell(done, max(total, done), merged)
                    if not ran and index >= config.processes:
                        break
        except (KeyboardInterrupt, Interrupted):
            interrupted = True
    status = INTERRUPTED if interrupted else FINISHED
    with signals_held(interrupted):
        store.finish_session(info.id, status)
        info = store.session(info.id)
        cells = store.cells(info.id)
    return SessionOutcome(info, cells, interrupted)


def _next_pass(plan: GroupPlan, stored: dict[CellKey, CellResult], index: int,
               config: SessionConfig) -> tuple[GroupPlan, passes.PassPlan] | None:
    """Pass ``index`` of a group, for the backends that have not had it yet (a resumed
    session continues each cell from the passes it has); None when none needs it."""
    cells = [stored.get(plan.key(b)) for b in plan.backends]
    todo = tuple(b for b, c in zip(plan.backends, cells, strict=True)
                 if passes.processes_in(c) <= index)
    if not todo or any(passes.finished(c) for c in cells):
        return None
    if len(todo) < len(plan.backends) and index > 0:
        return None  # a pair cut apart by an interruption: its processes no longer pair up
    step = passes.plan_pass(cells, index, config)
    return None if step is None else (replace(plan, backends=todo), step)


class _signals_as_interrupt:
    """Within the block SIGTERM raises Interrupted (SIGINT already raises KeyboardInterrupt)."""

    def __enter__(self) -> None:
        self._old = signal.getsignal(signal.SIGTERM)

        def handler(signum, frame):  # noqa: ARG001
            raise Interrupted(signal.Signals(signum).name)

        try:
            signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread (e.g. called from a test thread)
            self._old = None

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
