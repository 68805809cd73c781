"""Synthetic stores standing for machines: known latencies, timed blocks and drift, so a test
knows which differences are real. Real stores from two machines are in tests/data/stores/."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from harness.measure.results import DONE, CellKey, CellResult, SessionInfo
from harness.store import Store

DATA = Path(__file__).resolve().parent / "data" / "stores"


def real_store(name: str) -> Path:
    """The real store ``tests/data/stores/NAME.sql`` as a SQLite file, built once per dump.

    Why SQL text in git and not the .sqlite: generated binary stores stay out of the repository
    (a diff can be read, a merge cannot corrupt one); the file is built where tests write, named
    after the dump's hash so an edited dump is rebuilt, and renamed into place whole.
    """
    import hashlib
    import os
    import sqlite3
    import tempfile

    dump = (DATA / f"{name}.sql").read_text()
    digest = hashlib.sha256(dump.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"accelbench-test-stores-{digest}" / f"{name}.sqlite"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(f".{os.getpid()}.part")
        part.unlink(missing_ok=True)
        conn = sqlite3.connect(part)
        try:
            conn.executescript(dump)
            conn.execute("PRAGMA journal_mode=WAL")  # as accelbench writes its stores
        finally:
            conn.close()
        os.replace(part, path)
    return path


INTEL = real_store("intel-xeon-amx-quick4")
AMD = real_store("amd-epyc-zen4-quick4")
SPECS = ("plain:depth=1,width=8,res=32", "dwbottleneck:depth=2,width=8,res=32")


def machine_store(path: Path, machine_id: str, latencies: Mapping[tuple[str, str], float], *,
                  seed: int, sid: str | None = None, noise: float = 0.03, blocks: int = 12,
                  per_block: int = 40, versions: Mapping[str, str] | None = None,
                  effective: str = "f32", threads: int = 2, started: float = 1.8e9) -> Path:
    """A finished session whose (spec, backend) cells have the given median latencies (ms)."""
    rng = np.random.default_rng(seed)
    sid = sid or f"20261128-120000-{machine_id[:6]}"
    vers = {"accelbench": "0.1.0", "torch": "2.13.0+cpu", "openvino": "2026.4.1",
            **(versions or {})}
    with Store.open(path) as s:
        s.add_machine(machine_id, {"id": machine_id, "cpu": {"brand_raw": f"CPU {machine_id}",
                                                             "count": 2}, "versions": vers})
        s.begin_session(SessionInfo(id=sid, started=started, machine_id=machine_id,
                                    config={"baseline": "torch", "threads": [threads],
                                            "precisions": ["f32"]},
                                    version=vers["accelbench"]))
        for (spec, backend), ms in latencies.items():
            drift = 1 + noise * rng.standard_normal(blocks)  # a block's own level
            samples = [float(ms * d * (1 + noise * rng.standard_normal()))
                       for d in drift for _ in range(per_block)]
            meta = {"blocks": [per_block] * blocks, "loadavg": {"before": 0.5, "after": 0.7}}
            if backend != "torch":
                meta["precision_effective"] = effective
            s.put_cell(sid, CellResult(CellKey(spec, backend, "f32", threads), DONE,
                                       samples_ms=samples, meta=meta))
        s.finish_session(sid, "finished", finished=started + 60)
    return path


def latencies(torch_ms: float = 2.0, ov_ms: float = 1.0, *, slow: float = 1.0,
              slow_ov: float = 1.0) -> dict[tuple[str, str], float]:
    """Both specs on both backends; ``slow`` scales the torch side, ``slow_ov`` OpenVINO's."""
    out = {}
    for i, spec in enumerate(SPECS):
        out[spec, "torch"] = torch_ms * (i + 1) * slow
        out[spec, "openvino:CPU"] = ov_ms * (i + 1) * slow_ov
    return out
