"""Builders shared by the store tests: keys, cells, sessions, a populated store."""


from __future__ import annotations

import hashlib
from pathlib import Path

from harness.measure.results import (
    DONE,
    CellKey,
    CellResult,
    SessionInfo,
)
from harness.store import Store

SID_A = "20240105T101010-aaaa1111"
SID_B = "20240106T101010-bbbb2222"


def key(spec: str = "mobilenetv2", backend: str = "torch", precision: str = "f32",
        threads: int = 2) -> CellKey:
    return CellKey(spec, backend, precision, threads)


def cell(spec: str = "mobilenetv2", backend: str = "torch", status: str = DONE, **kw) -> CellResult:
    kw.setdefault("samples_ms", [1.5, 1.25, 2.0])
    return CellResult(key=key(spec, backend), status=status, **kw)


def session(sid: str, started: float = 1_700_000_000.0, **kw) -> SessionInfo:
    return SessionInfo(id=sid, started=started, **kw)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def populate(path: Path, n_cells: int = 3, sid: str = SID_A) -> Path:
    with Store.open(path) as s:
        s.add_machine("m1", {"cpu": {"brand": "Xeon"}, "caches": {"l3": 1 << 20}})
        s.begin_session(session(sid, machine_id="m1", config={"preset": "quick"},
                                argv=["accelbench", "run"], version="0.1.0"))
        for i in range(n_cells):
            s.put_cell(sid, cell(f"dwbottleneck:depth={i + 1}", meta={"i": i, "pad": "x" * 200}))
    return path
