"""Worker processes forked from a preloaded server, so a fresh process costs a fork, not an import.

Why: a cell is timed in several process pairs (``harness.run.passes``), and a new interpreter
that imports torch and OpenVINO costs 2-7 s on two cores — more than the timing of a small cell.
Python's ``forkserver`` start method keeps one server process that has imported them (before
any thread pool exists: importing starts none) and forks a worker per request in 0.1-0.3 s.
Each worker is still a new process — its own allocations, page layout and thread pools — which
is what the process level of an interval must sample. Measured, since forked workers share the
server's address-space layout where new interpreters get their own (ASLR is applied at exec):
four kernel cells on both backends, five sessions of four processes each way, alternated
(Zen 4 VM, 2026-12-07 06:29-06:38 UTC): the sd of a session's figure across sessions was 0.163
(log) forked and 0.156 as new interpreters, the processes' sd within a session 0.08-0.22 and
0.10-0.34. Both exceed what the process spread predicts for a session of four (0.07 and 0.09):
that excess is the host's stretch of minutes, not a layout shared by forks.

The server reads its environment once, at start: the thread variables (``OMP_NUM_THREADS``...)
and the allocator's ``MALLOC_*`` settings must be in it before the libraries load. So it is
started with the first worker's full environment, and a worker that needs a different one (a
session sweeping thread counts, a test passing its own variables) is started the ordinary way,
as a new interpreter. ``ACCELBENCH_FORKSERVER=0`` turns the server off.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import subprocess
import sys
from multiprocessing import reduction
from typing import Any

# torch._dynamo too: a cell's first pass profiles its model under torch's FlopCounterMode, whose
# first convolution imports torch._dynamo, inductor and sympy (about 840 modules): 1.5-2.1 s in
# every forked worker on a 2-core Zen 4 VM, 1.1 s once in the server (no thread is started).
# Then harness.run.frozen, last: preloaded alone, the bigger server made every later worker
# slower to start (its garbage collections copied the shared pages), so the session gained
# nothing; frozen, the median start-up of a process pair went, on five quick specs in four
# passes, 2.52 s (first pass) and 0.98-1.12 s (later) -> 1.23 s and 0.72-0.89 s.
PRELOAD = ["harness.run.worker", "numpy", "torch", "torch._dynamo", "openvino",
           "harness.backends", "archs", "harness.run.frozen"]
_state: dict[str, Any] = {"env": None, "broken": False}


def enabled() -> bool:
    return os.environ.get("ACCELBENCH_FORKSERVER", "1") != "0" and sys.platform == "linux"


class _InheritedFd:
    """A file descriptor handed to the forked worker (sent over the server's socket)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self):  # only while the process object is pickled for the server
        return (_detach, (reduction.DupFd(self.fd),))


def _detach(dup: Any) -> int:
    return dup.detach()


def _child(sock: Any, stderr_fd: int, module: str, argv: list[str]) -> None:
    """In the forked worker: its own session, the socket as stdin/stdout, then ``module``'s
    ``main(argv)`` — named, as ``python -m`` names it, so this module knows no worker."""
    os.setsid()  # its own process group, killed as one, away from the terminal's Ctrl-C
    _name_self(argv)
    fd = sock.fileno()
    os.dup2(fd, 0)
    os.dup2(fd, 1)
    os.dup2(stderr_fd, 2)
    sock.close()
    os.close(stderr_fd)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    import importlib

    code = 1
    try:
        code = importlib.import_module(module).main(argv)
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def _name_self(argv: list[str]) -> None:
    """``ab-BACKEND`` in /proc/PID/comm (ps, top): a forked worker's command line is its
    server's, so this is how a person (or a test) tells which worker is which."""
    import ctypes

    backend = argv[argv.index("--backend") + 1] if "--backend" in argv else "worker"
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None)
        libc.prctl(15, f"ab-{backend}"[:15].encode(), 0, 0, 0)  # PR_SET_NAME


class ForkedProcess:
    """The parts of ``subprocess.Popen`` that ``WorkerClient`` uses, for a forked worker."""

    def __init__(self, process: Any, parent_sock: Any) -> None:
        self._p = process
        fd = parent_sock.fileno()
        self.stdin = os.fdopen(os.dup(fd), "wb", buffering=0)
        self.stdout = os.fdopen(os.dup(fd), "rb", buffering=0)
        parent_sock.close()

    @property
    def pid(self) -> int:
        return int(self._p.pid)

    @property
    def returncode(self) -> int | None:
        return self._p.exitcode

    def poll(self) -> int | None:
        return None if self._p.is_alive() else self._p.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._p.join(timeout)
        if self._p.exitcode is None:
            raise subprocess.TimeoutExpired("accelbench worker", timeout or 0)
        return int(self._p.exitcode)

    def terminate(self) -> None:
        with contextlib.suppress(Exception):
            self._p.terminate()

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self._p.kill()


def start(module: str, argv: list[str], env: dict[str, str],
          stderr: Any) -> ForkedProcess | None:
    """A worker forked from the preloaded server, or None when it cannot be (then the caller
    starts a new interpreter): the server is off or broken, or ``env`` differs from its own."""
    if not enabled() or _state["broken"]:
        return None
    if _state["env"] is not None and _state["env"] != env:
        return None
    try:
        ctx = multiprocessing.get_context("forkserver")
        if _state["env"] is None:
            _start_server(ctx, env)
        parent, child = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=_child,
                           args=(child, _InheritedFd(stderr.fileno()), module, argv),
                           daemon=False)
        proc.start()
        child.close()
        return ForkedProcess(proc, parent)
    except Exception as exc:  # any trouble: the ordinary way, and say so once
        _state["broken"] = True
        print(f"accelbench: preloaded worker server unavailable ({exc}); starting workers as "
              "new interpreters", file=sys.stderr)
        return None


def _start_server(ctx: Any, env: dict[str, str]) -> None:
    """Start the server with the workers' environment (read by the libraries as they load)."""
    from multiprocessing import forkserver

    ctx.set_forkserver_preload(PRELOAD)
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        forkserver.ensure_running()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    _state["env"] = dict(env)
