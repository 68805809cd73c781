"""Cache and instruction counters from three sources, registered by name.

- ``perf``: hardware counters of a running process (``perf_attach``) or a command (``perf_run``);
- ``cachegrind``: valgrind's simulated caches for one command (``cachegrind_run``);
- ``model``: the analytic working-set model (``model_counters``), available everywhere.

Callers ask ``get_source(name).availability()`` or ``available_sources()`` and store the dict a
measure function returns as is: it always names its ``"source"``, and a source that cannot
measure raises ``CountersUnavailable`` rather than reporting zeros.
"""

from harness.counters import cachegrind, model, perf  # noqa: F401  (importing registers each source)
from harness.counters.base import (
    SOURCES,
    CountersUnavailable,
    Source,
    availability_report,
    available_sources,
    get_source,
)
from harness.counters.cachegrind import cachegrind_run, geometry_args
from harness.counters.model import model_counters
from harness.counters.perf import perf_attach, perf_run

__all__ = [
    "SOURCES", "CountersUnavailable", "Source", "availability_report", "available_sources",
    "cachegrind_run", "geometry_args", "get_source", "model_counters", "perf_attach", "perf_run",
]
