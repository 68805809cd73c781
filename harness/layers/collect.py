"""Ask one worker per backend for its per-layer table (the worker op ``layers``).

Why workers and not this process: the same reasons as a session (a backend's thread pool and a
crash stay in their own process), and the whole-model median behind the coverage must come from
the very process that timed the layers. Setups run one after another, as in a session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.run import protocol
from harness.run.client import WorkerClient, WorkerFailure, reap_on_exit
from harness.run.workload import Workload


class LayersError(RuntimeError):
    """A backend could not produce its layer table; the message names the backend and why."""


def collect(workload: str, backends: list[str], *, precision: str, threads: int, passes: int,
            timeout_s: float, cache_dir: Path | None, seed: int = 0) -> dict[str, Any]:
    """``{"units": [...], "tables": {backend: {"layers", "whole_ms"}}}`` for one workload."""
    work = Workload.from_text(workload)
    tables: dict[str, Any] = {}
    units: list[dict[str, Any]] = []
    with reap_on_exit():
        for backend in backends:
            with WorkerClient(backend, threads) as client:
                try:
                    client.request({"op": "setup", **work.setup_fields(), "seed": seed,
                                    "precision": precision, "threads": threads,
                                    "ir_key": work.ir_key(seed),
                                    "cache_dir": str(cache_dir) if cache_dir else None},
                                   timeout=timeout_s)
                    reply = client.request({"op": protocol.LAYERS, "n": passes}, timeout=timeout_s)
                except WorkerFailure as exc:
                    raise LayersError(f"{backend}: {exc}") from None
            tables[client.backend] = {"layers": reply["layers"], "whole_ms": reply["whole_ms"]}
            units = units or reply["units"]
    return {"units": units, "tables": tables}
