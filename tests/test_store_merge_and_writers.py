"""The store across processes and machines: merges validated whole, concurrent writers, SIGKILL."""


from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.store import Store, StoreError
from tests.store_support import (
    SID_A,
    SID_B,
    cell,
    populate,
    session,
    sha,
)

# ---------------------------------------------------------------------------- merging


def _contents(path: Path) -> tuple:
    with Store.open(path, readonly=True) as s:
        sessions = s.sessions()
        return ([(x, repr(s.cells(x.id))) for x in sessions], s.machine("m1"), s.machine("m2"))


def test_merge_adds_then_adds_nothing(tmp_path: Path) -> None:
    target = populate(tmp_path / "target.sqlite", n_cells=2, sid=SID_A)
    other = tmp_path / "other.sqlite"
    with Store.open(other) as s:
        s.add_machine("m1", {"cpu": "same id, kept from the target"})
        s.add_machine("m2", {"cpu": "arm"})
        s.begin_session(session(SID_B, started=2e9, machine_id="m2"))
        s.put_cell(SID_B, cell("x", samples_ms=[float("nan"), 1.0]))
        s.put_cell(SID_B, cell("y"))
        s.begin_session(session(SID_A))  # the same session, with one cell the target lacks
        s.put_cell(SID_A, cell("dwbottleneck:depth=1", meta={"from": "other"}))
        s.put_cell(SID_A, cell("only-in-other"))
    other_hash = sha(other)
    with Store.open(target) as s:
        assert s.merge_from(other) == {"sessions": 1, "cells": 3, "machines": 1}
        assert s.merge_from(other) == {"sessions": 0, "cells": 0, "machines": 0}
        assert [x.id for x in s.sessions()] == [SID_A, SID_B]
        assert s.session().machine_id == "m2"
        assert s.machine("m1") == {"cpu": {"brand": "Xeon"}, "caches": {"l3": 1 << 20}}
        a = s.cells(SID_A)
        assert [c.key.spec for c in a] == ["dwbottleneck:depth=1", "dwbottleneck:depth=2",
                                           "only-in-other"]
        assert a[0].meta["i"] == 0  # the target's row won the clash
        b = s.cells(SID_B)
        assert [c.key.spec for c in b] == ["x", "y"] and math.isnan(b[0].samples_ms[0])
        with pytest.raises(StoreError, match="into itself"):
            s.merge_from(target)
        with pytest.raises(StoreError, match="no store at"):
            s.merge_from(tmp_path / "missing.sqlite")
    assert sha(other) == other_hash


@pytest.mark.parametrize("damage", [
    "UPDATE cells SET samples = '[1, \"oops\"]' WHERE id = 2",
    "UPDATE sessions SET status = 'bogus'",
    "UPDATE machines SET fingerprint = '[]'",
    "INSERT INTO cells (session_id, spec, backend, precision, threads, status, samples, meta) "
    "VALUES ('orphan', 's', 'torch', 'f32', 1, 'done', '[]', '{}')",
])
def test_merge_refuses_malformed_store_whole(tmp_path: Path, damage: str) -> None:
    target = populate(tmp_path / "target.sqlite", sid=SID_A)
    other = populate(tmp_path / "other.sqlite", n_cells=5, sid=SID_B)
    c = sqlite3.connect(other)
    c.execute(damage)
    c.commit()
    c.close()
    before = _contents(target)
    with Store.open(target) as s, pytest.raises(StoreError, match="malformed.*nothing was merged"):
        s.merge_from(other)
    assert _contents(target) == before


# ---------------------------------------------------------------------------- processes

WRITER = textwrap.dedent("""
    import sys
    from harness.measure.results import CellKey, CellResult, SessionInfo
    from harness.store import Store
    path, sid, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with Store.open(path) as s:
        s.add_machine("m-" + sid, {"pid": sid})
        s.begin_session(SessionInfo(id=sid, started=float(len(sid))))
        i = 0
        while n < 0 or i < n:
            s.put_cell(sid, CellResult(CellKey(f"spec{i}", "torch", "f32", 1), "done",
                                       samples_ms=[float(i)] * 20, meta={"i": i}))
            print(i, flush=True)
            i += 1
""")


def _writer(path: Path, sid: str, n: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), sid, str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("precreate", [True, False], ids=["existing", "both-create"])
def test_two_writers_lose_nothing(db: Path, precreate: bool) -> None:
    if precreate:
        Store.open(db).close()
    procs = [_writer(db, sid, 200) for sid in (SID_A, SID_B)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with Store.open(db, create=False) as s:
        for sid in (SID_A, SID_B):
            got = s.cells(sid)
            assert [c.meta["i"] for c in got] == list(range(200))
            assert got[-1].samples_ms == [199.0] * 20
        assert {x.id for x in s.sessions()} == {SID_A, SID_B}


def test_sigkill_mid_write_keeps_committed_cells(db: Path) -> None:
    Store.open(db).close()
    p = _writer(db, SID_A, -1)
    assert p.stdout is not None
    printed = 0
    for _line in p.stdout:
        printed += 1
        if printed >= 100:
            break
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=60)
    # Drain through the same reader: lines it already buffered would be lost to communicate(),
    # which reads the raw pipe. Every printed index was committed before its print.
    printed += sum(1 for _line in p.stdout)
    p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL
    c = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    assert c.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    c.close()
    with Store.open(db, create=False) as s:
        got = [c.meta["i"] for c in s.cells(SID_A)]
        assert printed <= len(got) <= printed + 1  # at most the cell in flight is extra
        assert got == list(range(len(got)))
        s.put_cell(SID_A, cell("after-the-crash"))  # and it is writable again
        assert s.cells(SID_A)[-1].key.spec == "after-the-crash"
