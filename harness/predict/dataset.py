"""Measured cells as predictor data: latencies from a store, kernels from each backend.

Reading the kernels of a cell's network means converting and compiling it on every backend
(``fusion.backend_kernels``); that is the slow part of fitting, so each network's kernels are
kept in a JSON file beside the store, keyed by spec, backend, precision, threads, library
versions (a new OpenVINO may fuse differently, so its kernels are read again) and the way units
are cut (``UNITS_VERSION``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.measure.results import DONE, LATENCY
from harness.predict.fusion import Kernel, backend_kernels

# How units are cut out of a network (bumped when that changes, so cached kernels are read
# again): 2 = one unit per call site of a functional op (issue 28), not one per op and module;
# 3 = kernels carry their input, output and weight bytes apart (issue 26); 4 = OpenVINO's
# Reorders (the input's too) are kernels of their own; 5 = global pooling is a kind of its own;
# 6 = a linear layer with its activation fused is a kind of its own (``fusion.LINEAR_ACT``);
# 7 = kernels carry the bytes their costly activation functions write (``fusion.FUNCTIONS``);
# 8 = a concatenation run in place is a kind of its own (``fusion.CONCAT_INPLACE``), and a
# runtime row that executes nothing claims no unit (a convolution's bias reshape); 9 = a generic
# layout conversion on planes that alias in the L1 is a kind of its own (``fusion.aliases``);
# 10 = so is a conversion of a vector (``fusion.REORDER_VECTOR``); 11 = eager PyTorch's
# convolutions carry the bytes of the layout conversions inside their calls (``eager``); 12 = a
# zero padding is a kernel of its own (``fusion.PAD``); 13 = a kernel's bytes count what its fused
# residual adds read from outside it (``fusion.outside_reads``); 14 = eager conversions leave out
# an input oneDNN reads as it is (under 16 channels) and follow the layout and precision; 15 = a
# convolution whose batch norm the runtime folded away with its name is read as a convolution
# (``harness.layers.matching``: the recovery follows conv -> batch norm -> named add); 16 = eager
# PyTorch's oneDNN convolutions carry their FLOPs and maps at the padded channel counts
# (``eager.padded``); 17 = OpenVINO's convolutions their FLOPs at whole blocks of output channels
# (``fusion.compiled_blocks``).
UNITS_VERSION = 17

KERNEL_FAMILY = "kernel"


def measured(store_path: Any, *, kernels_only: bool | None) -> dict[tuple[str, int], dict[str, dict[str, float]]]:
    """``{(precision, threads): {backend: {spec: quiet_ms}}}`` over every session's done latency
    cells (each cell's quiet-state latency, ``quiet_figure``).

    ``kernels_only``: True keeps the kernel family's cells, False every other spec, None all.
    A cell measured in several sessions on the machine and library versions of its latest
    session is read at the geometric mean of those sessions' figures; sessions on another
    machine or other versions are left out (``provenance``).

    Why combine rather than keep the latest: one run of a cell is one draw of the host's state.
    Two runs of the kernel preset 35 min apart on a Zen 4 VM (2026-12-06) gave predictors whose
    RMSPE on the same 22 quick networks differed by 1-3 points and whose ±10% shares differed by
    up to 18 points; fitted on both runs' geometric mean, the RMSPE was the lower of the two or
    below it on five of six figures (two quick sessions, OpenVINO, PyTorch, speed-up)."""
    return {group: combined(backends)
            for group, backends in runs(store_path, kernels_only=kernels_only).items()}


def combined(sessions: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """One group of ``runs``, ``{backend: {spec: {session: ms}}}``, each cell at the geometric
    mean of its sessions' figures: ``{backend: {spec: ms}}``."""
    import numpy as np

    return {backend: {spec: float(np.exp(np.mean(np.log(list(figures.values())))))
                      for spec, figures in specs.items()}
            for backend, specs in sessions.items()}


def runs(store_path: Any, *, kernels_only: bool | None
         ) -> dict[tuple[str, int], dict[str, dict[str, dict[str, float]]]]:
    """``{(precision, threads): {backend: {spec: {session id: quiet_ms}}}}``: each cell's
    quiet-state figure in every session of the provenance of its latest session (what
    ``measured`` averages; ``repeatability`` compares the sessions with each other)."""
    from harness.store import Store

    got: dict[tuple[str, int, str, str], list[tuple[tuple, str, float]]] = {}
    with Store.open(store_path, create=False, readonly=True) as store:
        for info in sorted(store.sessions(), key=lambda s: s.started):
            for cell in store.cells(info.id):
                key = cell.key
                is_kernel = key.spec.split(":", 1)[0] == KERNEL_FAMILY
                if cell.status != DONE or (kernels_only is not None and is_kernel != kernels_only):
                    continue
                if key.scenario != LATENCY:  # a throughput cell times something else
                    continue
                figure = quiet_figure(cell)
                if figure is not None:
                    got.setdefault((key.precision, key.threads, key.backend, key.spec), []).append(
                        (provenance(cell, info.machine_id), info.id, figure))
    out: dict[tuple[str, int], dict[str, dict[str, dict[str, float]]]] = {}
    for (precision, threads, backend, spec), seen in got.items():
        latest = seen[-1][0]
        out.setdefault((precision, threads), {}).setdefault(backend, {})[spec] = \
            {session: f for p, session, f in seen if p == latest}
    return out


def model_files(store_path: Any) -> dict[str, str]:
    """A user model's cell name (``@net.py#1a2b3c4d:make``) -> the reference its session was
    given (``/abs/path/net.py:make``), where that file still holds the model the cells timed
    (its name today is the cell's name). Why: a cell is named by its file's name and content,
    never its path (``harness.run.workload.model_name``: so that two checkouts join), so
    rebuilding the model to predict it needs the path its session recorded; a file edited or
    moved since is another model, or none, and has no entry. Each file is read once however
    many sessions name it."""
    from harness.run.workload import Workload
    from harness.store import Store

    texts: set[str] = set()
    with Store.open(store_path, create=False, readonly=True) as store:
        for info in store.sessions():
            config = info.config if isinstance(info.config, dict) else {}
            texts.update(w for w in config.get("workloads") or () if isinstance(w, str))
    found: dict[str, str] = {}
    for w in sorted(texts):
        workload = Workload.from_text(w)
        if workload.model_ref is not None:
            found.setdefault(workload.name, workload.model_ref)
    return found


def provenance(cell: Any, machine_id: str | None) -> tuple:
    """What two runs of a cell must share to be read together: the machine and the library
    versions its backend recorded (``*_version`` properties: torch's, OpenVINO's, ...)."""
    meta = cell.meta if isinstance(cell.meta, dict) else {}
    props = meta.get("properties")
    props = props if isinstance(props, dict) else {}
    return (machine_id, tuple(sorted((k, str(v)) for k, v in props.items() if "version" in k)))


def quiet_figure(cell: Any) -> float | None:
    """The cell's latency on a quiet machine: its clean samples at ``nested.SPEEDUP_QUANTILE``
    (the quiet state a reported speed-up reads each side at, so a predicted speed-up and a
    measured one are the same figure), leaving out the processes timed in a host slow stretch
    (``harness.measure.slowed``) where three or more processes allow it.

    Why not the median: the predictor learns and is scored on what one kernel or network costs,
    and on a shared VM a host slow stretch covers part of a process as often as a whole one.
    Measured on a Zen 4 VM (2026-12-06, a noisy hour: a cell's slowest process 1.30x its fastest
    at the median over the kernel preset's cells), the kernel preset's four-process cells split
    into two halves of two processes agreed within 10% on 47% of cells read at their median and
    on 90% read at their 10th percentile (the fastest process's median: 71%). Why not the
    minimum: one sample is one draw of the timer's jitter, a percentile is many."""
    import numpy as np

    from harness.measure import estimate, nested, slowed

    samples, _ = cell.clean()
    if not samples:
        return None
    parts = estimate.process_parts(cell)
    if parts and len(parts) >= 3:
        kept = slowed.drop(parts, slowed.set_aside([parts]))
        samples = np.concatenate([b for p in kept for b in p])
    return float(np.percentile(samples, 100 * nested.SPEEDUP_QUANTILE))


def last_level_cache(machine: dict[str, Any]) -> int:
    """The L3 size (bytes) in a machine's stored fingerprint (``only_machine``: the one the
    store's cells were measured on): a cell whose kernels move more bytes in one inference pays
    the cold-weight term (``design.cold_weight_mb``). 0 when it records no caches (a store of
    several machines has no one fingerprint): the term is then left out rather than guessed."""
    caches = machine.get("caches")
    l3 = caches.get("l3") if isinstance(caches, dict) else None
    return int(l3) if isinstance(l3, (int, float)) and l3 > 0 else 0


def only_machine(store_path: Any) -> tuple[str | None, dict[str, Any]]:
    """The id and stored fingerprint of the one machine every session of the store ran on;
    ``(None, {})`` when several did (a merged store: no one machine's caches or noise apply)."""
    from harness.store import Store

    with Store.open(store_path, create=False, readonly=True) as store:
        ids = {s.machine_id for s in store.sessions()}
        only = ids.pop() if len(ids) == 1 else None
        if only is None:
            return None, {}
        machine = store.machine(only) or {}
    return only, machine if isinstance(machine, dict) else {}


class KernelCache:
    """Kernels per (network, backend, precision, threads), read once and kept on disk."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if path is not None and path.exists():
            try:
                self.data = json.loads(path.read_text())
            except (OSError, ValueError):
                self.data = {}  # a damaged cache is re-read, never trusted
        self.dirty = False

    @staticmethod
    def _key(what: str, backend: str, precision: str, threads: int) -> str:
        import openvino
        import torch

        return (f"{what}|{backend}|{precision}|{threads}|torch={torch.__version__}"
                f"|ov={openvino.__version__}|units={UNITS_VERSION}")

    def kernels(self, what: str, build: Any, backends: list[str], precision: str,
                threads: int) -> dict[str, list[Kernel] | str]:
        """``what`` names the network (a spec, or a model file with its content hash);
        ``build()`` makes ``(module, example)`` when a backend's kernels are not cached."""
        keys = {b: self._key(what, b, precision, threads) for b in backends}
        out: dict[str, list[Kernel] | str] = {}
        for b in backends:
            got = _decoded(self.data.get(keys[b]))
            if got is not None:
                out[b] = got
        missing = [b for b in backends if b not in out]  # never read, or unreadable: read again
        if missing:
            model, example = build()
            read = backend_kernels(model, example, missing, precision=precision, threads=threads)
            for b, ks in read.items():
                self.data[keys[b]] = ks if isinstance(ks, str) else [k.as_json() for k in ks]
                out[b] = ks
            self.dirty = True
        return {b: out[b] for b in backends}

    def save(self) -> None:
        if self.path is not None and self.dirty:
            self.path.write_text(json.dumps(self.data))
            self.dirty = False


def _decoded(entry: Any) -> list[Kernel] | str | None:
    """A cached reading (a backend's kernels, or why it has none); None when absent or not
    readable as today's ``Kernel`` (a hand-edited or foreign file)."""
    if isinstance(entry, str):
        return entry
    if not isinstance(entry, list):
        return None
    try:
        return [Kernel.from_json(k) for k in entry]
    except (TypeError, KeyError, ValueError):
        return None


def cache_path(store: Any) -> Path:
    """Beside a SQLite file; in the local results folder for a database store."""
    from harness.store import StoreRef

    if isinstance(store, StoreRef):
        if store.path is None:
            return store.home / "predict.kernels.json"
        store = store.path
    store = Path(store)
    return store.with_name(store.name + ".kernels.json")
