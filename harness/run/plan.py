"""A session's config expanded into comparison groups: what the coordinator times, in order.

A *group* is one workload at one precision, thread count and scenario, measured on every backend
of the session; its cells are compared with each other, so they are timed together (alternating
blocks). Resume skips the cells already stored, so a group may hold fewer backends. A batch
sweep (``batches``) makes each spec one workload per batch size (``SessionConfig.specs_to_run``).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.measure.results import LATENCY, CellKey
from harness.run.config import SessionConfig
from harness.run.workload import Workload


@dataclass
class GroupPlan:
    workload: Workload
    precision: str
    threads: int
    backends: tuple[str, ...]  # those still to measure (resume skips finished ones)
    scenario: str = LATENCY

    def key(self, backend: str) -> CellKey:
        return CellKey(self.workload.name or self.workload.text, backend, self.precision,
                       self.threads, self.scenario)


def plan_groups(config: SessionConfig, finished: set[CellKey]) -> list[GroupPlan]:
    plans = []
    for text in config.specs_to_run():
        workload = Workload.from_text(text)
        for scenario in config.scenarios:
            for precision in config.precisions:
                for threads in config.threads:
                    todo = tuple(
                        b for b in config.backends
                        if CellKey(workload.name, b, precision, threads, scenario) not in finished
                    )
                    if todo:
                        plans.append(GroupPlan(workload, precision, threads, todo, scenario))
    return plans
