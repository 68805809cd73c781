"""What a measurement is: identity + raw samples + metadata (torch.utils.benchmark's idea).

Statistics are never stored as the truth: they are derived from the raw samples on demand
(``harness.measure.stats``), so a better estimator later re-reads old stores correctly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.measure.scenarios import LATENCY, SCENARIOS, THROUGHPUT  # noqa: F401 (re-exported)

# Cell outcomes. ``flagged``: it ran, but its outputs disagree with the baseline's (or hold
# NaN/Inf), so its time must not be read as a speed-up. ``invalid``: it ran, but other work on
# the machine disturbed too many of its timed blocks for enough clean alternated pairs to
# remain; its samples are kept (disturbed blocks marked) and no figure is reported from them.
DONE, FAILED, SKIPPED, FLAGGED, INVALID = "done", "failed", "skipped", "flagged", "invalid"
STATUSES = (DONE, FAILED, SKIPPED, FLAGGED, INVALID)

# Session states.
RUNNING, FINISHED, INTERRUPTED = "running", "finished", "interrupted"


@dataclass(frozen=True, order=True)
class CellKey:
    """The identity of a cell within a session: what ran, where, how."""

    spec: str
    backend: str
    precision: str
    threads: int
    scenario: str = LATENCY  # stores from before scenarios hold latency cells only

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def group(self) -> tuple[str, str, int, str]:
        """Cells that share this are compared with each other (same model, precision, threads
        and scenario)."""
        return (self.spec, self.precision, self.threads, self.scenario)


@dataclass
class CellResult:
    key: CellKey
    status: str
    reason: str | None = None
    samples_ms: list[float] = field(default_factory=list)  # per-iteration latency, in order
    warmup_ms: float | None = None  # the first inference, excluded from samples
    meta: dict[str, Any] = field(default_factory=dict)  # backend props, times, rss, parity...
    started: float | None = None  # unix seconds
    finished: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown cell status {self.status!r}")

    def clean(self) -> tuple[list[float], list[int] | None]:
        """The samples and block lengths every figure is derived from: disturbed blocks (those
        the coordinator set aside, ``meta["disturbed"]``) left out; old stores: everything."""
        from harness.measure import stats

        meta = self.meta if isinstance(self.meta, dict) else {}
        blocks = meta.get("blocks")
        return stats.clean(self.samples_ms, blocks if isinstance(blocks, list) else None,
                           meta.get("disturbed"))

    def evidence(self) -> dict[str, Any]:
        """Clean and disturbed block counts, and whether the clean samples met the target —
        derived from the raw samples, not read from a stored flag. The interval judged is the
        one the reports print: nested over the processes where the cell has several
        (``harness.measure.estimate``), else ``stats.converged``'s block interval."""
        from harness.measure import estimate, stats

        meta = self.meta if isinstance(self.meta, dict) else {}
        flags = meta.get("disturbed")
        disturbed = sum(1 for f in flags if f is True) if isinstance(flags, list) else 0
        samples, blocks = self.clean()
        target, least = meta.get("target"), meta.get("min_samples", 0)
        if isinstance(target, (int, float)) and isinstance(least, int):
            if estimate.processes_of(self) >= 2:
                ok = len(samples) >= least and \
                    stats.ci_halfwidth(estimate.cell_summary(self)) <= float(target)
            else:
                ok = bool(samples) and stats.converged(samples, blocks, float(target), least)
        else:  # a store too old to say its target: only its own flag can tell
            ok = meta.get("converged") is True
        return {"clean_blocks": len(blocks or []), "disturbed_blocks": disturbed, "converged": ok}


@dataclass
class SessionInfo:
    id: str
    started: float
    status: str = RUNNING
    finished: float | None = None
    machine_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    version: str = ""
