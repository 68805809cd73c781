"""One contract, two stores: every test here runs on a SQLite file and on a PostgreSQL database.

The PostgreSQL half runs against the real server ``.ci/run`` starts (``ACCELBENCH_TEST_PG_DSN``;
without one it skips, saying why) in a fresh database per test. What differs between the two is
only how a store is created and how its raw rows are poked (``Backend``); the assertions are one.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from harness.measure.results import DONE, FAILED, FINISHED, INTERRUPTED, RUNNING, CellResult
from harness.store import SCHEMA_VERSION, Store, StoreError
from tests import pg_support
from tests.store_support import SID_A, SID_B, cell, key, session

FP = {"cpu": {"brand_raw": "AMD EPYC", "vendor": "AuthenticAMD", "family": 25, "model": 17},
      "caches": {"l3": 32 << 20}}


@dataclass
class Backend:
    """A fresh store location of one kind, and raw SQL on it (for damage and version marks)."""

    kind: str
    ref: str

    def sql(self, query: str) -> list[tuple]:
        if self.kind == "sqlite":
            c = sqlite3.connect(self.ref)
            try:
                rows = c.execute(query).fetchall()
                c.commit()
                return rows
            finally:
                c.close()
        return pg_support.sql(self.ref, query)

    def set_version(self, v: int) -> None:
        self.sql(f"UPDATE meta SET value = '{v}' WHERE key = 'schema_version'")
        if self.kind == "sqlite":
            self.sql(f"PRAGMA user_version = {v}")

    def make_v2_cells(self) -> None:
        """Give ``cells`` the layout it had before v3: no ``scenario``, the narrower unique key."""
        if self.kind == "sqlite":
            cols = ("id, session_id, spec, backend, precision, threads, status, reason, "
                    "warmup_ms, samples, meta, started, finished")
            self.sql("CREATE TABLE old (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL "
                     "REFERENCES sessions(id), spec TEXT NOT NULL, backend TEXT NOT NULL, "
                     "precision TEXT NOT NULL, threads INTEGER NOT NULL, status TEXT NOT NULL, "
                     "reason TEXT, warmup_ms REAL, samples TEXT NOT NULL, meta TEXT NOT NULL, "
                     "started REAL, finished REAL, "
                     "UNIQUE (session_id, spec, backend, precision, threads))")
            self.sql(f"INSERT INTO old ({cols}) SELECT {cols} FROM cells")
            self.sql("DROP TABLE cells")
            self.sql("ALTER TABLE old RENAME TO cells")
        else:  # dropping the column drops the unique key it is part of
            self.sql("ALTER TABLE cells DROP COLUMN scenario")
            self.sql("ALTER TABLE cells ADD UNIQUE (session_id, spec, backend, precision, threads)")

    def dump(self) -> dict[str, list]:
        return {t: sorted(map(repr, self.sql(f"SELECT * FROM {t}")))
                for t in ("meta", "machines", "sessions", "cells", "peaks")}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", str(tmp_path / "store.sqlite"))
        return
    with pg_support.fresh_database() as url:
        yield Backend("postgresql", url)


def _fill(ref: str, sid: str = SID_A, n: int = 3, machine: str = "m1") -> None:
    with Store.open(ref) as s:
        s.add_machine(machine, FP)
        s.begin_session(session(sid, machine_id=machine, config={"name": "quick"},
                                argv=["accelbench", "run"], version="0.1.0"))
        for i in range(n):
            s.put_cell(sid, cell(f"dwbottleneck:depth={i + 1}", meta={"i": i}))


def test_round_trip_keeps_every_value(backend: Backend) -> None:
    nasty = [0.5, float("nan"), float("inf"), 0.0, 1e-300, 123456.789012345]
    info = session(SID_A, machine_id="m1", config={"threads": [1, 4]}, argv=["a", "é"],
                   version="0.1.0")
    cells = [cell("mobilenetv2", samples_ms=nasty, warmup_ms=float("nan"), started=1.5,
                  finished=2.5, meta={"parity": {"max_abs": float("nan")}, "n": [1, 2]}),
             cell("darts", "openvino", FAILED, reason="conversion failed: élan", samples_ms=[])]
    with Store.open(backend.ref) as s:
        s.add_machine("m1", FP)
        s.add_machine("m1", {"other": "fingerprint"})  # the first one is kept
        s.begin_session(info)
        for c in cells:
            s.put_cell(SID_A, c)
    with Store.open(backend.ref, create=False) as s:
        assert s.machine("m1") == FP and s.machine("nope") is None
        assert s.sessions() == [info]
        got = s.cells(SID_A)
    assert [repr(x) for x in got[0].samples_ms] == [repr(x) for x in nasty]
    assert got[0].warmup_ms is None  # a NaN scalar reads back as "not known" on both
    assert math.isnan(got[0].meta["parity"]["max_abs"]) and got[0].meta["n"] == [1, 2]
    assert (got[0].started, got[0].finished) == (1.5, 2.5)
    assert got[1] == cells[1]


def test_upsert_keeps_position_and_done_keys(backend: Backend) -> None:
    with Store.open(backend.ref) as s:
        s.begin_session(session(SID_A))
        s.begin_session(session(SID_B))
        s.put_cell(SID_A, cell("a", status=FAILED, reason="oom", samples_ms=[]))
        s.put_cell(SID_A, cell("b"))
        s.put_cell(SID_B, cell("z"))
        s.put_cell(SID_A, cell("a", samples_ms=[9.0], meta={"retry": 1}))
        got = s.cells(SID_A)
        assert [c.key.spec for c in got] == ["a", "b"]
        assert (got[0].status, got[0].samples_ms, got[0].meta) == (DONE, [9.0], {"retry": 1})
        assert s.done_keys(SID_A) == {key("a"), key("b")} and s.done_keys(SID_B) == {key("z")}
        assert s.cell_counts() == {SID_A: 2, SID_B: 1}
        with pytest.raises(StoreError, match="no session"):
            s.put_cell("missing", cell())


def test_sessions_lifecycle_and_lookup(backend: Backend) -> None:
    with Store.open(backend.ref) as s:
        with pytest.raises(StoreError, match="no sessions"):
            s.session()
        s.begin_session(session("20240107-ccc", started=3.0))
        s.begin_session(session(SID_A, started=1.0))
        s.begin_session(session("20240105T101010-aaaa9999", started=2.0))
        assert [x.id for x in s.sessions()] == [SID_A, "20240105T101010-aaaa9999", "20240107-ccc"]
        assert s.session().id == "20240107-ccc" and s.session("20240107").id == "20240107-ccc"
        with pytest.raises(StoreError, match="ambiguous"):
            s.session("20240105T101010-aaaa")
        s.finish_session(SID_A, INTERRUPTED, finished=5.0)
        assert (s.session(SID_A).status, s.session(SID_A).finished) == (INTERRUPTED, 5.0)
        s.resume_session(SID_A)
        assert (s.session(SID_A).status, s.session(SID_A).finished) == (RUNNING, None)
        s.finish_session(SID_A, FINISHED)
        with pytest.raises(StoreError, match="already has a session"):
            s.begin_session(session(SID_A))
        with pytest.raises(ValueError):
            s.put_cell(SID_A, cell(samples_ms=[-1.0]))


def test_peaks_latest_wins(backend: Backend) -> None:
    with Store.open(backend.ref) as s:
        assert s.peaks("m1") is None
        s.put_peak("m1", {"gflops": {"torch": 10.0}}, measured=1.0)
        s.put_peak("m1", {"gflops": {"torch": 12.0}}, measured=2.0)
        s.put_peak("m1", {"gflops": {"torch": 13.0}}, measured=2.0)  # same instant: replaced
        s.add_machine("m1", FP)
        assert s.machine("m1")["peaks"] == {"gflops": {"torch": 13.0}}


def test_readonly_writes_nothing_and_refuses_writes(backend: Backend) -> None:
    _fill(backend.ref)
    before = backend.dump()
    with Store.open(backend.ref, readonly=True) as s:
        assert len(s.cells(SID_A)) == 3 and s.peaks("m1") is None
        with pytest.raises(StoreError, match="read-only"):
            s.put_cell(SID_A, cell("new"))
        with pytest.raises(StoreError, match="read-only"):
            s.merge_from(backend.ref)
    assert backend.dump() == before


def test_missing_store_is_not_created_by_readers(backend: Backend) -> None:
    for create, readonly in ((False, False), (False, True), (True, True)):
        with pytest.raises(StoreError, match="no store at"):
            Store.open(backend.ref, create=create, readonly=readonly)
    if backend.kind == "sqlite":
        assert not Path(backend.ref).exists()
    else:
        assert backend.sql("SELECT to_regclass('meta')") == [(None,)]


def test_newer_schema_is_refused_untouched(backend: Backend) -> None:
    _fill(backend.ref)
    backend.set_version(SCHEMA_VERSION + 1)
    before = backend.dump()
    for readonly in (False, True):
        with pytest.raises(StoreError, match=f"has schema v{SCHEMA_VERSION + 1}, this accelbench "
                                             f"reads up to v{SCHEMA_VERSION}; upgrade"):
            Store.open(backend.ref, readonly=readonly)
    assert backend.dump() == before


def test_v1_reads_as_it_is_then_migrates_on_write(backend: Backend) -> None:
    _fill(backend.ref)
    backend.sql("DROP TABLE peaks")
    backend.make_v2_cells()
    backend.set_version(1)
    rows = backend.sql("SELECT session_id, spec, samples FROM cells ORDER BY id")
    with Store.open(backend.ref, readonly=True) as s:
        assert len(s.cells(SID_A)) == 3 and s.peaks("m1") is None
        assert {c.key.scenario for c in s.cells(SID_A)} == {"latency"}
    assert backend.sql("SELECT value FROM meta WHERE key = 'schema_version'") == [("1",)]
    with Store.open(backend.ref) as s:
        s.put_peak("m1", {"gflops": {"torch": 1.0}}, measured=1.0)
        # v3's wider identity: the same spec, backend, precision and threads as a throughput cell
        first = s.cells(SID_A)[0]
        s.put_cell(SID_A, CellResult(replace(first.key, scenario="throughput"), DONE,
                                     samples_ms=[2.0, 2.1], meta={"images_per_sample": 4}))
        assert [c.key.scenario for c in s.cells(SID_A)] == ["latency"] * 3 + ["throughput"]
    assert backend.sql("SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(SCHEMA_VERSION),)]
    assert backend.sql("SELECT session_id, spec, samples FROM cells ORDER BY id")[:3] == rows


def test_malformed_row_is_a_store_error(backend: Backend) -> None:
    _fill(backend.ref)
    backend.sql("UPDATE cells SET samples = '[1, \"oops\"]' WHERE spec = 'dwbottleneck:depth=2'")
    with Store.open(backend.ref, readonly=True) as s, pytest.raises(StoreError, match="malformed"):
        s.cells(SID_A)


def test_merge_both_ways_between_sqlite_and_postgres(backend: Backend, tmp_path: Path) -> None:
    """A SQLite file merges into this store and back out into another file, row for row."""
    local = tmp_path / "from-a-machine.sqlite"
    _fill(str(local), SID_B, n=4, machine="m2")
    with Store.open(local) as s:
        s.put_peak("m2", {"gflops": {"torch": 5.0}}, measured=7.0)
    _fill(backend.ref, SID_A, n=2)
    with Store.open(backend.ref) as s:
        assert s.merge_from(local) == {"sessions": 1, "cells": 4, "machines": 1}
        assert s.merge_from(local) == {"sessions": 0, "cells": 0, "machines": 0}
        assert [x.id for x in s.sessions()] == [SID_A, SID_B]
        assert s.peaks("m2") == {"gflops": {"torch": 5.0}}
        with pytest.raises(StoreError, match="into itself"):
            s.merge_from(backend.ref)
    back = tmp_path / "back.sqlite"
    with Store.open(back) as s:
        assert s.merge_from(backend.ref) == {"sessions": 2, "cells": 6, "machines": 2}
        with Store.open(local, readonly=True) as orig:
            assert s.cells(SID_B) == orig.cells(SID_B)
            assert s.session(SID_B) == orig.session(SID_B)


def test_a_cell_is_committed_when_put_cell_returns(backend: Backend) -> None:
    """Durability cell by cell: another connection sees each cell as soon as it is written."""
    _fill(backend.ref, n=0)
    with Store.open(backend.ref) as writer:
        for i in range(3):
            writer.put_cell(SID_A, CellResult(key(f"s{i}"), DONE, samples_ms=[float(i)]))
            with Store.open(backend.ref, readonly=True) as reader:
                assert len(reader.cells(SID_A)) == i + 1
