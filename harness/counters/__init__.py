"""Cache and instruction counters from three sources, registered by name, one interface.

- ``perf``: hardware counters of the worker over its timed blocks (``perf stat --control``);
- ``cachegrind``: valgrind's simulated caches over N vs 2N inferences of the cell's worker;
- ``model``: the analytic working-set model (``model_counters``), available everywhere.

Every source is ``Source(name, availability, start)``; ``start(CountContext)`` returns a window
(``resume``/``pause`` around counted blocks, ``stop(inferences) -> dict``). The worker drives it
through ``CellCounters``; results always name their ``"source"``, and a source that cannot
measure raises ``CountersUnavailable`` rather than reporting zeros.
"""

from harness.counters import cachegrind, model, perf  # noqa: F401  (importing registers each source)
from harness.counters.base import (
    SOURCES,
    CountContext,
    CountersUnavailable,
    Source,
    availability_report,
    available_sources,
    choices,
    get_source,
    resolve,
)
from harness.counters.cachegrind import (
    cachegrind_run,
    geometry_args,
    geometry_plan,
    simulated_geometry,
)
from harness.counters.cell import CellCounters, derive
from harness.counters.model import model_counters
from harness.counters.perf import perf_attach, perf_run

__all__ = [
    "SOURCES", "CellCounters", "CountContext", "CountersUnavailable", "Source",
    "availability_report", "available_sources", "cachegrind_run", "choices", "derive", "geometry_args",
    "geometry_plan", "get_source", "model_counters", "perf_attach", "perf_run", "resolve",
    "simulated_geometry",
]
