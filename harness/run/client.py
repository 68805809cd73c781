"""The coordinator's side of a worker process (``harness.run.worker``): start, ask, time out, reap.

The protocol (ops, fields, failure kinds) is ``harness.run.protocol``.

Why ``select`` with a deadline instead of a reader thread: a hung worker (a deadlocked plugin,
a model that never returns) must cost the coordinator a bounded wait and a kill, and the
worker's whole process group goes with it (compiler subprocesses included). POSIX only.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.backends import check_threads, parse_backend
from harness.run import allocator, forkserver
from harness.run.protocol import THREAD_ENV

WORKER_MODULE = "harness.run.worker"  # run as ``python -m`` or forked (harness.run.forkserver)
_ROOT = str(Path(__file__).resolve().parents[2])  # so -m harness.run.worker imports this checkout
_tracking = threading.local()  # .clients: the set a ``reap_on_exit`` block is filling, if any


class WorkerFailure(Exception):
    """Base of everything a request can raise besides usage errors."""


class WorkerCrashed(WorkerFailure):
    """The worker died; ``reason`` names the signal or exit code and the tail of its stderr."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WorkerTimeout(WorkerFailure):
    """No answer in time; the worker has been killed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer from the worker within {seconds:g} s (killed)")
        self.seconds = seconds


class WorkerError(WorkerFailure):
    """The worker answered ``ok: false``; ``kind`` says at which stage."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.message, self.kind = message, kind


class WorkerClient:
    """One worker process running ``backend`` with ``threads`` threads."""

    def __init__(self, backend: str, threads: int, *, env: dict[str, str] | None = None) -> None:
        self.backend = parse_backend(backend).text  # BackendError here, before any process
        check_threads(threads)
        self.threads = threads
        full_env = {**os.environ, **(env or {})}
        full_env.update(allocator.worker_env(full_env))  # steady-state memory, see allocator
        full_env.update({k: str(threads) for k in THREAD_ENV})  # always the cell's count
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_ROOT, full_env.get("PYTHONPATH", "")) if p
        )
        self._stderr = tempfile.TemporaryFile(prefix="accelbench-worker-")
        self._buf = b""
        self._dead: str | None = None
        argv = ["--backend", self.backend, "--threads", str(threads)]
        # Forked from a server that has imported the libraries (harness.run.forkserver), or,
        # where that cannot be, a new interpreter; either way a fresh process of its own.
        forked = forkserver.start(WORKER_MODULE, argv, full_env, self._stderr) \
            if env is None else None
        self.proc: Any = forked or subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, *argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=full_env, start_new_session=True,  # its own process group, killed as one
        )
        self.forked = forked is not None
        self._tracker: set[WorkerClient] | None = getattr(_tracking, "clients", None)
        if self._tracker is not None:
            self._tracker.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def request(self, msg: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self._dead is not None:
            raise WorkerCrashed(self._dead)
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            raise self._crashed() from None
        line = self._read_line(timeout)
        try:
            answer = json.loads(line)
            if not isinstance(answer, dict):
                raise ValueError("not an object")
        except ValueError:
            self.kill()
            self._dead = f"worker broke the protocol with {line[:200]!r}"
            raise WorkerCrashed(self._dead) from None
        if not answer.get("ok"):
            raise WorkerError(str(answer.get("error", "unknown error")), str(answer.get("kind")))
        return answer

    def _read_line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                self._dead = f"worker killed after no answer within {timeout:g} s"
                raise WorkerTimeout(timeout)
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise self._crashed()
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", errors="replace")

    def _crashed(self) -> WorkerCrashed:
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # closed its pipe but lives on: finish it
            self.kill()
            rc = self.proc.returncode
        if rc is not None and rc < 0:
            name = _signal_name(-rc)
            why = f"worker killed by {name}"
            if -rc == signal.SIGKILL:
                why += " (out of memory?)"
        else:
            why = f"worker exited with code {rc}"
        tail = _last_words(self.stderr_tail(8000))
        self._dead = f"{why}; stderr: {tail}" if tail else why
        return WorkerCrashed(self._dead)

    def stderr_tail(self, n: int = 2000) -> str:
        """The last ``n`` bytes the worker wrote to stderr (warnings, tracebacks, C logs)."""
        try:
            fd = self._stderr.fileno()
            size = os.fstat(fd).st_size
            return os.pread(fd, n, max(0, size - n)).decode("utf-8", errors="replace")
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        """SIGKILL the worker's process group now and reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            self.proc.kill()  # a worker killed before it made its own process group
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self._dead is None:
            self._dead = "worker was killed by the coordinator"

    def close(self, grace: float = 5.0) -> None:
        """Ask the worker to quit; terminate it, then kill it, if it does not within ``grace``.

        Killed in any case on the way out: a Ctrl-C while a stuck worker is given its ``grace``
        must not leave it running.
        """
        try:
            if self.proc.poll() is None and self._dead is None:
                with contextlib.suppress(WorkerFailure):
                    self.request({"op": "quit"}, timeout=grace)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self.kill()
        finally:
            # Children it left behind (e.g. inductor's compile workers) share its process group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            if self._tracker is not None:
                self._tracker.discard(self)
        if self._dead is None:
            self._dead = "worker was closed"
        for stream in (self.proc.stdin, self.proc.stdout, self._stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def reap_on_exit() -> Iterator[None]:
    """On leaving the block, kill every worker started in it (by this thread) still running.

    Why: workers are closed politely, and an interruption can cut that short — a second Ctrl-C
    while one is stuck in a model's forward abandons the closing of the others. A worker left
    behind runs on, unseen, after the session has ended (a hung model's, for ever): workers sit
    in their own process groups, so the terminal's Ctrl-C never reaches them.
    """
    outer = getattr(_tracking, "clients", None)
    clients: set[WorkerClient] = set()
    _tracking.clients = clients
    try:
        yield
    finally:
        _tracking.clients = outer
        alive = [c for c in clients if c.proc.poll() is None]
        # a second signal must not leave the rest running; with none left, nothing is held
        # (a signal then is the caller's, not swallowed)
        with signals_held(bool(alive)):
            for client in alive:
                client.kill()
        for client in clients:
            client._tracker = None


class signals_held:
    """After an interrupt, a second Ctrl-C or SIGTERM must not cut the recording of the first,
    or the killing of its workers, short (``active``: hold them; False: a no-op)."""

    def __init__(self, active: bool) -> None:
        self.active = active
        self._old: list = []

    def __enter__(self) -> None:
        if not self.active:
            return
        try:
            self._old = [(s, signal.signal(s, signal.SIG_IGN)) for s in (signal.SIGINT, signal.SIGTERM)]
        except ValueError:  # not the main thread
            self._old = []

    def __exit__(self, *exc) -> None:
        for signum, handler in self._old:
            signal.signal(signum, handler)


def _last_words(tail: str, limit: int = 1200) -> str:
    """What a dead worker's stderr says: from faulthandler's dump if there is one (its list of
    loaded extension modules left out; its first line, which names the fault, always kept even
    when the stack is cut: a worker forked from the server has a deeper stack than a new
    interpreter), otherwise the last lines."""
    head = ""
    start = tail.rfind("Fatal Python error")
    if start >= 0:
        lines = [ln for ln in tail[start:].splitlines() if not ln.startswith("Extension modules:")]
        head, tail = lines[0].strip(), "\n".join(lines[1:])
    tail = tail.strip()
    if head:
        room = max(limit - len(head), 0)
        return head + ("\n" + tail if len(tail) <= room else "\n..." + tail[len(tail) - room:])
    return tail if len(tail) <= limit else "..." + tail[-limit:]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
