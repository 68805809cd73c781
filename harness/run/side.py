"""One backend's side of a comparison group: its worker and what it has measured so far.

Why apart from the coordinator: the coordinator decides *when* to time what; a side only
keeps the evidence (samples, block lengths, each block's foreign CPU and whether its round was
set aside), and ``clean`` hands back the blocks a speed-up may use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.measure import stats
from harness.measure.results import CellKey, CellResult


class Worker(Protocol):
    """What the coordinator needs of a worker: ``WorkerClient`` or a test's fake."""

    @property
    def pid(self) -> int: ...
    def request(self, msg: dict[str, Any], timeout: float) -> dict[str, Any]: ...
    def kill(self) -> None: ...
    def close(self) -> None: ...


WorkerFactory = Callable[[str, int], Worker]  # (backend, threads) -> a started worker


@dataclass
class Side:
    """One backend's worker within a group, and what it has measured so far."""

    backend: str
    key: CellKey
    client: Worker | None = None
    result: CellResult | None = None  # set once the side is finished (failed / skipped)
    info: dict[str, Any] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)  # length of each timed block, in order
    foreign: list[float | None] = field(default_factory=list)  # each block's foreign cores
    disturbed: list[bool] = field(default_factory=list)  # each block's round was set aside
    block: int = 1
    started: float = field(default_factory=time.time)

    @property
    def active(self) -> bool:
        return self.result is None and self.client is not None

    def clean(self) -> tuple[list[float], list[int] | None]:
        return stats.clean(self.samples, self.blocks, self.disturbed)

    def flag(self, why: str) -> None:
        """Flag this side's cell for ``why``, after any reason given before (the backend's own,
        a precision it did not run, its parity): the cell keeps its time, no speed-up is read
        from it, and its reason names every cause."""
        earlier = self.info.get("flag")
        self.info["flag"] = f"{earlier}; {why}" if earlier else why

    def end(self, status: str, reason: str, *, keep_samples: bool = False) -> None:
        """Finish this side without a timing of its own: its cell carries the status and the
        reason, and the samples timed so far where a worker died after timing some."""
        self.result = CellResult(self.key, status, reason,
                                 list(self.samples) if keep_samples else [], None,
                                 dict(self.info), self.started, time.time())
