"""Live progress of a session: cell i/N, elapsed, ETA, the current median.

On a terminal this is a rich progress bar redrawn in place; elsewhere (CI logs, pipes) it is one
plain line per finished cell, because redraw sequences make logs unreadable, plus a line at most
every ``PIPE_EVERY_S`` while a comparison group runs: the cells of a group alternate blocks and
finish together, so without it a log showed nothing for minutes, then every line of the group
at once (issue 28). Progress always goes
to stderr so ``--json`` on stdout stays machine-readable.
"""

from __future__ import annotations

import statistics
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from harness.measure.estimate import images_per_sample
from harness.measure.results import DONE, LATENCY, THROUGHPUT, CellKey, CellResult

PIPE_EVERY_S = 10.0  # a plain progress line while a group runs, at most this often
RECENT_CELLS = 8  # the ETA's pace: seconds per cell over the last this many cells


def eta_s(finished_at: list[float], t0: float, done: int, total: int) -> float:
    """Seconds left at the pace of the last ``RECENT_CELLS`` cells.

    Why not elapsed/done: the first pass over a plan converts every IR, checks parity and
    profiles the models, so it runs 2-3x slower than the later passes that only time; an
    average over everything done said 400 s left when 150 s were (issue 28). The total grows
    when cells earn extra processes, so the figure is for the work known now."""
    if not done or done >= total:
        return 0.0
    recent = finished_at[-RECENT_CELLS:]
    start = finished_at[-RECENT_CELLS - 1] if len(finished_at) > RECENT_CELLS else t0
    per_cell = (recent[-1] - start) / len(recent)
    return per_cell * (total - done)


class SessionProgress:
    def __init__(self, console: Console, *, live: bool | None = None) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._t0 = time.monotonic()
        self._total = 0
        self._last_block = -1e9
        self._last_wait = -1e9
        self._finished_at: list[float] = []

    def __enter__(self) -> SessionProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, session_id: str, total: int) -> None:
        self._total = total
        self._t0 = time.monotonic()
        cells = f"{total} cell" if total == 1 else f"{total} cells"
        self.console.print(f"session [bold]{escape(session_id)}[/]: {cells} to measure")
        if self.live and total:
            self._progress = Progress(
                TextColumn("cell"), MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"),
                console=self.console, transient=True,
            )
            self._task = self._progress.add_task("", total=total)
            self._progress.start()

    def block(self, key: CellKey, samples: list[float]) -> None:
        if not samples:
            return
        now = time.monotonic()
        live = self._progress is not None and self._task is not None
        if now - self._last_block < (0.2 if live else PIPE_EVERY_S):
            return
        self._last_block = now
        med = statistics.median(samples)
        what = f"{key.spec} {key.backend}: median {med:.3f} ms (n={len(samples)})"
        if live:
            self._progress.update(self._task, description=escape(what))  # type: ignore[union-attr]
        else:
            self.console.print(escape(f"  ... {what}, elapsed {now - self._t0:.0f} s"),
                               highlight=False, soft_wrap=True)

    def wait(self, message: str) -> None:
        """The runner set disturbed blocks aside and waits for a quiet machine: say so, live in
        the bar's description or as a plain line (at most one every few seconds) elsewhere."""
        now = time.monotonic()
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=escape(message))
        elif now - self._last_wait >= 5.0:
            self.console.print(escape(message), highlight=False, soft_wrap=True)
        else:
            return
        self._last_wait = now

    def cell(self, done: int, total: int, result: CellResult) -> None:
        now = time.monotonic()
        elapsed = now - self._t0
        self._finished_at.append(now)
        eta = eta_s(self._finished_at, self._t0, done, total)
        clean = result.clean()[0]  # disturbed blocks never make a figure
        if result.status == DONE and clean and result.key.scenario == THROUGHPUT:
            per_image = statistics.median(clean) / images_per_sample(result)
            what = f"{1000 / per_image:,.0f} images/s, n={len(clean)}"
        elif result.status == DONE and clean:
            what = f"median {statistics.median(clean):.3f} ms, n={len(clean)}"
        else:
            what = f"{result.status}: {result.reason}"
        scenario = f" {result.key.scenario}" if result.key.scenario != LATENCY else ""
        line = (f"[{done}/{total}] {result.key.spec} {result.key.backend} {result.key.precision} "
                f"t={result.key.threads}{scenario}: {what}  (elapsed {elapsed:.0f} s, "
                f"ETA {eta:.0f} s)")
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done)
            self._progress.console.print(escape(line), highlight=False)
        else:
            self.console.print(escape(line), highlight=False, soft_wrap=True)
